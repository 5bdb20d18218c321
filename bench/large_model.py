"""Large-model rebuilds (a script, not a test): what a change costs when the model is gigabytes.

A custom model (the bundled sklearn example's pickle plus a weights file of random bytes, --size)
in copy mode, with the environment layer already cached, built by whole CLI calls into the Docker
engine. For each change it prints the build's wall time, the time pkgc spent before the engine's
load, the bytes sent to the engine and pkgc's peak memory:

- cold: the weights file new to pkgc (its bytes are read, stored, layered and loaded once);
- code: only score.py changed;
- small file: one small file added to the model folder;
- unchanged: nothing changed.

Then the start (the issue: a large model starts in no more than the time to read it once): the
package's init() also reads the weights file once, as a framework loading its weights does, and the
figure is `docker run` to the first 200 on /score (median of --starts), beside one read of the file
on the host: with direct I/O (as from a cold disk; the page cache is left alone, a shared machine's)
and through the page cache.

Beside them: ``sha256sum`` of the weights file (the issue's yardstick: cold ≤ 1.3× it plus the
engine load), and the disk the workspace and pkgc's store hold: what ``du`` counts, and what the
scratch filesystem's free space lost from the weights' write to the end of the cold build (on XFS or
btrfs the model layer and the workspace's copy share the weights' extents: run it with
``--scratch-in`` a folder there). Everything is made in a scratch folder and removed at the end
(images too).

Usage: python3 bench/large_model.py [--size 1.5G] [--starts 3] [--keep] [--scratch-in DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import urllib.request
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "sklearn-regression"
SPEC = """\
base_environment_source:
    type: environment_asset
    resource_id: azureml:sklearn-regression-env@latest
target_environment_name: bench-large-pkg
inferencing_server:
    type: azureml_online
    code_configuration:
      code: src
      entry_script: score.py
model:
  path: model
model_configuration:
    mode: copy
"""


def size_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]?)", text.upper())
    if not match:
        raise SystemExit(f"--size: '{text}' is not a size like 1.5G or 500M")
    return int(float(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)])


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(left, 16 << 20))
            fh.write(block)
            left -= len(block)


def timed(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str, int]:
    """Wall seconds, stderr and the child's peak RSS (KiB) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, proc.stderr, max(peak, before)


def stage_seconds(stderr: str, stage: str) -> float:
    found = re.findall(rf"pkgc \[{stage}\] done in ([\d.]+) s", stderr)
    return float(found[-1]) if found else 0.0


def sent_bytes(stderr: str) -> str:
    found = re.findall(r"pkgc \[load\] done in [\d.]+ s \(([^/]+) /", stderr)
    return found[-1].strip() if found else "0 (tagged only)"


READ_WEIGHTS = """

def _read_weights_once():
    # the bench's addition: the weights read once in init(), as a framework loading them does
    path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "weights.bin")
    total = 0
    with open(path, "rb", buffering=0) as fh:
        while block := fh.read(16 << 20):
            total += len(block)
    logging.info("weights read: %d bytes", total)


_init = init


def init():
    _init()
    _read_weights_once()
"""


def read_once(path: Path, direct: bool) -> float:
    """Seconds to read ``path`` once: with direct I/O (no page cache, as from a cold disk) or through it."""
    flags = ["iflag=direct"] if direct else []
    started = time.monotonic()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=16M", *flags], check=True, capture_output=True)
    return time.monotonic() - started


