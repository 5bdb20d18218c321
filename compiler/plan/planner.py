"""Decide the image: its base, the environment's recipe, the layer order, the config (no I/O).

Layer order (most stable first, so a change rebuilds only what follows it):
  1. non-root user           never changes
  2. environment             changes when the lock changes
  3. runtime (entrypoint, lock file)   changes with pkgc or the lock
  4. model (copy mode only)  changes with the model version; large, so before the small code layer
  5. code                    changes most often; last of the content layers
  6. sbom                    the CycloneDX SBOM (names lock, model and code digests): changes with any of them
  7. ENV / LABEL / USER      metadata only, no layer content: last
"""

from __future__ import annotations

from dataclasses import replace

import hashlib
import re
from typing import TYPE_CHECKING

from compiler import __version__
from compiler.errors import SpecError, SpecProblem
from compiler.environment.strategy import EnvironmentStrategy
from compiler.fetch.cache import FetchedFiles
from compiler.labels import SBOM_DIGEST, PackageLabels
from compiler.lock.types import Lock
from compiler.mlflow.example import example_labels
from compiler.mlflow.scoring import is_generated
from compiler.plan.inputs import deployment_labels, input_copies
from compiler.package_inputs import PATHS_ENV
from compiler.plan.types import BaseImage, ContextFile, Copy, EnvironmentBuild, ImageConfig, ImagePlan, Layer, LayerKind
from compiler.resolve.types import ResolvedPackage
from compiler.resources import templates_dir
from compiler.sbom.types import SBOM_IN_IMAGE
from compiler.spec.model import ModelMode
from compiler.workspace.walk import shown

if TYPE_CHECKING:
    from compiler.fetch.conda_inputs import CondaInputs

USER, UID = "pkgc", 10001
PKGC_HOME = "/opt/pkgc"
VENV_PREFIX = f"{PKGC_HOME}/venv"
CONDA_PREFIX = f"{PKGC_HOME}/env"
ENTRYPOINT = f"{PKGC_HOME}/bin/pkgc-entrypoint"
LOCK_IN_IMAGE = f"{PKGC_HOME}/conda-lock.yml"
# The build context holds user content under pkgc's own names only: the names users chose (model
# folder, code folder) never reach Dockerfile syntax; only destinations do, quoted by the renderer.
MODEL_IN_CONTEXT = "model/content"
CODE_IN_CONTEXT = "code/content"
CONTROL = re.compile("[\x00-\x1f\x7f]")
IMAGE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}$")  # written unquoted after FROM


def _environment(
    strategy: EnvironmentStrategy, lock: Lock, fetched: FetchedFiles, conda: CondaInputs | None
) -> tuple[EnvironmentBuild, list[ContextFile]]:
    # One order whether the lock was just made or read back (conda-lock sorts case-sensitively).
    pip = sorted(lock.of("pip"), key=lambda p: (p.name.lower(), p.filename))
    files = [ContextFile(f"pkgc/wheels/{p.filename}", source=fetched.path_of(p)) for p in pip]
    requirements = "".join(f"{p.pip_line}\n" for p in pip)
    files.append(ContextFile("pkgc/requirements.lock.txt", data=requirements.encode()))
    if strategy.kind == "venv":
        return EnvironmentBuild("venv", VENV_PREFIX, "pkgc/requirements.lock.txt", "pkgc/wheels"), files
    if conda is None:
        raise ValueError("the conda strategy is planned with its channel and installer (prepare_conda_inputs)")
    from compiler.plan.conda import conda_environment

    return conda_environment(lock, conda, files, CONDA_PREFIX)


