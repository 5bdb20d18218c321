"""Smoke-test a package: start it, wait for the health route, POST a request, compare the answer.

Whatever is started is removed again, pass or fail. A failure is one VerifyError (exit 4) whose
message says what went wrong and ends with the container's last log lines (the scoring script's
exception, when there is one).

``verify_image`` first checks that every ELF file of the image is built for its platform
(``compiler.runtime.architecture``; the image read from pkgc's OCI store or an ``oci:`` layout), then
runs the smoke test in the container engine when the platform is this host's, or under qemu-user in a
chroot of the image's root filesystem when it is not (``compiler.runtime.qemu_engine``: the same flow,
with a longer start timeout: emulated Python starts 10-50x slower).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from compiler.engines.base import Engine
from compiler.engines.gpus import GpuRequest
from compiler.errors import PkgcError, ResolveError, VerifyError, excerpt
from compiler.oci.store import OciStore
from compiler.platform import Platform
from compiler.mlflow.example import example_request
from compiler.runtime.http import request
from compiler.runtime.run import score_url, start_package, wait_until_ready
from compiler.workspace import Workspace

LOG_LINES = 6
SERVER_PACKAGES = ("azureml_inference_server_http.", "azureml.", "gunicorn.", "flask.", "werkzeug.")
QEMU_START_TIMEOUT = 900.0  # seconds an emulated server may take to answer its health route (and a request)
EXCEPTION_RE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::\s.*)?$")


@dataclass(frozen=True)
class Expected:
    """The JSON the response must match (the keys it names, numbers within ``rel_tol``); ``source`` names it in messages."""

    value: object
    source: str
    rel_tol: float = 1e-6
    abs_tol: float = 1e-9


@dataclass(frozen=True)
class VerifyRequest:
    image: str
    body: bytes | None = None  # None: only the health route is checked
    expected: Expected | None = None
    timeout: float = 120.0
    model_path: Path | None = None
    mount_model: bool = True
    gpus: GpuRequest | None = None
    platform: Platform | None = None  # None: this host's
    start_timeout: float | None = None  # the health route's wait; None: ``timeout`` (QEMU_START_TIMEOUT under qemu)


@dataclass(frozen=True)
class VerifyResult:
    image: str
    url: str
    model_mounted: bool
    ready_seconds: float
    scored: bool
    status: int | None
    score_seconds: float | None
    compared: bool
    response: object | None
    sbom: dict | None = None  # the SBOM check: digest, packages, matches_lock
    gpus: str | None = None  # the --gpus the container ran with
    architecture: dict | None = None  # the ELF check (None: the image is not in pkgc's OCI store)
    runner: str = "engine"  # "engine", or "qemu" for a foreign platform
    platform: str | None = None

    def as_dict(self) -> dict:
        return {"passed": True, "image": self.image, "model_mounted": self.model_mounted,
                "ready_seconds": round(self.ready_seconds, 2), "scored": self.scored, "status": self.status,
                "score_seconds": None if self.score_seconds is None else round(self.score_seconds, 3),
                "compared": self.compared, "response": self.response, "sbom": self.sbom, "gpus": self.gpus,
                "platform": self.platform, "runner": self.runner, "architecture": self.architecture}  # fmt: skip


def first_difference(actual: object, expected: object, rel_tol: float, abs_tol: float, path: str = "$") -> str | None:
    """Where ``actual`` differs from ``expected`` (``$.key[3]: got 1, expected 2``), or None when it matches.

    A dict matches when every key ``expected`` names matches (keys it does not name, such as a V2
    answer's random ``id``, are not compared), at any depth; a list matches element by element (same
    length); numbers within the tolerances; everything else exactly."""
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None or actual is None:
        return None if actual is expected or (type(actual) is type(expected) and actual == expected) else _got(path, actual, expected)
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return None if math.isclose(actual, expected, rel_tol=rel_tol, abs_tol=abs_tol) else _got(path, actual, expected)
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = [key for key in expected if key not in actual]
        if missing:
            return f"{path}: no key {json.dumps(missing[0])} (the answer has {json.dumps(sorted(actual))[:120]})"
        diffs = (first_difference(actual[k], expected[k], rel_tol, abs_tol, f"{path}.{k}") for k in expected)
        return next((d for d in diffs if d), None)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(actual) != len(expected):
            return f"{path}: {len(actual)} items, expected {len(expected)}"
        diffs = (first_difference(a, e, rel_tol, abs_tol, f"{path}[{i}]") for i, (a, e) in enumerate(zip(actual, expected)))
        return next((d for d in diffs if d), None)
    return None if actual == expected else _got(path, actual, expected)


def _got(path: str, actual: object, expected: object) -> str:
    return f"{path}: got {json.dumps(actual)[:80]}, expected {json.dumps(expected)[:80]}"


def raised_exception(lines: list[str]) -> str | None:
    """The last exception line of a traceback, preferring the scoring script's own over the server's wrapper."""
    raised = [m.group(0).strip() for line in lines if (m := EXCEPTION_RE.match(line))]
    own = [line for line in raised if not line.startswith(SERVER_PACKAGES)]
    chosen = own or raised
    return chosen[-1] if chosen else None


def log_tail(engine: Engine, container_id: str) -> str:
    """The last log lines, joined on one line, led by the exception the scoring script raised, if any."""
    lines = [line.rstrip() for line in engine.logs(container_id).splitlines() if line.strip(" ^~\t")]
    raised = raised_exception(lines)
    tail = " | ".join(line.strip() for line in lines[-LOG_LINES:])
    return (f"raised {raised}; " if raised else "") + f"container log: {tail or '(empty)'}"


def verify_package(engine: Engine, workspace: Workspace, req: VerifyRequest) -> VerifyResult:
    """Start the package, check its SBOM against its lock, run the smoke test; raise VerifyError
    (exit 4) with the reason, always removing the container."""
    from compiler.sbom.image_check import check_image_sbom

    handle, labels = start_package(engine, req.image, workspace, model_path=req.model_path, mount_model=req.mount_model,
                                   gpus=req.gpus)  # fmt: skip
    gpus = str(req.gpus) if req.gpus else None
    try:  # the labels and the model mount are checked (exit 2) before the SBOM (exit 4) while the server starts
        sbom = check_image_sbom(engine, req.image, labels.extra, req.platform or Platform.host()).as_dict()
        try:  # a server that exits first is named by its first exception, as pkgc run names it
            ready = wait_until_ready(engine, handle, labels, req.start_timeout or req.timeout)
        except VerifyError as exc:
            raise VerifyError(f"{req.image}: {exc}") from None
        url = f"http://127.0.0.1:{handle.host_port}"
        body = req.body if req.body is not None else example_request(req.image, labels.extra)  # the MLflow model's own
        if body is None:
            return VerifyResult(req.image, url, labels.needs_mount and req.mount_model, ready, False, None, None, False, None, sbom,
                                gpus)  # fmt: skip
        started = time.monotonic()
        response = request(score_url(handle, labels), data=body, timeout=req.timeout)
        seconds = time.monotonic() - started
        if response.status != 200:
            excerpt = response.body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
            where = log_tail(engine, handle.container_id)
            raise VerifyError(f"{req.image}: POST {labels.score.path} answered HTTP {response.status} ({excerpt}); {where}")
        try:
            answer = response.json()
        except ValueError:
            answer = response.body.decode("utf-8", "replace")
        if req.expected is not None:
            exp = req.expected
            diff = first_difference(answer, exp.value, exp.rel_tol, exp.abs_tol)
            if diff:
                raise VerifyError(f"{req.image}: the response differs from {exp.source} at {diff}")
        return VerifyResult(req.image, url, labels.needs_mount and req.mount_model, ready, True, response.status,
                            seconds, req.expected is not None, answer, sbom, gpus)  # fmt: skip
    except PkgcError:
        raise
    except OSError as exc:
        raise VerifyError(f"{req.image}: {exc}; {log_tail(engine, handle.container_id)}") from None
    finally:
        engine.stop(handle.container_id)


def verify_image(req: VerifyRequest, workspace: Workspace, store: OciStore, cache_dir: Path,
                 engine_factory: Callable[[], Engine]) -> VerifyResult:  # fmt: skip
    """The ELF check, then the smoke test: in the engine for this host's platform, under qemu-user for
    another. A foreign image is read from pkgc's OCI store (a name pkgc gave it) or an ``oci:`` /
    ``oci-archive:`` layout (an index resolved to the platform); ResolveError (exit 2) otherwise."""
    from compiler.runtime.architecture import scan_image
    from compiler.runtime.image_layers import open_image

    host = Platform.host()
    platform = req.platform or host
    image = open_image(req.image, store, platform)
    if image is None and platform != host:
        raise ResolveError(f"image '{excerpt(req.image)}' is not in pkgc's OCI store {store.root}: a {platform} image "
                           "is run from there (a name pkgc built) or from an oci:DIR / oci-archive:FILE layout")  # fmt: skip
    if image is None:  # built by an engine only: the engine's smoke test, no ELF check
        return replace(verify_package(engine_factory(), workspace, req), platform=str(platform))
    with image:
        engine = engine_factory() if platform == host else None
        if engine is not None and not _same_image(engine, req.image, image.manifest):
            return replace(verify_package(engine, workspace, req), platform=str(platform))
        report = scan_image(image)
        if not report.passed:
            raise VerifyError(f"{req.image}: {report.summary()}")
        if engine is not None:
            result = verify_package(engine, workspace, req)
            return replace(result, architecture=report.as_dict(), platform=str(platform))
        from compiler.runtime.qemu import QemuContainer
        from compiler.runtime.qemu_engine import QemuEngine

        start = req.start_timeout or QEMU_START_TIMEOUT
        emulated = replace(req, start_timeout=start, timeout=max(req.timeout, start))
        with QemuContainer.for_image(image, cache_dir) as box:
            result = verify_package(QemuEngine(box, req.image), workspace, emulated)  # type: ignore[arg-type]
    return replace(result, architecture=report.as_dict(), runner="qemu", platform=str(platform))


def _same_image(engine: Engine, image: str, manifest: dict) -> bool:
    """Whether the engine's ``image`` is the store's (its id is the config digest), so the ELF check
    reads what the engine runs; True when the engine does not have it (start_package then says so)."""
    info = engine.image_info(image)
    return info is None or info.id == manifest["config"]["digest"]


def describe(result: dict) -> str:
    """The one line a passing verification prints."""
    scored = f", POST answered {result['status']} in {result['score_seconds']} s" if result["scored"] else ""
    compared = ", response as expected" if result["compared"] else ""
    sbom = f", SBOM matches the lock ({result['sbom']['packages']} packages)" if result.get("sbom") else ""
    arch = result.get("architecture")
    elf = f", all {arch['elf_files']} ELF files {arch['platform']}" if arch else ""
    where = " under qemu-user" if result.get("runner") == "qemu" else ""
    head = (sbom + elf)[2:]
    return f"verified {result['image']}: {head + ', ' if head else ''}ready{where} in {result['ready_seconds']} s{scored}{compared}"
