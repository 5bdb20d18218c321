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

AssetKind = Literal["models", "environments"]

_SHORT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?::(?P<version>[A-Za-z0-9._-]+)|@(?P<label>[A-Za-z0-9._-]+))$")
_LONG = re.compile(
    r"(?:^azureml:/|^)/(?:subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/)?"
    r"(?:(?P<scope>workspaces|registries)/(?P<scope_name>[^/]+)/)"
    r"(?P<kind>models|environments)/(?P<name>[^/]+)"
    r"(?:/versions/(?P<version>[^/]+)|/labels/(?P<label>[^/]+))?/?$",
    re.IGNORECASE,
)
_MLFLOW = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))$")


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
    if kind == "models" and (m := _MLFLOW.match(text)):
        return AssetRef(kind, m["name"], version=m["version"], label=m["alias"], mlflow=True)
    short = text[len("azureml:"):] if text.startswith("azureml:") and not text.startswith("azureml://") else text
    if m := _SHORT.match(short):
        return AssetRef(kind, m["name"], version=m["version"], label=m["label"])
    if m := _LONG.match(text):
        if m["kind"].lower() != kind:
            raise RefSyntaxError(f"'{text}' refers to {m['kind'].lower()}, expected {kind}")
        if not (m["version"] or m["label"]):
            raise RefSyntaxError(f"'{text}' names no version: end it with /versions/N or /labels/latest")
        registry = m["scope_name"] if m["scope"].lower() == "registries" else None
        workspace = m["scope_name"] if m["scope"].lower() == "workspaces" else None
        return AssetRef(kind, m["name"], m["version"], m["label"], registry=registry, workspace=workspace)
    raise RefSyntaxError(
        f"'{text}' is not {'an' if kind == 'environments' else 'a'} {kind[:-1]} reference: use azureml:NAME:VERSION, azureml:NAME@latest "
        "or a long azureml://registries/... id"
    )
