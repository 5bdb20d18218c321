"""A fleet of CI runners building packages that share a base and a few environments, with and without
pkgc's shared build cache in a registry (``--cache``), on one loopback registry (a script; a CI-sized
run is tests/e2e/test_fleet_bench.py).

N = E x M packages: E environments (the example's conda file, and variants adding one small package,
so they share their big scipy layer but not the rest) x M small scikit-learn models (Ridge, one alpha
each), one scoring script. K simulated runners, each a thread driving the real ``pkgc`` command line
with its own empty cache folder and workspace (the package files hard-linked from a warm mirror,
as a runner next to a package mirror; compiled files cold unless --warm-pyc), no engine, in parallel;
each builds its share of the packages and pushes each to its own repository. Packages are dealt so
that runners start on different environments (a matrix's first wave rarely builds one environment
twice). The base image is in the registry before the fleet starts (a team's base in its registry):
each runner pulls it, pushes mount it. Runners talk to the registry through a counting TCP proxy
(bytes on the wire up and down, all runners); pkgc's own client logs each blob it uploads, mounts or
downloads, per runner.

Modes: ``none`` (no shared cache: every runner builds every environment it needs; pushes by skopeo)
and ``shared`` (``--cache REGISTRY/fleet-shared/cache``). Then ``solo``: one runner builds a package
cold with --cache on an empty cache repository, and a second runner with an empty cache builds it
again (the issue's target: <= 0.4x the first's time, no environment byte uploaded). With
``--bentoml RUNS``: BentoML's cold build (../shared/peers/peers.sh: bentoml build + containerize
--no-cache on its iris model) timed RUNS times, the fleet figure extrapolated from that (BentoML has
no cache shared between runners: each package is a cold build on an empty runner). With
``--bentoml-fleet``: BentoML builds the same N packages (same models, same environments' pip packages)
on K runners in parallel, each with its own empty BentoML store (bench/bento_fleet.py), and one of its
images answers a real POST, compared with the host model's prediction.

Usage: python bench/fleet.py [--envs 3] [--models 7] [--runners 3] [--warm-pyc] [--no-solo]
                             [--bentoml RUNS] [--bentoml-fleet [--keep-bentoml-images]] [--bentoml-only]
                             [--work DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.options import load_options  # noqa: E402
from tests.e2e.registry import start_registry  # noqa: E402

NOWHERE = "unix:///nonexistent/docker.sock"
EXAMPLE = ROOT / "examples" / "sklearn-regression"
BASE_IMAGE = "pkgc/base-debian-bookworm:latest"
EXTRAS = ["six==1.17.0", "tomli==2.2.1", "idna==3.10", "certifi==2025.1.31", "wrapt==1.17.2"]  # env e > 0 adds EXTRAS[e - 1]


@dataclass(frozen=True)
class Package:
    name: str
    env: int
    model: int
    folder: Path


@dataclass
class Built:
    package: str
    runner: int
    seconds: float
    digest: str
    layers: list[dict]


@dataclass
class RunnerReport:
    runner: int
    seconds: float = 0.0
    built: list[Built] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # what pkgc's registry client moved (transfers.jsonl)


class CountingProxy:
    """A loopback TCP proxy to the registry that counts bytes each way."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = self.down = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, "down"), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, way: str) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
                with self.lock:
                    setattr(self, way, getattr(self, way) + len(data))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def pkgc(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], capture_output=True, text=True, env=env, cwd=ROOT)


