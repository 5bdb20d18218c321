"""The base image's own Python packages: read from dist-info, checked against the lock."""

from __future__ import annotations

from compiler.deps.base_packages import conflicts
from compiler.lock.types import Lock, LockedPackage
from compiler.backends.oci.scan import BaseScan, _distribution
from compiler.plan.types import BasePackage


def _lock(**pins: str) -> Lock:
    packages = tuple(LockedPackage(name=n, version=v, manager="pip", url=f"https://files/{n}-{v}-py3-none-any.whl", filename=f"{n}-{v}-py3-none-any.whl",
                                   sha256="0" * 64) for n, v in pins.items())  # fmt: skip
    return Lock(strategy="venv", python="3.11", inputs_hash="x", packages=packages)


def test_metadata_header_gives_name_version_requires():
    text = "Metadata-Version: 2.1\nName: scikit-learn\nVersion: 1.1.2\nRequires-Dist: numpy (<1.24,>=1.17)\n" \
           "Requires-Dist: pytest ; extra == 'tests'\n\nRequires-Dist: not-in-the-header\n"
    found = _distribution(text, "/usr/local/lib/python3.11/site-packages")
    assert found == BasePackage("scikit-learn", "1.1.2", "/usr/local/lib/python3.11/site-packages",
                                ("numpy (<1.24,>=1.17)", "pytest ; extra == 'tests'"))  # fmt: skip
    assert _distribution("Name: ../../etc\nVersion: 1\n", "/x") is None
    assert _distribution("Name: ok\n", "/x") is None


def test_shadowed_and_broken_requirements_are_named():
    base = (BasePackage("scikit-learn", "1.1.2", "/opt/conda/lib/python3.11/site-packages",
                        ("numpy<1.24,>=1.17", "pytest; extra == 'tests'", "scipy>=1.3")),
            BasePackage("joblib", "1.3.2", "/usr/local/lib/python3.11/dist-packages"))  # fmt: skip
    lines = conflicts(base, _lock(numpy="2.4.6", joblib="1.6.0", scipy="1.17.1", pytest="1.0"))
    assert lines == [
        "base image: joblib 1.3.2 (/usr/local/lib/python3.11/dist-packages) is shadowed by the lock's joblib 1.6.0",
        "base image: scikit-learn 1.1.2 requires numpy<1.24,>=1.17, but the lock installs numpy 2.4.6 over it; "
        "scikit-learn may fail to import",
    ]
    assert conflicts(base, _lock(joblib="1.3.2")) == []


def test_only_the_images_python_sees_a_site_folder():
    scan = BaseScan(packages=(BasePackage("a", "1", "/usr/local/lib/python3.11/site-packages"),
                              BasePackage("b", "1", "/usr/lib/python3/dist-packages"),
                              BasePackage("c", "1", "/usr/local/lib/python3.12/site-packages")))  # fmt: skip
    assert [p.name for p in scan.python_packages("3.11")] == ["a", "b"]
