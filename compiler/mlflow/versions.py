"""The package versions an MLflow model's flavours record, compared with the lock at build time.

A flavour stores the version of the library that saved the model (``sklearn_version: 1.1.2``). A
pickle saved with one scikit-learn and loaded under another may fail to load or answer differently;
MLflow only warns when the model is loaded, in the running server. pkgc knows the lock before the
image exists, so it says so at build time: one warning line per package naming the flavour, the
recorded and the locked version (``major`` when the major version differs, the likeliest to break).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from compiler.errors import excerpt

# (flavour, key) -> distribution; a key of any flavour when the flavour is None. The tensorflow
# flavour writes tensorflow's own version under ``keras_version``.
RECORDED = {
    ("sklearn", "sklearn_version"): "scikit-learn",
    ("lightgbm", "lgb_version"): "lightgbm",
    ("xgboost", "xgb_version"): "xgboost",
    ("pytorch", "pytorch_version"): "torch",
    ("tensorflow", "keras_version"): "tensorflow",
    ("keras", "keras_version"): "keras",
    ("python_function", "cloudpickle_version"): "cloudpickle",
    (None, "statsmodels_version"): "statsmodels",
    (None, "catboost_version"): "catboost",
    (None, "prophet_version"): "prophet",
    (None, "spacy_version"): "spacy",
    (None, "h2o_version"): "h2o",
    (None, "onnx_version"): "onnx",
    (None, "transformers_version"): "transformers",
    (None, "sentence_transformers_version"): "sentence-transformers",
    (None, "paddle_version"): "paddlepaddle",
    (None, "pmdarima_version"): "pmdarima",
    (None, "pyspark_version"): "pyspark",
    (None, "shap_version"): "shap",
    (None, "langchain_version"): "langchain",
    (None, "llama_index_version"): "llama-index",
    (None, "openai_version"): "openai",
}

# Distributions that install the same importable package under another name.
ALSO_AS = {"tensorflow": ("tensorflow-cpu", "tensorflow-intel"), "xgboost": ("xgboost-cpu",), "torch": ("torch-cpu",)}


@dataclass(frozen=True)
class FlavorVersion:
    """One library version a flavour recorded: ``sklearn`` flavour, ``sklearn_version``, scikit-learn 1.1.2."""

    flavor: str
    key: str
    package: str
    version: str


def flavor_versions(flavors: dict) -> tuple[FlavorVersion, ...]:
    """Every known ``*_version`` a flavour of the MLmodel records (values as written, shortened)."""
    found = []
    for flavor, config in flavors.items():
        if not isinstance(config, dict):
            continue
        for key, value in config.items():
            package = RECORDED.get((flavor, key)) or RECORDED.get((None, key))
            if package and isinstance(value, (str, int, float)) and str(value).strip():
                found.append(FlavorVersion(str(flavor), str(key), package, excerpt(str(value).strip(), 40)))
    return tuple(found)


def _public(text: str) -> Version | None:
    try:
        return Version(Version(text).public)  # 2.1.0+cpu and 2.1.0 are the same release
    except InvalidVersion:
        return None


def version_drift(recorded: Iterable[FlavorVersion], locked: dict[str, str], model: str) -> list[str]:
    """One warning per recorded version the lock does not install (``locked``: normalized name -> version)."""
    locked = {canonicalize_name(name): version for name, version in locked.items()}
    lines = []
    for item in recorded:
        names = (canonicalize_name(item.package),) + ALSO_AS.get(canonicalize_name(item.package), ())
        name = next((n for n in names if n in locked), names[0])
        where = f"MLflow model {model}: flavor {item.flavor} recorded {item.package} {item.version} ({item.key})"
        if name not in locked:
            lines.append(f"{where}, but the lock has no {item.package}: the model will not load unless the base image provides it")
            continue
        want, have = _public(item.version), _public(locked[name])
        if want is None or have is None or want == have:
            continue
        major = " (major version differs)" if want.major != have.major else ""
        lines.append(
            f"{where}, the lock installs {locked[name]}{major}: the saved model may fail to load or answer "
            f"differently; pin {item.package}=={item.version} or re-save the model with {locked[name]}"
        )
    return lines
