"""pkgc beside BentoML and MLflow building the same small torch model, in one run, on the same base
(a script, not a test).

The model: bench/gpu's network (src/net.py, 4 inputs -> HIDDEN -> 1, a 6 MB state dict), two
versions m1 and m2 (other seed: a model-only change), written by torch inside pkgc's first image
(the host has no torch). Every tool installs torch==2.5.1 from PyPI with its nvidia-* CUDA wheels on
the python:3.11.7-slim stand-in (../shared/peers/peers.sh: pkgc's offline base + pip + this host's CA;
BentoML gets its peer/bento-base variant of it), and every image must answer a POST with torch's
own CPU predictions (within 1e-4), m1's and m2's.

  pkgc: bench/gpu's custom package (score.py + conda.yaml), whole CLI calls into the engine:
    fully cold (empty package cache, lock created, every wheel downloaded; the model folder has no
    weights yet: they are written with this image), cold (package files and pyc cache warm, lock
    present, empty OCI store, the engine without the environment layers), model-only rebuild (m2);
    then the MLflow model below as an mlflow_model package on the same cache (lock created, its
    other packages fetched, inside the timing), cold and model-only; which layers it reused.
  BentoML: service.py (the same Net, the weights from a BentoML model), python packages torch==2.5.1
    and numpy; cold = `bentoml build` + `containerize --no-cache` (legacy builder), model-only = m2
    on the layer cache.
  MLflow: a pyfunc "models from code" model (torch imported only in load_context/predict),
    artifacts = the state dict; cold = `mlflow models generate-dockerfile` + `docker build
    --no-cache` (legacy builder), model-only = m2 on the layer cache.
Per tool: build times, image bytes (docker's Size), the bytes the environment installs (du -sb of
the prefix holding torch, less the same path in the base) plus the base's size, load average before
and after. Each tool's images are removed once measured (--keep keeps them). Stops cleanly when
less than --min-free-gb is free on / before a heavy step. Writes bench/results/torch-peers-<time>.json and .md.

Usage: python3 bench/torch_peers.py [--compression gzip|zstd|none] [--skip TOOL] [--keep] [--peers PATH/peers.sh] [--peers-tmp DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench import pkgc  # noqa: E402
from peers import Peers  # noqa: E402

STAND_IN = "python:3.11.7-slim"
HIDDEN = 250_000  # 4 -> HIDDEN -> 1: 1.5 M float32 parameters, a 6 MB state dict
TORCH = ["torch==2.5.1", "numpy>=1.26,<3"]  # bench/gpu/conda.yaml's pip packages
ROWS = json.loads((ROOT / "bench" / "gpu" / "request.json").read_text())["data"]
PREFIX = "torchpeer"
DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: torch
endpoint_name: {prefix}
model:
  path: ../m1/model
code_configuration:
  code: src
  scoring_script: score.py
environment:
  image: {base}
  conda_file: conda.yaml
"""
MLFLOW_SPEC = """\
$schema: http://azureml/sdk-2-0/ModelVersionPackage.json
target_environment: {prefix}-mlflow-model
inferencing_server:
  type: azureml_online
model_configuration:
  mode: copy
"""
MLFLOW_MODEL_CODE = '''\
"""MLflow "models from code": torch is imported only when the model is loaded (the host has no torch)."""
import mlflow.models
import mlflow.pyfunc


class TorchNet(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        import json

        import torch
        from net import Net

        with open(context.artifacts["config"]) as fh:
            c = json.load(fh)
        self.net = Net(c["inputs"], c["hidden"], c["outputs"]).eval()
        self.net.load_state_dict(torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True))

    def predict(self, context, model_input, params=None):
        import numpy
        import torch

        with torch.no_grad():
            return self.net(torch.tensor(numpy.asarray(model_input, dtype="float32"))).squeeze(-1).tolist()


mlflow.models.set_model(TorchNet())
'''
MLFLOW_SAVE = """
import sys, mlflow.pyfunc
code, net, folder, out = sys.argv[1:5]
mlflow.pyfunc.save_model(out, python_model=code, code_paths=[net], pip_requirements=sys.argv[5:],
                         artifacts={"weights": f"{folder}/model.pt", "config": f"{folder}/config.json"})
"""
BENTO_SERVICE = '''\
"""The same Net; torch imported in __init__ (`bentoml build` imports this file on a host without torch)."""
import json

import bentoml


@bentoml.service
class TorchNet:
    def __init__(self) -> None:
        import torch
        from net import Net

        model = bentoml.models.get("torchnet")  # the alias bentofile.yaml gives the model version
        with open(model.path_of("config.json")) as fh:
            c = json.load(fh)
        self.torch = torch
        self.net = Net(c["inputs"], c["hidden"], c["outputs"]).eval()
        self.net.load_state_dict(torch.load(model.path_of("model.pt"), map_location="cpu", weights_only=True))

    @bentoml.api
    def predict(self, data: list[list[float]]) -> list[float]:
        with self.torch.no_grad():
            return self.net(self.torch.tensor(data, dtype=self.torch.float32)).squeeze(-1).tolist()
'''
BENTO_MODELS = """
import shutil, sys, bentoml
for name, folder in zip(("m1", "m2"), sys.argv[1:3]):
    with bentoml.models.create(f"torchnet:{name}") as model:
        for f in ("model.pt", "config.json"):
            shutil.copy(f"{folder}/{f}", model.path_of(f))
"""
BENTOFILE = """\
service: "service:TorchNet"
include: [service.py, net.py]
python:
  packages: {packages}
docker:
  base_image: {base}
models:
  - tag: torchnet:{version}
    alias: torchnet
"""
# the prefix holding torch inside an image: a venv's (or env's) prefix, else the site-packages folder
FIND_TORCH = "find / -xdev -path /proc -prune -o -name __init__.py -path '*-packages/torch/__init__.py' -print 2>/dev/null | head -1"


