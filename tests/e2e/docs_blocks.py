"""The ``bash`` blocks of README.md and docs/*.md, and how each one runs in
``tests/e2e/test_docs_commands.py``: as written, or with the substitutions listed here (each with
its reason), or not at all (with its reason). A block with no entry here fails the tests, so a new
documented command is run from the day it is written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DOCUMENTS = ("README.md", "docs/*.md")
REGISTRY = "{registry}"  # the loopback registry the test starts (127.0.0.1:PORT)
NO_REGISTRY = "no registry is reachable from here: a loopback registry (Debian's docker-registry, plain HTTP) stands in"
NO_CLUSTER = "no Kubernetes cluster here: the manifests are checked against Kubernetes' own schemas (1.35, strict) instead"
PODMAN_LIMITS = "this machine's podman cannot apply its default ulimits (as in test_model_image.py)"


@dataclass(frozen=True)
class Block:
    """One fenced ``bash`` block: the document, the line of its opening fence, its text."""

    document: str
    line: int
    text: str

    @property
    def key(self) -> str:
        """How ``PLANS`` names the block: its document and its first line."""
        return f"{self.document}: {self.text.splitlines()[0].strip()}"


@dataclass(frozen=True)
class Substitution:
    documented: str  # the exact text in the block
    runs: str  # what runs instead ({registry} is filled in)
    reason: str


@dataclass(frozen=True)
class Plan:
    """How a block runs: substitutions, extra environment, files it expects, ports it leaves served."""

    substitutions: tuple[Substitution, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # values may use {root}, {registry}, {venv}
    files: dict[str, str] = field(default_factory=dict)  # written in the copy before the block runs
    ports: tuple[int, ...] = ()  # containers the block leaves on these ports are removed after it
    not_run: str | None = None  # why the whole block cannot run here
    prepare: str = ""  # shell commands run before the block (what the pipeline would have set up)
    output_of: str | None = None  # a block that shows output: the command whose stdout it must match

    def matches(self, block_text: str, output: str) -> list[str]:
        """The block's lines (after substitutions) that no output line matches, in order; ``...`` matches anything."""
        lines, missing = output.splitlines(), []
        for line in (l.strip() for l in block_text.splitlines() if l.strip()):
            pattern = re.compile(".*".join(re.escape(part) for part in line.split("...")) + "$")
            while lines and not pattern.match(lines[0].strip()):
                lines.pop(0)
            if not lines:
                missing.append(line)
            else:
                lines.pop(0)
        return missing

    def script(self, block: Block, **values: str) -> str:
        text = block.text
        for sub in self.substitutions:
            if sub.documented not in text:
                raise AssertionError(f"{block.key}: the substitution's text {sub.documented!r} is not in the block")
            text = text.replace(sub.documented, sub.runs.format(**values))
        return text


def blocks() -> list[Block]:
    """Every ```bash block of the documents, in order (README first)."""
    found = []
    for pattern in DOCUMENTS:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text()
            for match in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
                found.append(Block(str(path.relative_to(ROOT)), text[: match.start()].count("\n") + 1, match.group(1)))
    return found


# A deployment YAML where the docs' commands expect one (endpoints/blue/deployment.yml, as in
# azureml-examples): the bundled example's model, code and conda file on the offline base image.
BLUE_DEPLOYMENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: blue
endpoint_name: sklearn
model:
  path: ../../examples/sklearn-regression/model
code_configuration:
  code: ../../examples/sklearn-regression/src
  scoring_script: score.py
environment:
  conda_file: ../../examples/sklearn-regression/environment/conda.yaml
  image: pkgc/base-debian-bookworm:latest
