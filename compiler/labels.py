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

PREFIX = "io.pkgc."
MODE, MODEL_DIR, MODEL_TREE = "io.pkgc.model.mode", "io.pkgc.model.dir", "io.pkgc.model.tree"
MODEL_NAME, MODEL_VERSION, MODEL_TYPE = "io.pkgc.model.name", "io.pkgc.model.version", "io.pkgc.model.type"
MOUNT, SERVER, PORT = "io.pkgc.model.mount", "io.pkgc.server", "io.pkgc.port"
TITLE, DESCRIPTION, BASE_NAME = (
    "org.opencontainers.image.title", "org.opencontainers.image.description", "org.opencontainers.image.base.name",
)  # fmt: skip
ROUTE_LABELS = {"readiness": "io.pkgc.route.health", "liveness": "io.pkgc.route.liveness", "score": "io.pkgc.route.score"}

MODES = ("copy", "readonly_mount")
DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ROUTE_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,255}$")
SERVER_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
BATCH_SERVER = "azureml_batch"  # a job: no port, no routes
# Folders a model must never be mounted over (or under): the system's and pkgc's own.
RESERVED_DIRS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/opt/pkgc", "/proc",
                 "/root", "/run", "/sbin", "/sys", "/tmp", "/usr")  # fmt: skip


def container_path_problem(path: str) -> str | None:
    """Why ``path`` cannot be where a model is mounted or copied in a container, or None when it can."""
    if not path.startswith("/"):
        return "must be an absolute path inside the container"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "must not hold control characters (newline, NUL, ...)"
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts) or path == "/":
        return "must be a normalised absolute path (no '..', '.', '//' or trailing '/') and not '/'"
    if len(path) > 1024:
        return "is longer than 1024 characters"
    for reserved in RESERVED_DIRS:
        if path == reserved or path.startswith(reserved + "/"):
            return f"must not be inside the system folder {reserved}"
    if path in ("/var", "/home", "/opt", "/srv", "/mnt", "/var/azureml-app"):
        return f"must not be {path} itself (name a folder below it)"
    return None


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
        known = {MODE, MODEL_DIR, MODEL_TREE, MODEL_NAME, MODEL_VERSION, MODEL_TYPE, MOUNT, SERVER, PORT}
        known |= set(ROUTE_LABELS.values()) | {f"{k}.port" for k in ROUTE_LABELS.values()}
        return cls(
            title=labels.get(TITLE, ""), description=labels.get(DESCRIPTION, ""), base_image=labels.get(BASE_NAME, ""),
            mode=mode, model_name=reader.name(MODEL_NAME), model_version=reader.name(MODEL_VERSION),
            model_type=labels.get(MODEL_TYPE, "custom_model"), model_tree=reader.digest(MODEL_TREE),
            model_dir=reader.container_path(MODEL_DIR), server=server,
            score=routes["score"], readiness=routes["readiness"], liveness=routes["liveness"],
            extra={k: v for k, v in labels.items() if k.startswith(PREFIX) and k not in known},
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
        return self.match(key, NAME_RE)

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