def _labels(
    pkg: ResolvedPackage, strategy: EnvironmentStrategy, lock: Lock, sbom: ContextFile | None = None, model_image: str | None = None
) -> dict[str, str]:
    """OCI and pkgc labels; nothing per-build (no version, no time), so equal inputs give equal images."""
    model, server = pkg.model, pkg.server
    contract = PackageLabels(
        title=pkg.target_name,
        description=f"pkgc model package of {model.name}:{model.version} ({pkg.mode.value})",
        base_image=pkg.environment.image if pkg.environment else "",
        mode=pkg.mode.value, model_name=model.name, model_version=model.version, model_type=model.type,
        model_tree=model.tree_digest, model_dir=pkg.model_dir, server=server.type,
        score=server.score, readiness=server.readiness, liveness=server.liveness,
        extra={
            "io.pkgc.version": __version__,
            "io.pkgc.spec": pkg.spec_path.name,
            **({"io.pkgc.spec.digest": f"sha256:{pkg.spec_digest}"} if pkg.spec_digest else {}),
            "io.pkgc.environment.strategy": strategy.kind,
            "io.pkgc.lock.inputs": lock.inputs_hash,
            **deployment_labels(pkg),
            **example_labels(pkg.mlflow, is_generated(pkg.code.directory if pkg.code else None)),  # verify's default request
            **({SBOM_DIGEST: f"sha256:{hashlib.sha256(sbom.data).hexdigest()}"} if sbom and sbom.data is not None else {}),
        },
        model_image=model_image,
    )  # fmt: skip
    return contract.to_labels()