instance_type: Standard_DS3_v2
instance_count: 1
"""
DEPLOYMENT_FILE = {"endpoints/blue/deployment.yml": BLUE_DEPLOYMENT}
KUBECTL = Substitution("| kubectl apply -f -", "| python -m kubernetes_validate --strict -k 1.35 /dev/stdin", NO_CLUSTER)

PLANS: dict[str, Plan] = {
    "README.md: bash scripts/run-example.sh   # set up (Docker engine, pkgc, offline base image) and run the bundled example": Plan(
        substitutions=(Substitution("bash .ci/run  ", "# .ci/run not run: ",
                                    "the CI is what runs this test (it would run itself); CI runs every commit"),),  # fmt: skip
        # setup.sh runs for real (engine, podman, base image) with the test's venv, where pkgc of this
        # checkout and its test dependencies are installed (and stamped so: no pip run); its own workspace
        env={"PKGC_VENV": "{venv}", "PKGC_WORKSPACE": "{root}/.pkgc/run-example"},
        ports=(5101,),
    ),
    "README.md: export PKGC_WORKSPACE=$PWD/.pkgc/workspace      # the local stand-in for an Azure ML workspace": Plan(ports=(5001,)),
    "README.md: pkgc build endpoints/blue/deployment.yml --base-image pkgc/base-debian-bookworm:latest \\": Plan(files=DEPLOYMENT_FILE),
    "README.md: pkgc base-image build debian-bookworm --platform linux/amd64,linux/arm64   # the arm64 base, built with no emulation": Plan(
        not_run="tests/e2e/test_multi_platform.py runs these three commands on the bundled example (base-image build "
                "--platform linux/amd64,linux/arm64, build --platform linux/amd64,linux/arm64 --output oci-archive: --json, "
                "verify --platform linux/arm64 --request-file sample-request.json under qemu-user) and compares the arm64 "
                "answer with the amd64 one; running them twice costs CI 72 s"),  # fmt: skip
    "README.md: pip install -e \".[mlflow]\"                    # mlflow on the host, for models:/ references": Plan(),
    "README.md: pkgc environment create --file examples/batch-regression/environment/batch-regression-env.yml": Plan(),
    "README.md: pkgc model create -n heart-classifier-mlflow --type mlflow_model -p model    # the YAML's azureml:...@latest": Plan(
        not_run="it runs in Azure's sample folder, whose model is registered from Azure ML; tests/e2e/test_azure_samples.py "
                "runs these three commands (model create, build of the sample's deployment.yml unchanged, run --batch) "
                "on a small MLflow model made on the host and compares the predictions with the host's"),  # fmt: skip
    "docs/pipelines.md: pkgc build examples/sklearn-regression/package-azure-app.yml --model azureml:sklearn-regression:1 \\": Plan(
        substitutions=(Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY),)),
    "docs/pipelines.md: skopeo inspect oci-archive:out/sklearn.tar                              # labels, digest, layers": Plan(
        substitutions=(Substitution("skopeo copy oci:out/layout docker://myregistry.example",
                                    "skopeo copy --dest-tls-verify=false oci:out/layout docker://" + REGISTRY,
                                    NO_REGISTRY + " (skopeo needs --dest-tls-verify=false for it)"),)),  # fmt: skip
    "docs/pipelines.md: skopeo login myregistry.azurecr.io            # or docker login; pkgc never handles credentials": Plan(
        substitutions=(Substitution("skopeo login myregistry.azurecr.io", "# skopeo login not run:",
                                    "the loopback registry has no accounts; logging in needs credentials"),
                       Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY))),  # fmt: skip
    "docs/pipelines.md: pkgc build examples/sklearn-regression/package-moe.yml --model azureml:sklearn-regression:1 \\": Plan(
        substitutions=(Substitution("myregistry.example", REGISTRY, NO_REGISTRY),
                       Substitution("podman run -d ", "podman pull -q --tls-verify=false $(jq -r .model_image.push.pinned pkg.json) && "
                                    "podman run -d --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 ",
                                    NO_REGISTRY + " (podman pulls from it with --tls-verify=false); " + PODMAN_LIMITS),
                       ),  # fmt: skip
    ),
    "docs/pipelines.md: pkgc build examples/sklearn-regression/package-moe.yml --model azureml:sklearn-regression:1 --deploy-settings kubernetes \\": Plan(
        substitutions=(Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY), KUBECTL)),
    "docs/pipelines.md: # App Service (Linux, custom container) settings for myregistry.azurecr.io/models/sklearn:1": Plan(
        not_run="`az` needs an Azure subscription and an app; the block is what `--deploy-settings app-service` "
                "prints, so it is compared, line by line (`...` matching anything), with what that command prints",
        substitutions=(Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY),),
        output_of="pkgc build examples/sklearn-regression/package-moe.yml --model azureml:sklearn-regression:1 "
                  "--push {registry}/models/sklearn:1 --deploy-settings app-service"),  # fmt: skip
    "docs/pipelines.md: pkgc build endpoints/blue/deployment.yml --push myregistry.azurecr.io/models/blue:1 \\": Plan(
        substitutions=(Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY), KUBECTL), files=DEPLOYMENT_FILE),
    "docs/pipelines.md: pkgc build examples/sklearn-regression/package-azure-app.yml --model azureml:sklearn-regression:1 --output oci:out/signed \\": Plan(
        # $REG and $KEY_FILE are the pipeline's variables; signing.pub is the key's public half
        env={"REG": REGISTRY, "KEY_FILE": "{root}/signing.pem"},
        prepare="openssl genpkey -algorithm ed25519 -out signing.pem && openssl pkey -in signing.pem -pubout -out signing.pub"),
    "docs/ci.md: bash scripts/pkgc-image.sh          # pkgc/pkgc:0.1.0 and pkgc/pkgc:latest, loaded into the engine": Plan(),
    "docs/ci.md: skopeo copy --preserve-digests oci:${PKGC_CACHE_DIR:-$HOME/.cache/pkgc}/oci:pkgc/pkgc:0.1.0 docker://myregistry.azurecr.io/pkgc/pkgc:0.1.0": Plan(
        substitutions=(Substitution("skopeo copy --preserve-digests", "skopeo copy --preserve-digests --dest-tls-verify=false",
                                    NO_REGISTRY + " (skopeo needs --dest-tls-verify=false for it)"),
                       Substitution("myregistry.azurecr.io", REGISTRY, NO_REGISTRY))),  # fmt: skip
    "docs/ci.md: docker run --rm --read-only --user 10001 --cap-drop ALL --security-opt no-new-privileges \\": Plan(
        not_run="its packages/ folder and a registry with --cache are the reader's; tests/e2e/test_builder_image.py runs "
                "this command (same flags, --network host) on the bundled example, pushing to a loopback registry, with "
                "the inputs pre-fetched into the /work volume (no PyPI from a container here)"),  # fmt: skip
}

# Documented commands outside the ```bash blocks that cannot run here, each with the reason; the unit
# test checks that each text is still in its file, so this list stays true.
NOT_RUN_ELSEWHERE: dict[tuple[str, str], str] = {
    ("examples/pipelines/github-actions.yml", "runs-on: ubuntu-24.04"):
        "a GitHub Actions workflow: it needs a GitHub runner (no GitHub here) and ghcr.io for its push step; "
        "its steps are the commands the README and docs/pipelines.md blocks run here",
    ("README.md", "cosign verify-blob-attestation --key key.pub"):
        "cosign is not installable here (no GitHub, no Sigstore); the envelope it reads is checked against "
        "go-securesystemslib's computation in tests/unit/test_provenance.py",
    ("docs/ci.md", "runs-on: ubuntu-24.04"):
        "a GitHub Actions matrix: it needs GitHub runners and ghcr.io (neither reachable here); tests/unit/test_ci_recipes.py "
        "parses it and checks its docker run flags, the same ones tests/e2e/test_builder_image.py runs",
    ("README.md", "cosign verify-attestation IMAGE"): "cosign is not installable here; pkgc writes no cosign .att tag",
}
