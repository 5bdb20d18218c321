"""Asset references in every form the Azure ML documents use, parsed into one ``AssetRef``.

Forms: ``azureml:NAME:VERSION``, ``azureml:NAME@latest``, ``NAME:VERSION``, ``NAME@latest``,
``azureml://registries/REG/{models|environments}/NAME/versions/V`` (or ``/labels/latest``),
``azureml://subscriptions/.../workspaces/WS/...`` and ``/subscriptions/.../providers/
Microsoft.MachineLearningServices/{workspaces|registries}/X/{models|environments}/NAME/versions/V``,
and MLflow's ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from compiler.errors import excerpt

AssetKind = Literal["models", "environments"]

# Names, versions and labels become path parts in a workspace: the workspace's own rule (at most 64).
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_SHORT = re.compile(rf"^(?P<name>{_NAME})(?::(?P<version>{_NAME})|@(?P<label>{_NAME}))$")
_LONG = re.compile(
    r"(?:^azureml:/|^)/(?:subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/)?"
    r"(?:(?P<scope>workspaces|registries)/(?P<scope_name>[^/]+)/)"
    rf"(?P<kind>models|environments)/(?P<name>{_NAME})"
    rf"(?:/versions/(?P<version>{_NAME})|/labels/(?P<label>{_NAME}))?/?$",
    re.IGNORECASE,
)
# MLflow allows more in a registered model's name; never a control character or a bare '.'/'..'.
_MLFLOW = re.compile(
    r"^models:/(?!\.\.?[/@])(?P<name>[^/@\x00-\x1f\x7f]{1,255})"
    r"(?:/(?P<version>[0-9]{1,18})|@(?P<alias>[A-Za-z0-9._-]{1,255}))$"
)


class RefSyntaxError(ValueError):
    """The text is not an asset reference in any known form."""


@dataclass(frozen=True)
class AssetRef:
    """A reference to a versioned asset in a workspace, a registry, or an MLflow model registry."""

    kind: AssetKind
    name: str
    version: str | None = None
    label: str | None = None
    registry: str | None = None
    workspace: str | None = None
    mlflow: bool = False

    def __str__(self) -> str:
        if self.mlflow:
            return f"models:/{self.name}/{self.version}" if self.version else f"models:/{self.name}@{self.label}"
        where = f"azureml://registries/{self.registry}/" if self.registry else "azureml:"
        if self.registry:
            tail = f"versions/{self.version}" if self.version else f"labels/{self.label}"
            return f"{where}{self.kind}/{self.name}/{tail}"
        return f"{where}{self.name}:{self.version}" if self.version else f"{where}{self.name}@{self.label}"


def looks_like_reference(text: str) -> bool:
    """True when ``text`` is written as a reference rather than a file path."""
    return text.startswith(("azureml:", "models:/", "/subscriptions/")) or bool(_SHORT.match(text))


def parse_ref(text: str, kind: AssetKind) -> AssetRef:
    """Parse ``text`` as a reference to an asset of ``kind``; raise RefSyntaxError when it is none."""
    text = text.strip()
    shown = excerpt(text, 60)
    if kind == "models" and (m := _MLFLOW.match(text)):
        return AssetRef(kind, m["name"], version=m["version"], label=m["alias"], mlflow=True)
    short = text[len("azureml:"):] if text.startswith("azureml:") and not text.startswith("azureml://") else text
    if m := _SHORT.match(short):
        return AssetRef(kind, m["name"], version=m["version"], label=m["label"])
    if m := _LONG.match(text):
        if m["kind"].lower() != kind:
            raise RefSyntaxError(f"'{shown}' refers to {m['kind'].lower()}, expected {kind}")
        if not (m["version"] or m["label"]):
            raise RefSyntaxError(f"'{shown}' names no version: end it with /versions/N or /labels/latest")
        registry = m["scope_name"] if m["scope"].lower() == "registries" else None
        workspace = m["scope_name"] if m["scope"].lower() == "workspaces" else None
        return AssetRef(kind, m["name"], m["version"], m["label"], registry=registry, workspace=workspace)
    article = "an" if kind == "environments" else "a"
    raise RefSyntaxError(
        f"'{shown}' is not {article} {kind[:-1]} reference: use azureml:NAME:VERSION, azureml:NAME@latest "
        "or a long azureml://registries/... id"
    )
