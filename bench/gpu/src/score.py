"""Scoring script: load the state dict onto the GPU when torch sees one, answer with the predictions
and the device that computed them (bench/gpu.sh asserts it is cuda)."""

import json
import os

import torch

from net import Net

model = None
device = None


def init():
    global model, device
    folder = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model")
    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    model = Net(config["inputs"], config["hidden"], config["outputs"])
    model.load_state_dict(torch.load(os.path.join(folder, "model.pt"), map_location=device, weights_only=True))
    model.to(device).eval()


def run(raw_data):
    data = torch.tensor(json.loads(raw_data)["data"], dtype=torch.float32, device=device)
    with torch.no_grad():
        out = model(data)
    cuda = torch.cuda.is_available()
    return {
        "predictions": out.squeeze(-1).cpu().tolist(),
        "device": str(out.device),
        "cuda_available": cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
    }