class LowDisk(Exception):
    pass


def sh(*args: str, env: dict | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)[:200]} failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


def pkgc_build(env: dict, *args: str) -> tuple[dict, float, dict[str, float]]:
    """A whole `pkgc build --json` call: its result, wall seconds and each stage's seconds (--progress plain)."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "--progress", "plain", "build", *args, "--json"], capture_output=True, text=True, env=env)
    seconds = round(time.monotonic() - started, 1)
    if proc.returncode != 0:
        raise SystemExit(f"pkgc build {' '.join(args)[:200]} failed: {proc.stderr.strip()[-1500:]}")
    stages: dict[str, float] = {}
    for match in re.finditer(r"^pkgc \[([\w-]+)\] done in ([\d.]+) s", proc.stderr, re.M):
        stages[match[1]] = round(stages.get(match[1], 0) + float(match[2]), 1)
    for match in re.finditer(r"^(?:pkgc|    ) +(\w[^\n]{0,200}?) in ([\d.]+) s\b", proc.stderr, re.M):  # the steps inside them
        if not match[1].startswith("["):
            stages[f"({match[1][:70]})"] = float(match[2])
    return json.loads(proc.stdout), seconds, stages


def load() -> float:
    return round(os.getloadavg()[0], 2)


def check_disk(step: str, min_gb: float) -> None:
    free = shutil.disk_usage("/").free / 1e9
    print(f"[{time.strftime('%H:%M:%S')}] {step} (disk free {free:.1f} GB, load {load()})", file=sys.stderr)
    if free < min_gb:
        raise LowDisk(f"stopped before {step}: {free:.1f} GB free on /, under {min_gb} GB")


def size(image: str) -> int:
    return int(sh("docker", "image", "inspect", "-f", "{{.Size}}", image))


def env_bytes(image: str, base: str) -> dict:
    """Bytes the environment installs: du -sb of the prefix holding torch, less that path in the base."""
    init = sh("docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", FIND_TORCH).strip()
    if not init:
        raise SystemExit(f"no torch found in {image}")
    site = str(Path(init).parent.parent)
    prefix = site.split("/lib/python")[0] if "/lib/python" in site else site
    path = prefix if prefix not in ("/usr", "/usr/local", "") else site
    du = lambda img: sh("docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", img, "-c", f"du -sb {path} 2>/dev/null || echo 0")  # noqa: E731
    installed = int(du(image).split()[0]) - int(du(base).split()[0])
    return {"env_path": path, "env_bytes": installed, "base": base, "base_bytes": size(base)}


def answer(image: str, cport: int, path: str, body: dict) -> list[float]:
    """Start the image, POST ``body`` until the first 200, return the predictions (flattened)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cid = sh("docker", "run", "-d", "-p", f"127.0.0.1:{port}:{cport}", image).strip()
    try:
        started = time.monotonic()
        while time.monotonic() - started < 300:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    out = json.load(r)
                out = out["predictions"] if isinstance(out, dict) else out
                return [float(v[0] if isinstance(v, list) else v) for v in out]
            except OSError:
                time.sleep(0.5)
        logs = subprocess.run(["docker", "logs", "--tail", "20", cid], capture_output=True, text=True)
        raise SystemExit(f"{image} never answered {path}: {logs.stdout[-800:]}{logs.stderr[-800:]}")
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def check(tool: str, got: list[float], want: list[float]) -> None:
    if len(got) != len(want) or any(abs(a - b) > 1e-4 for a, b in zip(got, want)):
        raise SystemExit(f"{tool} answered {got}, torch on the CPU says {want}")


