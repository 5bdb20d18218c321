"""The image-label contract: what a pkgc package states about itself, to labels and back.

The planner writes it (``PackageLabels.to_labels``); ``pkgc run``, ``pkgc verify`` and the deploy
settings read it back (``PackageLabels.from_labels``). Labels come from images anyone may have built,
so reading them is parsing untrusted input: every value is checked as strictly as the spec value it
came from, and a bad one is one ``ResolveError`` line naming the image, the label and the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Mapping

from compiler.errors import ResolveError, excerpt
from compiler.spec.values import ASSET_NAME, ROUTE as ROUTE_RE, container_path_problem  # one rule for spec and labels

PREFIX = "io.pkgc."
MODE, MODEL_DIR, MODEL_TREE = "io.pkgc.model.mode", "io.pkgc.model.dir", "io.pkgc.model.tree"
MODEL_NAME, MODEL_VERSION, MODEL_TYPE = "io.pkgc.model.name", "io.pkgc.model.version", "io.pkgc.model.type"
MOUNT, SERVER, PORT = "io.pkgc.model.mount", "io.pkgc.server", "io.pkgc.port"
TITLE, DESCRIPTION, BASE_NAME = (
    "org.opencontainers.image.title", "org.opencontainers.image.description", "org.opencontainers.image.base.name",
)  # fmt: skip
MODEL_IMAGE = "io.pkgc.model.image"  # manifest digest of the model image a readonly_mount package was built for
SBOM_DIGEST = "io.pkgc.sbom.digest"  # sha256 of /opt/pkgc/sbom.cdx.json (an ``extra`` label)
# ``extra`` labels written only when a build leaves the default: "true" (--slim), "false" (--no-bytecode)
SLIM, BYTECODE = "io.pkgc.environment.slim", "io.pkgc.environment.bytecode"
# an ``extra`` label: the MLflow model's serving_input_example.json (compact JSON), verify's default request
MLFLOW_SERVING_INPUT = "io.pkgc.mlflow.serving-input"
ROUTE_LABELS = {"readiness": "io.pkgc.route.health", "liveness": "io.pkgc.route.liveness", "score": "io.pkgc.route.score"}

MODES = ("copy", "readonly_mount")
DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
SERVER_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
BATCH_SERVER = "azureml_batch"  # a job: no port, no routes


@dataclass(frozen=True)
class Route:
    """An HTTP route of the package's server: the container port and the path."""

    port: int
    path: str


@dataclass(frozen=True)
class PackageLabels:
    """The run-time contract of one package image."""

    title: str
    description: str
    base_image: str
    mode: str
    model_name: str
    model_version: str
    model_type: str
    model_tree: str  # 64 hex digits (the workspace's tree id)
    model_dir: str
    server: str
    score: Route | None  # None: a batch job (server azureml_batch), which serves no HTTP
    readiness: Route | None
    liveness: Route | None
    extra: Mapping[str, str]  # the other io.pkgc.* labels (spec, lock, pkgc version), written as they are
    model_image: str | None = None  # "sha256:<hex>": the model image it expects mounted (readonly_mount)

    @property
    def port(self) -> int | None:
        """The port the package serves on (its scoring route's); None for a batch job."""
        return self.score.port if self.score else None

    @property
    def is_job(self) -> bool:
        """A batch package runs as a job (``pkgc run --batch``), not as a server."""
        return self.score is None

    @property
    def ports(self) -> tuple[int, ...]:
        """Every distinct container port of the three routes, the scoring port first."""
        routes = [r for r in (self.score, self.readiness, self.liveness) if r is not None]
        return tuple(dict.fromkeys(r.port for r in routes))

    @property
    def needs_mount(self) -> bool:
        return self.mode != "copy"

    @property
    def model_ref(self) -> str:
        return f"{self.model_name}:{self.model_version}"

    def to_labels(self) -> dict[str, str]:
        labels = {
            TITLE: self.title, DESCRIPTION: self.description, BASE_NAME: self.base_image,
            MODEL_NAME: self.model_name, MODEL_VERSION: self.model_version, MODEL_TYPE: self.model_type,
            MODEL_TREE: f"sha256:{self.model_tree}", MODE: self.mode, MODEL_DIR: self.model_dir,
            MOUNT: "required-readonly" if self.needs_mount else "none", SERVER: self.server,
        }  # fmt: skip
        if self.model_image:
            labels[MODEL_IMAGE] = self.model_image
        if self.score is None:
            labels.update(self.extra)
            return labels
        labels[PORT] = str(self.port)
        for kind, key in ROUTE_LABELS.items():
            route: Route = getattr(self, kind)
            labels[key] = route.path
            if route.port != self.port:
                labels[f"{key}.port"] = str(route.port)
        labels.update(self.extra)
        return labels

    @classmethod
    def from_labels(cls, image: str, labels: Mapping[str, str]) -> "PackageLabels":
        """Read and check the contract; raise ResolveError naming the first bad label."""
        if MODE not in labels:
            raise ResolveError(f"image '{excerpt(image)}' is not a pkgc package (no io.pkgc.* labels)")
        reader = _Reader(image, labels)
        mode = reader.choice(MODE, MODES)
        server = reader.match(SERVER, SERVER_RE, "azureml_online")
        routes: dict[str, Route | None] = dict.fromkeys(ROUTE_LABELS)
        if server != BATCH_SERVER:
            port = reader.port(PORT, "5001")
            routes = {kind: Route(reader.port(f"{key}.port", str(port)), reader.route(key, default))
                      for (kind, key), default in zip(ROUTE_LABELS.items(), ("/", "/", "/score"))}  # fmt: skip
        known = {MODE, MODEL_DIR, MODEL_TREE, MODEL_NAME, MODEL_VERSION, MODEL_TYPE, MOUNT, SERVER, PORT, MODEL_IMAGE}
        known |= set(ROUTE_LABELS.values()) | {f"{k}.port" for k in ROUTE_LABELS.values()}
        return cls(
            title=labels.get(TITLE, ""), description=labels.get(DESCRIPTION, ""), base_image=labels.get(BASE_NAME, ""),
            mode=mode, model_name=reader.name(MODEL_NAME), model_version=reader.name(MODEL_VERSION),
            model_type=labels.get(MODEL_TYPE, "custom_model"), model_tree=reader.digest(MODEL_TREE),
            model_dir=reader.container_path(MODEL_DIR), server=server,
            score=routes["score"], readiness=routes["readiness"], liveness=routes["liveness"],
            extra={k: v for k, v in labels.items() if k.startswith(PREFIX) and k not in known},
            model_image=f"sha256:{reader.digest(MODEL_IMAGE)}" if MODEL_IMAGE in labels else None,
        )  # fmt: skip


