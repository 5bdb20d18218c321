"""pkgc beside MLflow's and BentoML's own builds, in one run, on the same model and base (a script, not a test).

The peers come from ../shared/peers/peers.sh (it documents its functions): MLflow's iris model
($PEER/m1/model, and m2: a model-only change), the python:3.11.7-slim stand-in built on pkgc's offline
base, BentoML's project and store. pkgc packages the same MLflow model folder (registered as an
mlflow_model) on the same stand-in with its default (OCI) back end; MLflow is `mlflow models
generate-dockerfile` + `docker build` (legacy builder), as `mlflow models build-docker` does.

Figures (pkgc's package cache warm for every cold pkgc build: the package files and the compiled
files (pyc cache) an earlier build of the same lock left, each with an empty OCI store; one cold
build with an empty pyc cache too):
  cold build, lock present (pkgc), and with the lock being created (uv; pip alone for comparison);
    BentoML: `bentoml build` (which locks) + `containerize --no-cache`; MLflow: generate + build --no-cache;
  model-only rebuild: wall for the whole CLI call (pkgc: with the engine, and with no engine into an
    OCI layout), pkgc's in-process build time; image size; `docker run` -> first 200 (median of --runs,
    interleaved); sequential POSTs on one keep-alive connection: req/s and p50 (peers.sh's seq_rps).
Prints a markdown table, writes bench/results/peers-<time>.json and .md.

Usage: python3 bench/peers.py [--runs N] [--prefix NAME] [--peers PATH/peers.sh]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backends import NOWHERE, fresh_cache, median, remove_images  # noqa: E402
from bench import build, pkgc, report  # noqa: E402
from compiler.engines import DockerEngine  # noqa: E402

SPEC = """\
$schema: http://azureml/sdk-2-0/ModelVersionPackage.json
target_environment: {name}
inferencing_server:
  type: azureml_online
model_configuration:
  mode: copy
"""
STAND_IN = "python:3.11.7-slim"
# bash run after sourcing peers.sh: T NAME CMD... prints "__NAME seconds" for the command alone
TIMER = 'T() { local n=$1 s e; shift; s=$(date +%s.%N); "$@" >&2 || exit 1; e=$(date +%s.%N); echo "__$n $(awk "BEGIN{print $e - $s}")"; }\n'


class Peers:
    """Runs bash snippets with peers.sh sourced (its set-up is cached under PEERS_TMP)."""

    def __init__(self, script: Path, base: str, tmp: Path):
        self.script, self.env = script, dict(os.environ, BASE=base, PEERS_TMP=str(tmp))

    def run(self, body: str) -> dict[str, str]:
        """``__NAME value`` lines the snippet prints, as {NAME: value}; a failure stops the bench."""
        text = f'source "{self.script}" >&2\n{TIMER}{body}\n'
        proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True, env=self.env)
        if proc.returncode != 0:
            raise SystemExit(f"peers: {body.splitlines()[0]} failed: {proc.stderr.strip()[-600:]}")
        out = {}
        for line in proc.stdout.splitlines():
            if line.startswith("__"):
                name, _, value = line[2:].partition(" ")
                out[name] = value.strip()
        return out


def peer_dir(peers: Peers) -> Path:
    return Path(peers.run('echo "__peer $PEER"')["peer"])


def mlflow_builds(peers: Peers, work: Path, image: str) -> dict[str, float]:
    """MLflow: generate-dockerfile + docker build --no-cache (cold), then the m2 model on the layer cache."""
    body = f"""