def remove(images: list[str], keep: bool) -> None:
    if keep:
        return
    for image in images:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)  # only the images this bench built
    subprocess.run(["docker", "builder", "prune", "-f"], capture_output=True)  # build cache only


def pkgc_custom(env: dict, work: Path, want: dict, minimum: float, built: list[str], extra: list[str]) -> dict:
    """bench/gpu's package: fully cold (writes the weights with torch in its image), cold, model-only."""
    proj, f = work / "proj", {"load_before": load()}

    def build(cache: str, version: str, figure: str) -> dict:
        result, f[f"{figure}_s"], f[f"{figure}_stages_s"] = pkgc_build(
            dict(env, PKGC_CACHE_DIR=str(work / cache)), str(proj / "deployment.yml"), "--model", str(work / version / "model"), "--base-image", STAND_IN, *extra
        )
        built.append(result["image_id"])
        return result

    check_disk("pkgc fully cold build", minimum)
    first = build("c0", "m1", "fully_cold")
    for version in ("m1", "m2"):  # the weights and torch's own answers, by torch in that image
        sh("docker", "run", "--rm", "--network", "none", "--user", f"{os.getuid()}:{os.getgid()}", "--entrypoint", "python", "-v", f"{work}:/work", "-v", f"{proj}/src:/src:ro", first["image"],
           "/work/make_model.py", f"/work/{version}/model", "/src", "/work/request.json", f"/work/{version}.expected.json", "cpu")  # fmt: skip
        want[version] = json.loads((work / f"{version}.expected.json").read_text())["predictions"]
    remove([first["image_id"]], False)  # every tag of it: the engine loses the environment layers again
    for part in ("files", "pyc"):  # warm package files and compiled files, an empty OCI store
        if (work / "c0" / part).is_dir():
            shutil.copytree(work / "c0" / part, work / "c1" / part, copy_function=os.link)
    shutil.rmtree(work / "c0")

    check_disk("pkgc cold build", minimum)
    cold = build("c1", "m1", "cold")
    after = build("c1", "m2", "model_only")
    f["model_only_in_process_s"] = after["build_seconds"]
    f["image_bytes"] = cold["size_bytes"]
    f.update(env_bytes(cold["image"], STAND_IN))
    check("pkgc", answer(cold["image"], 5001, "/score", {"data": ROWS}), want["m1"])
    check("pkgc m2", answer(after["image"], 5001, "/score", {"data": ROWS}), want["m2"])
    f["layers"] = [{"kind": layer.get("kind"), "bytes": layer.get("size"), "digest": layer.get("digest")} for layer in cold.get("layers", [])]
    f["load_after"] = load()
    return f