def checked(proc: subprocess.CompletedProcess, what: str) -> str:
    if proc.returncode != 0:
        raise SystemExit(f"fleet: {what} failed ({proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def write_inputs(work: Path, envs: int, models: int) -> list[Package]:
    """The models (work/models/mM), the environments (work/envs/eE) and the packages, in the order dealt."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True)
    for m in range(models):
        folder = work / "models" / f"m{m}"
        if not folder.exists():
            folder.mkdir(parents=True)
            joblib.dump(Ridge(alpha=0.1 + m).fit(x, y), folder / "sklearn_regression_model.pkl")
    conda = (EXAMPLE / "environment" / "conda.yaml").read_text()
    for e in range(envs):
        folder = work / "envs" / f"e{e}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "conda.yaml").write_text(conda + (f"      - {EXTRAS[e - 1]}\n" if e else ""))
        (folder / "env.yml").write_text(f"name: fleet-env-{e}\nimage: {BASE_IMAGE}\nconda_file: conda.yaml\n")
    # dealt so that a wave of runners starts on different environments: runner j's i-th package has env (j + i) % E
    order = [(m, (j + m) % envs) for m in range(models) for j in range(envs)]
    packages = []
    for m, e in order:
        folder = work / "packages" / f"e{e}-m{m}"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "src").exists():
            shutil.copytree(EXAMPLE / "src", folder / "src")
        (folder / "package.yml").write_text(
            "base_environment_source:\n  type: environment_asset\n  resource_id: azureml:fleet-env-%d@latest\n"
            "target_environment_name: fleet-e%d-m%d\ninferencing_server:\n  type: azureml_online\n  code_configuration:\n"
            "    code: src\n    entry_script: score.py\nmodel_configuration:\n  mode: copy\n" % (e, e, m))
        packages.append(Package(f"e{e}-m{m}", e, m, folder))
    return packages


def prepare(work: Path, envs: int, models: int, runners: int) -> tuple[list[Package], str, Path]:
    """The packages, the base as an OCI layout, and the warm package mirror (a cache folder)."""
    base = work / "base"
    if not base.exists():
        subprocess.run(["skopeo", "copy", "--quiet", f"docker-daemon:{BASE_IMAGE}", f"oci:{base}:base"], check=True, capture_output=True)
    mirror = work / "mirror"
    if not (mirror / "files").exists():
        shutil.copytree(load_options().cache_dir / "files", mirror / "files", copy_function=os.link)
    packages = write_inputs(work, envs, models)
    # one lock per environment (resolved once, as a repository keeps its locks), its wheels in the mirror
    env = {**os.environ, "PKGC_CACHE_DIR": str(mirror), "PKGC_WORKSPACE": str(work / "prep-ws"), "DOCKER_HOST": NOWHERE}
    for e in range(envs):
        checked(pkgc(env, "-q", "environment", "create", "--file", str(work / "envs" / f"e{e}" / "env.yml")), f"environment e{e}")
        first = next(p for p in packages if p.env == e)
        lock = first.folder / "package.conda-lock.yml"
        if not lock.exists():
            model = checked(pkgc(env, "-q", "model", "create", "--name", "fleet-m0", "--path", str(work / "models" / "m0")), "model").strip()
            checked(pkgc(env, "-q", "build", str(first.folder / "package.yml"), "--model", model, "--base-image", f"oci:{base}:base",
                         "--emit", "plan"), f"locking e{e}")  # fmt: skip
        for other in packages:
            if other.env == e and other is not first:
                shutil.copy(lock, other.folder / "package.conda-lock.yml")
    return packages, f"oci:{base}:base", mirror


def run_runner(index: int, packages: list[Package], work: Path, mirror: Path, base: str, registry: str, mode: str,
               warm_pyc: bool, report: RunnerReport) -> None:  # fmt: skip
    root = work / "runs" / mode / f"r{index}"
    shutil.rmtree(root, ignore_errors=True)
    cache = root / "cache"
    shutil.copytree(mirror / "files", cache / "files", copy_function=os.link)
    if warm_pyc and (load_options().cache_dir / "pyc").is_dir():
        shutil.copytree(load_options().cache_dir / "pyc", cache / "pyc", copy_function=os.link)
    env = {**os.environ, "PKGC_CACHE_DIR": str(cache), "PKGC_WORKSPACE": str(root / "ws"), "DOCKER_HOST": NOWHERE, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    for package in packages:
        begun = time.monotonic()
        checked(pkgc(env, "-q", "environment", "create", "--file", str(work / "envs" / f"e{package.env}" / "env.yml")), "environment")
        model = checked(pkgc(env, "-q", "model", "create", "--name", f"fleet-m{package.model}", "--path",
                             str(work / "models" / f"m{package.model}")), "model").strip()  # fmt: skip
        args = ["build", str(package.folder / "package.yml"), "--model", model, "--base-image", base, "--json",
                "--push", f"{registry}/fleet-{mode}/{package.name}:1"]  # fmt: skip
        if mode != "none":
            args += ["--cache", f"{registry}/fleet-{mode}/cache"]
        result = json.loads(checked(pkgc(env, *args), f"runner {index} building {package.name}"))
        report.built.append(Built(package.name, index, time.monotonic() - begun, result["manifest_digest"], result["layers"]))
    report.seconds = time.monotonic() - started
    log = cache / "oci" / "transfers.jsonl"
    report.events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def run_fleet(mode: str, packages: list[Package], runners: int, work: Path, mirror: Path, base: str, proxy: CountingProxy,
              warm_pyc: bool) -> tuple[float, list[RunnerReport], tuple[int, int]]:  # fmt: skip
    shares = [packages[r::runners] for r in range(runners)]
    reports = [RunnerReport(r) for r in range(runners)]
    threads = [threading.Thread(target=_guarded, args=(run_runner, r, shares[r], work, mirror, base, f"127.0.0.1:{proxy.port}",
                                                        mode, warm_pyc, reports[r]))  # fmt: skip
               for r in range(runners)]
    up, down = proxy.up, proxy.down
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    failed = [r for r in reports if len(r.built) != len(shares[r.runner])]
    if failed:
        raise SystemExit(f"fleet: runner {failed[0].runner} did not finish ({mode}); see above")
    return wall, reports, (proxy.up - up, proxy.down - down)


def _guarded(fn, *args) -> None:
    try:
        fn(*args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)


def distinct_layers(reports: list[RunnerReport]) -> dict[str, int]:
    """digest -> size of every layer pkgc built for the packages (the base's are in the registry before
    the fleet starts: pulled and mounted, never uploaded)."""
    sizes: dict[str, int] = {}
    for report in reports:
        for built in report.built:
            sizes.update({l["digest"]: l["size"] for l in built.layers})
    return sizes


def summary(mode: str, wall: float, reports: list[RunnerReport], wire: tuple[int, int], layers: dict[str, int]) -> dict:
    events = [e for r in reports for e in r.events]
    environment = {l["digest"] for r in reports for b in r.built for l in b.layers if l["kind"] == "environment"}
    return {
        "mode": mode, "wall_seconds": round(wall, 1), "packages": sum(len(r.built) for r in reports),
        "runner_seconds": [round(r.seconds, 1) for r in reports],
        "package_seconds": {b.package: round(b.seconds, 1) for r in reports for b in r.built},
        "wire_bytes_up": wire[0], "wire_bytes_down": wire[1],
        "runner_layer_bytes_uploaded": [sum(e["bytes"] for e in r.events if e["op"] == "upload" and e["digest"] in layers) for r in reports],
        "client_layer_bytes_uploaded": sum(e["bytes"] for e in events if e["op"] == "upload" and e["digest"] in layers),
        "client_environment_bytes_uploaded": sum(e["bytes"] for e in events if e["op"] == "upload" and e["digest"] in environment),
        "client_bytes_downloaded": sum(e["bytes"] for e in events if e["op"] == "download"),
        "mounts": sum(1 for e in events if e["op"] == "mount"),
        "package_layer_bytes": sum(l["size"] for r in reports for b in r.built for l in b.layers),
    }  # fmt: skip


def solo(packages: list[Package], work: Path, mirror: Path, base: str, proxy: CountingProxy, warm_pyc: bool) -> dict:
    """A package built cold with --cache on an empty cache repository, then by a second empty runner."""
    figures = {}
    for who in ("first", "second"):
        report = RunnerReport(0)
        up = proxy.up
        run_runner(0, packages[:1], work, mirror, base, f"127.0.0.1:{proxy.port}", "solo", warm_pyc, report)
        shutil.move(str(work / "runs" / "solo" / "r0"), str(work / "runs" / "solo" / who))
        environment = {l["digest"] for l in report.built[0].layers if l["kind"] == "environment"}
        figures[who] = {"seconds": round(report.built[0].seconds, 1), "digest": report.built[0].digest, "wire_bytes_up": proxy.up - up,
                        "environment_bytes_uploaded": sum(e["bytes"] for e in report.events if e["op"] == "upload" and e["digest"] in environment),
                        "environment_bytes_downloaded": sum(e["bytes"] for e in report.events if e["op"] == "download" and e["digest"] in environment)}  # fmt: skip
    figures["ratio"] = round(figures["second"]["seconds"] / figures["first"]["seconds"], 2)
    return figures


def peers_script() -> Path:
    peers = ROOT.parent / "shared" / "peers" / "peers.sh"
    return peers if peers.exists() else Path("/work/shared/peers/peers.sh")


def bentoml(runs: int, work: Path) -> dict:
    """BentoML's cold build (peers.sh: bentoml build + containerize --no-cache), timed ``runs`` times."""
    peers = peers_script()
    # not under set -e: peers.sh's own checks return non-zero on purpose; its failures exit 1 with a line
    script = (f"export BASE={BASE_IMAGE} PEERS_TMP={work / 'peers'}; source {peers} || exit 1; "
              "bento_reset; s=$(date +%s.%N); bento_cold || exit 1; e=$(date +%s.%N); echo \"$e - $s\" | bc")  # fmt: skip
    seconds = []
    for _ in range(runs):
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()[-300:]}
        seconds.append(float(proc.stdout.strip().splitlines()[-1]))
    return {"cold_seconds": [round(s, 1) for s in seconds]}