mlflow_build() {{ # model-dir tag [docker build options]
  local model=$1 tag=$2; shift 2; rm -rf "{work}/mlflow"
  "$PEER/venv/bin/mlflow" models generate-dockerfile -m "$model" -d "{work}/mlflow" >/dev/null 2>&1 || return 1
  DOCKER_BUILDKIT=0 docker build -q --force-rm "$@" -t "$tag" "{work}/mlflow" >/dev/null
}}
docker rmi {image}:2 {image}:1 >/dev/null 2>&1 || true
T cold mlflow_build "$PEER/m1/model" {image}:1 --no-cache
T model_only mlflow_build "$PEER/m2/model" {image}:2
echo "__size $(docker image inspect -f '{{{{.Size}}}}' {image}:1)"
"""
    out = peers.run(body)
    return {"cold": float(out["cold"]), "model_only": float(out["model_only"]), "size": int(out["size"])}


def bento_builds(peers: Peers) -> dict[str, float]:
    out = peers.run('bento_reset\nT cold bento_cold\nT model_only bento_model_only\necho "__size $(bento_size)"')
    return {"cold": float(out["cold"]), "model_only": float(out["model_only"]), "size": int(out["size"])}


def pkgc_builds(env: dict, work: Path, spec: Path, peer: Path, image_repo: str) -> dict[str, float]:
    """Cold builds (empty OCI store, warm package files), the model-only rebuild with and without an engine."""
    figures: dict[str, float] = {}
    model1 = pkgc(env, "model", "create", "--name", "iris", "--type", "mlflow_model", "--path", str(peer / "m1" / "model")).strip()
    base = ("--base-image", STAND_IN)
    pkgc(env, "build", str(spec), "--model", model1, *base, "--emit", "plan")  # lock + fetch outside the timings
    lock = spec.with_name(spec.stem + ".conda-lock.yml")
    kept_lock = lock.read_bytes()

    _, figures["cold_lock_present_no_pyc"] = build(dict(env, PKGC_CACHE_DIR=str(fresh_cache(work, "c0"))), spec, model1, *base)
    warm_pyc = work / "c0"  # the package cache as the build before left it: files and compiled files
    cold, figures["cold_lock_present"] = build(dict(env, PKGC_CACHE_DIR=str(fresh_cache(work, "c1", warm_pyc))), spec, model1, *base)
    lock.unlink()
    _, figures["cold_lock_created"] = build(dict(env, PKGC_CACHE_DIR=str(fresh_cache(work, "c2", warm_pyc))), spec, model1, *base)
    lock.unlink()
    _, figures["cold_lock_created_pip"] = build(dict(env, PKGC_RESOLVER="pip", PKGC_CACHE_DIR=str(fresh_cache(work, "c3", warm_pyc))), spec, model1, *base)
    lock.write_bytes(kept_lock)
    figures["size"] = cold["size_bytes"]
    figures["image"] = cold["image"]

    warm = dict(env, PKGC_CACHE_DIR=str(work / "c1"))  # the store the lock-present cold build filled
    model2 = pkgc(env, "model", "create", "--name", "iris", "--type", "mlflow_model", "--path", str(peer / "m2" / "model")).strip()
    after, figures["model_only"] = build(warm, spec, model2, *base)
    figures["model_only_in_process"] = after["build_seconds"]
    try:
        _, figures["model_only_no_engine"] = build(dict(warm, DOCKER_HOST=NOWHERE), spec, model2, *base, "--output", f"oci:{work / 'out'}")
    except SystemExit as exc:  # e.g. a base only the engine can name: reported, not fatal
        print(f"(no-engine model-only rebuild skipped: {str(exc).splitlines()[0][:200]})", file=sys.stderr)
    return figures


def serving(peers: Peers, pkgc_image: str, mlflow_image: str, runs: int) -> dict[str, dict[str, float]]:
    """First 200 after `docker run` (median of ``runs``, interleaved) and sequential req/s + p50."""
    body = f"""
req="$PEER/m1/model/serving_input_example.json"
for i in $(seq {runs}); do
  echo "__start_pkgc_$i $(cold_start {pkgc_image} 5001 /score "$req")"
  echo "__start_bento_$i $(bento_start)"
  echo "__start_mlflow_$i $(cold_start {mlflow_image}:1 8080 /invocations "$req")"