def first_answer(image: str, request: Path) -> float:
    """Seconds from `docker run` to the first 200 on /score."""
    started = time.monotonic()
    cid = subprocess.run(["docker", "run", "-d", "-p", "127.0.0.1::5001", image], check=True, capture_output=True,
                         text=True).stdout.strip()  # fmt: skip
    try:
        port = subprocess.run(["docker", "port", cid, "5001/tcp"], check=True, capture_output=True, text=True).stdout.split(":")[-1].strip()
        body = request.read_bytes()
        while time.monotonic() - started < 300:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/score", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as answer:
                    if answer.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{image} gave no 200 within 300 s")
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def du(path: Path) -> int:
    """Bytes of the distinct files under ``path`` (hard links counted once)."""
    seen, total = set(), 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def free_bytes(folder: Path) -> int:
    """Free bytes of ``folder``'s filesystem once written data is on it (``sync``)."""
    os.sync()
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def filesystem(folder: Path) -> str:
    done = subprocess.run(["stat", "-f", "-c", "%T", str(folder)], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1.5G", help="weights file size (default 1.5G)")
    parser.add_argument("--starts", type=int, default=3, help="starts of the package whose init() reads the weights")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and images")
    parser.add_argument("--scratch-in", type=Path, help="make the scratch folder here (default: the temporary folder)")
    args = parser.parse_args()
    size = size_bytes(args.size)
    scratch = Path(tempfile.mkdtemp(prefix="pkgc-bench-large-", dir=args.scratch_in))
    env = {**os.environ, "PKGC_WORKSPACE": str(scratch / "ws"), "PKGC_CACHE_DIR": str(scratch / "cache"),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    pkgc = [sys.executable, "-m", "compiler.cli"]
    project = scratch / "project"
    shutil.copytree(EXAMPLE / "src", project / "src")
    shutil.copytree(EXAMPLE / "environment", project / "environment")
    (project / "model").mkdir()
    shutil.copy(EXAMPLE / "model" / "sklearn_regression_model.pkl", project / "model")
    (project / "package.yml").write_text(SPEC)
    rows = []
    try:
        timed([*pkgc, "environment", "create", "--file", "environment/sklearn-regression-env.yml"], env, project)
        timed([*pkgc, "build", "package.yml"], env, project)  # the environment layer, cached from here on
        weights = project / "model" / "weights.bin"
        write_random(weights, size)
        free_with_weights = free_bytes(scratch)
        time.sleep(1.1)  # older than pkgc's racy-file window, as a model written a while ago is
        started = time.monotonic()
        subprocess.run(["sha256sum", str(weights)], check=True, capture_output=True)
        sha = time.monotonic() - started
        changes = [
            ("cold (weights new to pkgc)", lambda: None),
            ("code only (score.py)", lambda: (project / "src" / "score.py").open("a").write("# changed\n")),
            ("one small file added", lambda: (project / "model" / "notes.txt").write_text("v2\n")),
            ("unchanged", lambda: None),
        ]
        for name, change in changes:
            change()
            seconds, stderr, _ = timed(["/usr/bin/time", "-f", "peak-rss-kib %M", *pkgc, "build", "package.yml"], env, project)
            peak = int(re.findall(r"peak-rss-kib (\d+)", stderr)[-1])
            before_load = sum(stage_seconds(stderr, s) for s in ("resolve", "lock", "fetch", "base", "layers"))
            rows.append({"change": name, "wall_s": round(seconds, 2), "before_load_s": round(before_load, 2),
                         "load_s": stage_seconds(stderr, "load"), "sent": sent_bytes(stderr), "peak_rss_mb": peak // 1024})  # fmt: skip
            if name.startswith("cold"):
                cold_cost = free_with_weights - free_bytes(scratch)
        disk = {"model_bytes": size, "workspace_bytes": du(scratch / "ws"), "store_bytes": du(scratch / "cache" / "oci"),
                "filesystem": filesystem(scratch), "free_space_cold_build_took_bytes": cold_cost}  # fmt: skip
        with (project / "src" / "score.py").open("a") as fh:
            fh.write(READ_WEIGHTS)
        built = subprocess.run([*pkgc, "-q", "build", "package.yml", "--json"], cwd=project, env=env, capture_output=True, text=True)
        if built.returncode != 0:
            raise SystemExit(f"the build whose init() reads the weights failed:\n{built.stderr[-2000:]}")
        image = json.loads(built.stdout)["image"]
        reads = {"direct_io_s": round(read_once(weights, True), 2), "page_cache_s": round(read_once(weights, False), 2)}
        starts = [first_answer(image, EXAMPLE / "sample-request.json") for _ in range(args.starts)]
        start = {"first_200_median_s": round(statistics.median(starts), 2), "runs_s": [round(s, 2) for s in starts], "read_once": reads}
    finally:
        if not args.keep:
            images = subprocess.run(["docker", "images", "-q", "pkgc/bench-large-pkg"], capture_output=True, text=True).stdout.split()
            if images:
                subprocess.run(["docker", "rmi", "-f", *sorted(set(images))], capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    print(f"weights {size / 1e9:.2f} GB; sha256sum {sha:.2f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'change':<28} {'wall s':>7} {'pkgc s':>7} {'load s':>7} {'sent to engine':>16} {'peak MB':>8}")
    for r in rows:
        print(f"{r['change']:<28} {r['wall_s']:>7} {r['before_load_s']:>7} {r['load_s']:>7} {r['sent']:>16} {r['peak_rss_mb']:>8}")
    print(f"disk ({disk['filesystem']}): workspace {disk['workspace_bytes'] / 1e9:.2f} GB, store {disk['store_bytes'] / 1e9:.2f} GB "
          f"by du for a {size / 1e9:.2f} GB model; the cold build took {cold_cost / 1e9:.2f} GB of free space")  # fmt: skip
    print(f"start, init() reading the weights: docker run -> first 200 {start['first_200_median_s']} s (median of "
          f"{start['runs_s']}); one read of the weights on the host: {reads['direct_io_s']} s direct I/O, "
          f"{reads['page_cache_s']} s through the page cache")  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"large-model-{stamp}.json").write_text(json.dumps({"sha256sum_s": sha, "load": load, "rows": rows, "disk": disk, "start": start}, indent=1))


if __name__ == "__main__":
    main()