class _Reader:
    """Checks one label at a time; every refusal names the image, the label and (an excerpt of) the value."""

    def __init__(self, image: str, labels: Mapping[str, str]):
        self.image, self.labels = image, labels

    def _fail(self, key: str, value: str, why: str) -> ResolveError:
        return ResolveError(f"image '{excerpt(self.image)}': label {key}={excerpt(value)!r} {why}")

    def _get(self, key: str, default: str | None) -> str:
        value = self.labels.get(key, default)
        if value is None:
            raise ResolveError(f"image '{excerpt(self.image)}': label {key} is missing")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self._get(key, None)
        if value not in choices:
            raise self._fail(key, value, f"must be one of {', '.join(choices)}")
        return value

    def match(self, key: str, pattern: re.Pattern, default: str | None = None) -> str:
        value = self._get(key, default)
        if not pattern.match(value):
            raise self._fail(key, value, "is not valid")
        return value

    def name(self, key: str) -> str:
        return self.match(key, ASSET_NAME)

    def digest(self, key: str) -> str:
        value = self._get(key, None)
        found = DIGEST_RE.match(value)
        if not found:
            raise self._fail(key, value, "must be 'sha256:' and 64 lower-case hex digits")
        return found.group(1)

    def port(self, key: str, default: str) -> int:
        value = self._get(key, default)
        if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
            raise self._fail(key, value, "must be a port number (1-65535)")
        return int(value)

    def route(self, key: str, default: str) -> str:
        return self.match(key, ROUTE_RE, default)

    def container_path(self, key: str) -> str:
        value = self._get(key, None)
        problem = container_path_problem(value)
        if problem:
            raise self._fail(key, value, problem)
        return value


BASE_PREFIX = "io.pkgc.base."
BASE_PYTHON, BASE_CONDA = "io.pkgc.base.python", "io.pkgc.base.conda"
PYTHON_RE = re.compile(r"^[23]\.[0-9]{1,2}$")


@dataclass(frozen=True)
class BaseImageLabels:
    """What a base image built by ``pkgc base-image build`` states: its Python (major.minor) and conda."""

    python: str | None  # None: the Python comes from a conda environment
    has_conda: bool

    @classmethod
    def from_labels(cls, image: str, labels: Mapping[str, str]) -> "BaseImageLabels | None":
        """The checked facts, or None when the image carries no pkgc base labels."""
        if BASE_PYTHON not in labels:
            return None
        reader = _Reader(image, labels)
        python = labels[BASE_PYTHON]
        if python and not PYTHON_RE.match(python):
            raise reader._fail(BASE_PYTHON, python, "must be a Python version X.Y (or empty)")
        conda = reader.choice(BASE_CONDA, ("true", "false")) if BASE_CONDA in labels else "false"
        return cls(python or None, conda == "true")