done
echo "__seq_pkgc $(seq_rps {pkgc_image} 5001 /score "$req")"
echo "__seq_bento $(seq_rps $BENTO_IMAGE:1 3000 /predict "$BENTO_REQ")"
echo "__seq_mlflow $(seq_rps {mlflow_image}:1 8080 /invocations "$req")"
"""
    out = peers.run(body)
    figures: dict[str, dict[str, float]] = {}
    for tool in ("pkgc", "bento", "mlflow"):
        rps, p50 = out[f"seq_{tool}"].split()
        starts = [float(out[f"start_{tool}_{i}"]) for i in range(1, runs + 1)]
        figures[tool] = {"first_200": median(starts), "seq_rps": float(rps), "seq_p50_ms": float(p50)}
    return figures


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "—"


def table(f: dict) -> str:
    """The markdown table of the flat figures."""
    rows = [
        ("cold build, package cache warm, lock present (s)", "cold_build_s", "≤ 0.3x MLflow, ≤ 0.5x BentoML"),
        ("cold build, package files warm, pyc cache empty (s)", "cold_build_no_pyc_s", ""),
        ("cold build, lock created: uv (s)", "cold_build_lock_created_s", "≤ 0.6x BentoML"),
        ("cold build, lock created: pip (s)", "cold_build_lock_created_pip_s", ""),
        ("model-only rebuild, whole CLI call (s)", "model_only_rebuild_s", ""),
        ("model-only rebuild, in-process (s)", "model_only_rebuild_in_process_s", "≤ 0.5 s beyond hashing"),
        ("model-only rebuild, no engine, whole CLI call (s)", "model_only_rebuild_no_engine_s", "≤ 2 s"),
        ("image (MB)", "image_mb", ""),
        ("docker run -> first 200 (s, median)", "first_200_s", "≤ 0.7x BentoML"),
        ("sequential req/s, one keep-alive connection", "seq_rps", "≥ 1.5x BentoML"),
        ("sequential p50 (ms)", "seq_p50_ms", "≤ BentoML"),
    ]
    lines = ["| figure | pkgc | BentoML | MLflow | pkgc/BentoML | pkgc/MLflow | target |", "|---|---|---|---|---|---|---|"]
    for label, key, target in rows:
        p, b, m = f.get(f"pkgc_{key}"), f.get(f"bentoml_{key}"), f.get(f"mlflow_{key}")
        show = lambda v: "—" if v is None else f"{v:.2f}".rstrip("0").rstrip(".")  # noqa: E731
        lines.append(f"| {label} | {show(p)} | {show(b)} | {show(m)} | {ratio(p, b)} | {ratio(p, m)} | {target} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of each start-up measurement")
    parser.add_argument("--prefix", default="bench-peers", help="image names: pkgc/<prefix>-iris, <prefix>-mlflow-iris")
    parser.add_argument("--peers", type=Path, default=ROOT.parent / "shared" / "peers" / "peers.sh")
    parser.add_argument("--peers-tmp", type=Path, default=Path(tempfile.gettempdir()) / "pkgc-peers")
    args = parser.parse_args()
    started = time.monotonic()
    engine = DockerEngine.connect()
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-peers-"))
    env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"))
    env.pop("PKGC_RESOLVER", None)
    base = json.loads(pkgc(env, "base-image", "build", "debian-bookworm", "--json"))["image"]
    peers = Peers(args.peers.resolve(), base, args.peers_tmp)
    peer = peer_dir(peers)  # the first sourcing sets the peers up (cached): outside every timing
    name = f"{args.prefix}-iris"
    spec = work / "spec" / "package.yml"
    spec.parent.mkdir()
    spec.write_text(SPEC.format(name=name))
    mlflow_image = f"{args.prefix}-mlflow-iris"
    remove_images(engine, [f"pkgc/{name}"])

    p = pkgc_builds(env, work, spec, peer, f"pkgc/{name}")
    b = bento_builds(peers)
    m = mlflow_builds(peers, work, mlflow_image)
    s = serving(peers, str(p["image"]), mlflow_image, args.runs)
    figures: dict[str, object] = {
        "pkgc_cold_build_s": p["cold_lock_present"], "pkgc_cold_build_no_pyc_s": p["cold_lock_present_no_pyc"], "pkgc_cold_build_lock_created_s": p["cold_lock_created"],
        "pkgc_cold_build_lock_created_pip_s": p["cold_lock_created_pip"],
        "pkgc_model_only_rebuild_s": p["model_only"], "pkgc_model_only_rebuild_in_process_s": p["model_only_in_process"],
        "pkgc_model_only_rebuild_no_engine_s": p.get("model_only_no_engine"),
        "bentoml_cold_build_s": b["cold"], "bentoml_cold_build_lock_created_s": b["cold"], "bentoml_model_only_rebuild_s": b["model_only"],
        "mlflow_cold_build_s": m["cold"], "mlflow_cold_build_lock_created_s": m["cold"], "mlflow_model_only_rebuild_s": m["model_only"],
        "pkgc_image_mb": round(p["size"] / 1e6, 1), "bentoml_image_mb": round(b["size"] / 1e6, 1), "mlflow_image_mb": round(m["size"] / 1e6, 1),
    }  # fmt: skip
    for tool, key in (("pkgc", "pkgc"), ("bento", "bentoml"), ("mlflow", "mlflow")):
        figures[f"{key}_first_200_s"] = s[tool]["first_200"]
        figures[f"{key}_seq_rps"] = s[tool]["seq_rps"]
        figures[f"{key}_seq_p50_ms"] = s[tool]["seq_p50_ms"]
    figures["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    figures["bench_minutes"] = round((time.monotonic() - started) / 60, 1)
    out = report({k: v for k, v in figures.items() if v is not None}, "peers-")
    markdown = table(figures)
    out.with_suffix(".md").write_text(markdown + "\n")
    print()
    print(markdown)
    remove_images(engine, [f"pkgc/{name}"])
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