def bentoml_fleet(packages: list[Package], runners: int, work: Path, keep: bool) -> dict:
    """BentoML building the same packages on the same number of runners (bench/bento_fleet.py)."""
    from bento_fleet import fleet

    return fleet(packages, runners, work, peers_script(), BASE_IMAGE, EXAMPLE / "sample-request.json", keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", type=int, default=3)
    parser.add_argument("--models", type=int, default=7)
    parser.add_argument("--runners", type=int, default=3)
    parser.add_argument("--warm-pyc", action="store_true", help="runners start with this host's compiled-files cache")
    parser.add_argument("--no-solo", action="store_true", help="skip the first/second runner measurement")
    parser.add_argument("--bentoml", type=int, default=0, metavar="RUNS", help="also time BentoML's cold build RUNS times")
    parser.add_argument("--bentoml-fleet", action="store_true",
                        help="also have BentoML build the same packages on the same runners (its own store per runner)")
    parser.add_argument("--bentoml-only", action="store_true",
                        help="only BentoML: its cold build (--bentoml RUNS times) and/or its fleet (--bentoml-fleet)")
    parser.add_argument("--keep-bentoml-images", action="store_true", help="leave the fleetbento-* images and stores")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new one under /tmp)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args()
    if not 1 <= args.envs <= len(EXTRAS) + 1:
        raise SystemExit(f"fleet: --envs is 1 to {len(EXTRAS) + 1}")
    import tempfile

    work = args.work or Path(tempfile.mkdtemp(prefix="pkgc-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.bentoml_only:
        out: dict = {"packages": args.envs * args.models, "runners": args.runners, "load": os.getloadavg()}
        if args.bentoml or not args.bentoml_fleet:
            bento = bentoml(max(args.bentoml, 1), work)
            if "cold_seconds" in bento:
                mean = sum(bento["cold_seconds"]) / len(bento["cold_seconds"])
                bento["fleet_seconds_estimate"] = round(mean * -(-args.envs * args.models // args.runners), 1)
            out["bentoml"] = bento
        if args.bentoml_fleet:
            out["bentoml_fleet"] = bentoml_fleet(write_inputs(work, args.envs, args.models), args.runners, work, args.keep_bentoml_images)
            out["load_after"] = os.getloadavg()
        print(json.dumps(out, indent=2))
        return
    for runs in ("none", "shared", "solo"):
        shutil.rmtree(work / "runs" / runs, ignore_errors=True)
    shutil.rmtree(work / "registry", ignore_errors=True)
    started = time.monotonic()
    packages, layout, mirror = prepare(work, args.envs, args.models, args.runners)
    prepared = time.monotonic() - started
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = start_registry(work / "registry", port)
    proxy = CountingProxy(port)  # every runner's registry traffic, counted both ways
    try:
        # the team's base image in its registry (as runners pull it from theirs): pulled by each runner,
        # mounted (not uploaded) by every push
        base = f"127.0.0.1:{proxy.port}/fleet-base/debian:1"
        subprocess.run(["skopeo", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", layout, f"docker://{base}"],
                       check=True, capture_output=True)  # fmt: skip
        figures: dict = {"packages": len(packages), "envs": args.envs, "models": args.models, "runners": args.runners,
                         "warm_pyc": args.warm_pyc, "prepare_seconds": round(prepared, 1), "load_before": os.getloadavg()}  # fmt: skip
        runs = {}
        for mode in ("none", "shared"):
            runs[mode] = run_fleet(mode, packages, args.runners, work, mirror, base, proxy, args.warm_pyc)
        layers = distinct_layers([r for _w, reports, _wire in runs.values() for r in reports])
        figures["distinct_layer_bytes"] = sum(layers.values())
        for mode, (wall, reports, wire) in runs.items():
            figures[mode] = summary(mode, wall, reports, wire, layers)
        digests = {mode: {b.package: b.digest for r in reports for b in r.built} for mode, (_w, reports, _wire) in runs.items()}
        figures["same_digests"] = digests["none"] == digests["shared"]
        figures["upload_ratio"] = round(figures["shared"]["client_layer_bytes_uploaded"] / figures["distinct_layer_bytes"], 3)
        if not args.no_solo:
            figures["solo"] = solo(packages, work, mirror, base, proxy, args.warm_pyc)
        if args.bentoml:
            bento = bentoml(args.bentoml, work)
            if "cold_seconds" in bento:
                mean = sum(bento["cold_seconds"]) / len(bento["cold_seconds"])
                bento["fleet_seconds_estimate"] = round(mean * -(-len(packages) // args.runners), 1)
            figures["bentoml"] = bento
        if args.bentoml_fleet:
            figures["bentoml_fleet"] = bentoml_fleet(packages, args.runners, work, args.keep_bentoml_images)
        figures["load_after"] = os.getloadavg()
    finally:
        proxy.close()
        registry.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(report(figures))
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"fleet-{stamp}.json").write_text(json.dumps(figures, indent=2))
    (out / f"fleet-{stamp}.md").write_text(report(figures))


def report(f: dict) -> str:
    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    lines = [f"fleet: {f['packages']} packages ({f['envs']} environments x {f['models']} models) on {f['runners']} runners; "
             f"load {f['load_before'][0]:.1f} before, {f['load_after'][0]:.1f} after; compiled files {'warm' if f['warm_pyc'] else 'cold'}",
             "", "| | no shared cache | --cache (shared) |", "|---|---|---|"]  # fmt: skip
    none, shared = f["none"], f["shared"]
    none = {**none, "client_layer_bytes_uploaded": None, "mounts": None}  # pushed by skopeo: the wire counts them
    for label, key, fmt in (("total wall", "wall_seconds", lambda v: f"{v} s"), ("per runner", "runner_seconds", lambda v: ", ".join(f"{s} s" for s in v)),
                            ("bytes up (wire)", "wire_bytes_up", mb), ("bytes down (wire)", "wire_bytes_down", mb),
                            ("layer bytes uploaded (pkgc's client)", "client_layer_bytes_uploaded", mb),
                            ("blobs mounted", "mounts", str)):  # fmt: skip
        lines.append(f"| {label} | {'-' if none[key] is None else fmt(none[key])} | {fmt(shared[key])} |")
    lines += ["", f"distinct layers pkgc built: {mb(f['distinct_layer_bytes'])}; layer bytes uploaded with --cache / distinct = {f['upload_ratio']} "
              f"(target <= 1.1); same digests in both modes: {f['same_digests']}"]  # fmt: skip
    if "solo" in f:
        s = f["solo"]
        lines.append(f"second runner, empty cache, same package: {s['second']['seconds']} s vs the first's {s['first']['seconds']} s = "
                     f"{s['ratio']}x (target <= 0.4); environment bytes it uploaded: {s['second']['environment_bytes_uploaded']}, "
                     f"downloaded: {s['second']['environment_bytes_downloaded']}")  # fmt: skip
    if "bentoml" in f:
        b = f["bentoml"]
        lines.append(f"BentoML cold build (peers.sh, iris model): {b.get('cold_seconds')} s; fleet of {f['packages']} on {f['runners']} "
                     f"runners estimated {b.get('fleet_seconds_estimate')} s" if "cold_seconds" in b else f"BentoML: {b['error']}")  # fmt: skip
    if "bentoml_fleet" in f:
        lines += ["", *bentoml_fleet_report(f)]
    return "\n".join(lines) + "\n"


def bentoml_fleet_report(f: dict) -> list[str]:
    """pkgc's two modes against BentoML's fleet of the same packages on the same runners."""
    mb = lambda n: f"{n / 1e6:.1f} MB"  # noqa: E731
    b, none, shared = f["bentoml_fleet"], f["none"], f["shared"]
    runners = lambda v: ", ".join(f"{s} s" for s in v)  # noqa: E731
    lines = [f"BentoML building the same {f['packages']} packages on {f['runners']} runners ({b['store']}; "
             f"load {b['load_before'][0]:.1f} before, {b['load_after'][0]:.1f} after):", "",
             "| | pkgc, no shared cache | pkgc, --cache | BentoML |", "|---|---|---|---|",
             f"| packages built | {none['packages']} | {shared['packages']} | {b['packages']} |",
             f"| total wall | {none['wall_seconds']} s | {shared['wall_seconds']} s | {b['wall_seconds']} s |",
             f"| per runner | {runners(none['runner_seconds'])} | {runners(shared['runner_seconds'])} | {runners(b['runner_seconds'])} |",
             f"| image bytes above the base, all packages | {mb(none['package_layer_bytes'])} (compressed layers) | "
             f"{mb(shared['package_layer_bytes'])} (compressed layers) | {mb(b['bytes_above_base_total'])} (in the engine, uncompressed) |",
             f"| distinct bytes | {mb(f['distinct_layer_bytes'])} (layers pkgc built, compressed) | same | "
             f"{mb(b['distinct_bytes'])} (engine, with the {mb(b['base_bytes'])} base) |"]  # fmt: skip
    if "answer" in b:
        a = b["answer"]
        lines.append(f"\nBentoML image {a['image']} answered POST /predict in {a['seconds_to_answer']} s: {a['answer']}; "
                     f"the host's model: {a['expected']}; same: {a['matches']}")  # fmt: skip
    for error in b.get("errors", []):
        lines.append(f"BentoML runner error: {error}")
    return lines


if __name__ == "__main__":
    main()
