"""Write the state dict and the expected answer (run by bench/gpu.sh inside the built image, on the CPU).

Usage: python make_model.py MODEL_DIR CODE_DIR REQUEST EXPECTED_OUT [DEVICE]
Reads MODEL_DIR/config.json, writes MODEL_DIR/model.pt (seeded, so the same every time) and
EXPECTED_OUT: the CPU predictions for REQUEST plus the device the package must report.
"""

import json
import sys

import torch

model_dir, code_dir, request, expected_out = sys.argv[1:5]
device = sys.argv[5] if len(sys.argv) > 5 else "cuda:0"
sys.path.insert(0, code_dir)
from net import Net  # noqa: E402

with open(f"{model_dir}/config.json") as fh:
    config = json.load(fh)
torch.manual_seed(config["seed"])
net = Net(config["inputs"], config["hidden"], config["outputs"]).eval()
torch.save(net.state_dict(), f"{model_dir}/model.pt")
with open(request) as fh:
    data = torch.tensor(json.load(fh)["data"], dtype=torch.float32)
with torch.no_grad():
    predictions = net(data).squeeze(-1).tolist()
expected = {"predictions": predictions, "device": device, "cuda_available": device.startswith("cuda")}
with open(expected_out, "w") as fh:
    json.dump(expected, fh)
print(f"model.pt and expected answer written ({len(predictions)} predictions)")