def pkgc_mlflow(env: dict, work: Path, custom: dict, want: dict, minimum: float, built: list[str], extra: list[str]) -> dict:
    """The MLflow model as an mlflow_model package, on the cache the custom package filled."""
    f = {"load_before": load()}
    spec = work / "mlflow-spec" / "package.yml"
    spec.parent.mkdir()
    spec.write_text(MLFLOW_SPEC.format(prefix=PREFIX))
    cenv = dict(env, PKGC_CACHE_DIR=str(work / "c1"))
    check_disk("pkgc mlflow_model build", minimum)
    builds = {}
    for version in ("m1", "m2"):
        model = pkgc(cenv, "model", "create", "--name", f"{PREFIX}-mlflow", "--type", "mlflow_model", "--path", str(work / "mlflow" / version)).strip()
        figure = "cold" if version == "m1" else "model_only"
        builds[version], f[f"{figure}_s"], f[f"{figure}_stages_s"] = pkgc_build(cenv, str(spec), "--model", model, "--base-image", STAND_IN, *extra)
        built.append(builds[version]["image_id"])
    cold = builds["m1"]
    f["image_bytes"] = cold["size_bytes"]
    f.update(env_bytes(cold["image"], STAND_IN))
    check("pkgc mlflow_model", answer(cold["image"], 5001, "/score", {"inputs": ROWS}), want["m1"])
    check("pkgc mlflow_model m2", answer(builds["m2"]["image"], 5001, "/score", {"inputs": ROWS}), want["m2"])
    shared = {layer["digest"]: layer for layer in custom["layers"]}
    reused = [layer for layer in cold.get("layers", []) if layer.get("digest") in shared]
    f["layers_reused_from_custom"] = [f"{layer.get('kind')} {layer.get('size', 0) / 1e6:.0f} MB" for layer in reused]
    f["bytes_reused_from_custom"] = sum(layer.get("size") or 0 for layer in reused)
    f["layers_total"] = len(cold.get("layers", []))
    f["load_after"] = load()
    return f


