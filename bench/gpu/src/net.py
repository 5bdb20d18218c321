"""The tiny network gpu.sh packages (shared by make_model.py and score.py)."""

import torch


class Net(torch.nn.Module):
    def __init__(self, inputs: int, hidden: int, outputs: int):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs))

    def forward(self, x):
        return self.layers(x)