def _env(pkg: ResolvedPackage) -> dict[str, str]:
    """pkgc's variables, then the server's configuration, then the spec's environment_variables (which win)."""
    env = {
        "AZUREML_MODEL_DIR": pkg.model_dir,
        "PKGC_MODEL_MODE": pkg.mode.value,
        "PKGC_MODEL_REF": f"{pkg.model.name}:{pkg.model.version}",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(pkg.server.kind.start_variables(pkg.server))  # PKGC_SERVER, PKGC_PORT
    if pkg.code is not None:
        if pkg.code.scoring_script:
            env["AZUREML_ENTRY_SCRIPT"] = pkg.code.container_script
        env["AML_APP_ROOT"] = pkg.code.container_dir
    env.update(dict(pkg.server.environment))
    env.update(pkg.environment_variables)
    if pkg.inputs and pkg.mode is not ModelMode.COPY:
        env[PATHS_ENV] = ",".join(extra.mount_path for extra in pkg.inputs)
    return env


def _own_container(pkg: ResolvedPackage) -> bool:
    """A custom server with no start command: a deployment's own container, started as its image says."""
    return pkg.server.kind.own_container(pkg.server)


def _server_runtime(pkg: ResolvedPackage) -> list[tuple[ContextFile, Copy]]:
    """The server's own runtime files (compiler/servers/): the keep-alive worker, the batch driver, the Triton launcher."""
    files = []
    for shipped in pkg.server.kind.runtime_files:
        source = f"pkgc/{shipped.name}"
        context_file = ContextFile(source, source=templates_dir() / "runtime" / shipped.name, executable=shipped.executable)
        files.append((context_file, Copy("runtime", source, shipped.dest, shipped.why)))
    return files


def _unwritable(value: str, path: bool) -> str | None:
    """Why ``value`` cannot be written into a Dockerfile and read back as it is, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if "\n" in value or "\0" in value:
        return "holds a newline or NUL, which no Dockerfile line can carry"
    if path and CONTROL.search(value):
        return "holds control characters, which a path in the image must not"
    return None


def _check_dockerfile_values(pkg: ResolvedPackage, env: dict[str, str], labels: dict[str, str], copies: list[Copy]) -> None:
    """Refuse what the builder could not read back byte for byte (the renderer quotes the rest)."""
    image = pkg.environment.image if pkg.environment else ""
    if not IMAGE_REFERENCE.match(image):
        why = "is not an image reference (letters, digits and . _ / : @ - only)"
        raise SpecError(SpecProblem(pkg.spec_path, "base_environment_source (image)", f"'{shown(image)}' {why}"))
    checks: list[tuple[str, str, bool]] = [(f"environment_variables.{k}", v, False) for k, v in pkg.environment_variables.items()]
    checks.append(("model", pkg.model.root_name, True))
    if pkg.code is not None:
        checks.append(("inferencing_server.code_configuration.code", pkg.code.directory.name, True))
    checks.append(("model_configuration.mount_path (or the model's name and version)", pkg.model_dir, True))
    checks += [(f"(image path {copy.kind})", copy.dest, True) for copy in copies]
    checks += [(f"(environment variable {k})", v, False) for k, v in env.items()]
    checks += [(f"(label {k})", v, False) for k, v in labels.items()]
    for key, value, is_path in checks:
        why = _unwritable(value, is_path)
        if why:
            raise SpecError(SpecProblem(pkg.spec_path, key, f"'{shown(value)}' {why}"))


def plan_image(
    pkg: ResolvedPackage,
    strategy: EnvironmentStrategy,
    lock: Lock,
    lock_file: ContextFile,
    fetched: FetchedFiles,
    tag: str,
    sbom_file: ContextFile | None = None,
    conda: CondaInputs | None = None,
    base: BaseImage | None = None,
    model_image: str | None = None,
) -> ImagePlan:
    """Turn the resolved, locked package into an ImagePlan; ``tag`` is the image reference to build;
    ``sbom_file`` (the CycloneDX SBOM, given as data) ships in the last layer, labelled with its digest;
    ``conda`` (the conda strategy's channel and installer) and ``base`` (its digests) are resolved before;
    ``model_image`` (a readonly_mount package's model image digest) is labelled."""
    if pkg.environment is None:
        raise ValueError("a package needs a base image (MLflow packages get a generated one before planning)")
    environment, files = _environment(strategy, lock, fetched, conda)
    if base is not None and base.packages and environment.strategy == "venv":  # the base's own packages stay importable
        environment = replace(environment, system_site_packages=True)
    files.append(lock_file)
    files.append(ContextFile("pkgc/pkgc-entrypoint", source=templates_dir() / "runtime" / "pkgc-entrypoint.sh", executable=True))
    copies = [
        Copy("environment", environment.prefix, environment.prefix, "the locked environment; changes only with the lock", "environment"),
        Copy("runtime", "pkgc/pkgc-entrypoint", ENTRYPOINT, "start-up checks and the server command"),
        Copy("runtime", lock_file.dest, LOCK_IN_IMAGE, "the lock travels with the package"),
    ]
    for context_file, copy in _server_runtime(pkg):
        files.append(context_file)
        copies.append(copy)
    if pkg.mode is ModelMode.COPY:
        root = pkg.model.root_name
        files.append(ContextFile(MODEL_IN_CONTEXT, source=pkg.model.tree_path / root))
        copies.append(Copy("model", MODEL_IN_CONTEXT, f"{pkg.model_dir}/{root}", "model files; before code, which changes more often"))
        copies += input_copies(pkg, files)
    if pkg.code is not None:
        files.append(ContextFile(CODE_IN_CONTEXT, source=pkg.code.directory))
        copies.append(Copy("code", CODE_IN_CONTEXT, pkg.code.container_dir, "scoring code changes most: last of the content"))
    if sbom_file is not None:
        files.append(sbom_file)
        copies.append(Copy("sbom", sbom_file.dest, SBOM_IN_IMAGE, "the SBOM names the lock, model and code: it changes with any of them, so last"))
    env, labels = _env(pkg), _labels(pkg, strategy, lock, sbom_file, model_image)
    _check_dockerfile_values(pkg, env, labels, copies)
    config = ImageConfig(
        env=env,
        labels=labels,
        user=USER,
        uid=UID,
        workdir=pkg.code.container_dir if pkg.code else "/var/azureml-app",
        port=pkg.server.default_port,
        entrypoint=None if _own_container(pkg) else (ENTRYPOINT,),  # None: the base image's ENTRYPOINT and CMD stay
        command=pkg.server.command,
        path_prefix=f"{environment.prefix}/bin",
    )
    return ImagePlan(
        base=base or BaseImage(pkg.environment.image),
        environment=environment,
        layers=_layers(copies),
        config=config,
        files=tuple(files),
        tag=tag,
        platform=lock.platform,
    )


def _layers(copies: list[Copy]) -> tuple[Layer, ...]:
    """The user layer, then one layer per kind of copy, in the order above."""
    kinds: dict[LayerKind, list[Copy]] = {}
    for copy in copies:
        kinds.setdefault(copy.kind, []).append(copy)
    layers = [Layer("user", "the non-root user the server runs as; never changes")]
    for kind, group in kinds.items():
        layers.append(Layer(kind, "; ".join(dict.fromkeys(c.why for c in group)), tuple(group)))
    return tuple(layers)