def bentoml_builds(work: Path, venv: Path, base: str, want: dict, minimum: float, keep: bool) -> dict:
    proj, home, f = work / "bento", work / "bento-home", {"load_before": load()}
    proj.mkdir()
    (proj / "service.py").write_text(BENTO_SERVICE)
    shutil.copy(ROOT / "bench" / "gpu" / "src" / "net.py", proj)
    env = dict(os.environ, BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True", DOCKER_BUILDKIT="0")
    sh(str(venv / "bin" / "python"), "-c", BENTO_MODELS, str(work / "m1" / "model"), str(work / "m2" / "model"), env=env)  # untimed, as pkgc model create
    image = f"{PREFIX}-bento"
    for version, extra in (("m1", ["--opt", "no-cache"]), ("m2", [])):
        check_disk(f"BentoML {version} build", minimum)
        (proj / "bentofile.yaml").write_text(BENTOFILE.format(packages=json.dumps(TORCH), base=base, version=version))
        started = time.monotonic()
        tag = sh(str(venv / "bin" / "bentoml"), "build", "-o", "tag", env=env, cwd=proj).strip().split("__tag__:")[-1]
        sh(str(venv / "bin" / "bentoml"), "containerize", tag, "--backend", "docker", "-t", f"{image}:{version}", "--opt", "force-rm", *extra, env=env)
        f["cold_s" if version == "m1" else "model_only_s"] = round(time.monotonic() - started, 1)
    return measured_peer(f, "BentoML", image, base, (3000, "/predict", {"data": ROWS}), want, keep)


def measured_peer(f: dict, tool: str, image: str, base: str, route: tuple, want: dict, keep: bool) -> dict:
    """A peer's figures after its two builds: size, environment bytes, both versions' answers checked
    against torch's own (``route``: container port, path, body), the load; its images then removed."""
    port, path, body = route
    f["image_bytes"] = size(f"{image}:m1")
    f.update(env_bytes(f"{image}:m1", base))
    for version in ("m1", "m2"):
        check(f"{tool} {version}", answer(f"{image}:{version}", port, path, body), want[version])
    f["load_after"] = load()
    remove([f"{image}:m2", f"{image}:m1"], keep)
    return f


def mlflow_builds(work: Path, venv: Path, want: dict, minimum: float, keep: bool) -> dict:
    f, image = {"load_before": load()}, f"{PREFIX}-mlflow"
    for version, extra in (("m1", ["--no-cache"]), ("m2", [])):
        check_disk(f"MLflow {version} build", minimum)
        context = work / "mlflow-docker"
        shutil.rmtree(context, ignore_errors=True)
        started = time.monotonic()
        sh(str(venv / "bin" / "mlflow"), "models", "generate-dockerfile", "-m", str(work / "mlflow" / version), "-d", str(context))
        sh("docker", "build", "-q", "--force-rm", *extra, "-t", f"{image}:{version}", str(context), env=dict(os.environ, DOCKER_BUILDKIT="0"))
        f["cold_s" if version == "m1" else "model_only_s"] = round(time.monotonic() - started, 1)
        base = next(line.split()[1] for line in (context / "Dockerfile").read_text().splitlines() if line.startswith("FROM "))
    return measured_peer(f, "MLflow", image, base, (8080, "/invocations", {"inputs": ROWS}), want, keep)


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "—"


def table(r: dict) -> str:
    p, pm, b, m = (r.get(k, {}) for k in ("pkgc", "pkgc_mlflow_model", "bentoml", "mlflow"))
    gb = lambda v: f"{v / 1e9:.2f}" if v else "—"  # noqa: E731
    s = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
    over = lambda t: ratio(t.get("image_bytes"), (t.get("env_bytes") or 0) + (t.get("base_bytes") or 0))  # noqa: E731
    rows = [
        ("cold build (s)", s(p.get("cold_s")), s(pm.get("cold_s")), s(b.get("cold_s")), s(m.get("cold_s")), ratio(p.get("cold_s"), b.get("cold_s")), ratio(pm.get("cold_s"), m.get("cold_s")), "≤ 0.3x BentoML"),
        ("fully cold: empty package cache, lock created (s)", s(p.get("fully_cold_s")), "", "", "", ratio(p.get("fully_cold_s"), b.get("cold_s")), "", ""),
        ("model-only rebuild (s)", s(p.get("model_only_s")), s(pm.get("model_only_s")), s(b.get("model_only_s")), s(m.get("model_only_s")), ratio(p.get("model_only_s"), b.get("model_only_s")), ratio(pm.get("model_only_s"), m.get("model_only_s")), "≤ 0.2x BentoML"),
        ("image (GB)", gb(p.get("image_bytes")), gb(pm.get("image_bytes")), gb(b.get("image_bytes")), gb(m.get("image_bytes")), ratio(p.get("image_bytes"), b.get("image_bytes")), ratio(pm.get("image_bytes"), m.get("image_bytes")), ""),
        ("environment installs (GB)", gb(p.get("env_bytes")), gb(pm.get("env_bytes")), gb(b.get("env_bytes")), gb(m.get("env_bytes")), "", "", ""),
        ("base (GB)", gb(p.get("base_bytes")), gb(pm.get("base_bytes")), gb(b.get("base_bytes")), gb(m.get("base_bytes")), "", "", ""),
        ("image / (environment + base)", over(p), over(pm), over(b), over(m), "", "", "pkgc ≤ 1.05x"),
        ("load average before / after", *(f"{t['load_before']} / {t['load_after']}" if "load_after" in t else "—" for t in (p, pm, b, m)), "", "", ""),
    ]  # fmt: skip
    lines = ["| figure | pkgc (custom) | pkgc (MLflow model) | BentoML | MLflow | pkgc/BentoML | pkgc/MLflow (MLflow model) | target |", "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers" / "peers.sh")
    parser.add_argument("--peers-tmp", type=Path, default=Path(tempfile.gettempdir()) / "pkgc-peers", help="peers.sh's cached venvs")
    parser.add_argument("--min-free-gb", type=float, default=12.0)
    parser.add_argument("--compression", choices=["gzip", "zstd", "none"], help="pkgc's layer compression (default: pkgc's own, gzip)")
    parser.add_argument("--keep", action="store_true", help="keep the images (pkgc's scratch cache is always deleted)")
    parser.add_argument("--skip", action="append", default=[], choices=["pkgc-mlflow", "bentoml", "mlflow"])
    args = parser.parse_args()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"))
    env.pop("PKGC_RESOLVER", None)
    base = json.loads(pkgc(env, "base-image", "build", "debian-bookworm", "--json"))["image"]
    peers = Peers(args.peers.resolve(), base, args.peers_tmp)  # sets up (cached): the stand-in, MLflow's and BentoML's venvs
    paths = peers.run('echo "__peer $PEER"\necho "__bento $BENTO_DIR"\necho "__bento_base $BENTO_BASE"')
    proj = work / "proj"
    proj.mkdir()
    shutil.copytree(ROOT / "bench" / "gpu" / "src", proj / "src")
    shutil.copy(ROOT / "bench" / "gpu" / "conda.yaml", proj)
    shutil.copy(ROOT / "bench" / "gpu" / "make_model.py", work)
    (proj / "deployment.yml").write_text(DEPLOYMENT.format(prefix=PREFIX, base=STAND_IN))
    (work / "request.json").write_text(json.dumps({"data": ROWS}))
    for seed, version in enumerate(("m1", "m2")):
        (work / version / "model").mkdir(parents=True)
        (work / version / "model" / "config.json").write_text(json.dumps({"inputs": 4, "hidden": HIDDEN, "outputs": 1, "seed": seed}))
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "nproc": os.cpu_count(), "torch": TORCH, "model_state_dict_mb": None,
                     "pkgc_compression": args.compression or "gzip (default)"}
    want: dict = {}
    pkgc_images: list[str] = []  # image ids, as each build makes one
    extra = ["--compression", args.compression] if args.compression else []
    try:
        results["pkgc"] = pkgc_custom(env, work, want, args.min_free_gb, pkgc_images, extra)
        results["model_state_dict_mb"] = round((work / "m1" / "model" / "model.pt").stat().st_size / 1e6, 1)
        peer_python = Path(paths["peer"]) / "venv" / "bin" / "python"
        (work / "mlflow").mkdir()
        (work / "mlflow" / "torch_model.py").write_text(MLFLOW_MODEL_CODE)
        for version in ("m1", "m2"):  # saved with the peer venv's mlflow (no torch there): untimed
            sh(str(peer_python), "-c", MLFLOW_SAVE, str(work / "mlflow" / "torch_model.py"), str(proj / "src" / "net.py"), str(work / version / "model"),
               str(work / "mlflow" / version), *TORCH)  # fmt: skip
        tools = {
            "pkgc_mlflow_model": lambda: pkgc_mlflow(env, work, results["pkgc"], want, args.min_free_gb, pkgc_images, extra),
            "bentoml": lambda: bentoml_builds(work, Path(paths["bento"]) / "venv", paths["bento_base"], want, args.min_free_gb, args.keep),
            "mlflow": lambda: mlflow_builds(work, Path(paths["peer"]) / "venv", want, args.min_free_gb, args.keep),
        }
        for name, run in tools.items():
            if name.replace("pkgc_mlflow_model", "pkgc-mlflow") in args.skip:
                continue
            try:
                results[name] = run()
            except SystemExit as exc:  # one tool failing is reported, the others still measured
                results[name] = {"failed": str(exc)[-1500:]}
                print(f"{name} FAILED: {exc}", file=sys.stderr)
            if name == "pkgc_mlflow_model":
                remove(pkgc_images, args.keep)
                shutil.rmtree(work / "c1", ignore_errors=True)  # pkgc's scratch cache: the disk goes to the peers
    except LowDisk as exc:
        results["stopped"] = str(exc)
        print(exc, file=sys.stderr)
    finally:
        peer_images = [f"{PREFIX}-{tool}:{version}" for tool in ("bento", "mlflow") for version in ("m2", "m1")]
        remove(pkgc_images + peer_images, args.keep)
        shutil.rmtree(work, ignore_errors=True)
    results["bench_minutes"] = round((time.monotonic() - started) / 60, 1)
    out = ROOT / "bench" / "results" / time.strftime("torch-peers-%Y%m%dT%H%M%S.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    stages = [f"- {tool} {figure.replace('_', '-')}: " + ", ".join(f"{k} {v} s" for k, v in results[tool][f"{figure}_stages_s"].items())
              for tool in ("pkgc", "pkgc_mlflow_model") for figure in ("fully_cold", "cold", "model_only")
              if f"{figure}_stages_s" in results.get(tool, {})]  # fmt: skip
    if stages:
        markdown += "\n\npkgc's stages (--progress plain):\n" + "\n".join(stages)
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    print(f"(written to {out} and .md)")


if __name__ == "__main__":
    main()
