"""The image-label contract: written by the planner, read back (and checked) by run, verify and deploy."""

from __future__ import annotations

import pytest

from compiler.errors import ResolveError
from compiler.labels import PackageLabels, Route, container_path_problem

TREE = "ab" * 32


def contract(**changes) -> PackageLabels:
    values = dict(
        title="pkg", description="d", base_image="base:1", mode="readonly_mount", model_name="m",
        model_version="1", model_type="custom_model", model_tree=TREE, model_dir="/var/azureml-app/azureml-models/m/1",
        server="azureml_online", score=Route(5001, "/score"), readiness=Route(5001, "/"),
        liveness=Route(5001, "/"), extra={"io.pkgc.version": "0.1.0"},
    )  # fmt: skip
    values.update(changes)
    return PackageLabels(**values)


def test_round_trip():
    original = contract(score=Route(8000, "/v2/models/m/infer"), readiness=Route(8001, "/v2/health/ready"))
    labels = original.to_labels()
    assert labels["io.pkgc.model.tree"] == f"sha256:{TREE}" and labels["io.pkgc.port"] == "8000"
    assert PackageLabels.from_labels("img", labels) == original


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("io.pkgc.model.tree", "sha256:/some/host/dir", "64 lower-case hex"),
        ("io.pkgc.model.tree", "sha256:../../outside", "64 lower-case hex"),
        ("io.pkgc.model.tree", "sha256:" + "AB" * 32, "64 lower-case hex"),
        ("io.pkgc.model.dir", "/", "must not be '/'"),
        ("io.pkgc.model.dir", "/var/x/../../etc", "normalised"),
        ("io.pkgc.model.dir", "/etc/cron.d", "inside or above /etc"),
        ("io.pkgc.model.dir", "/var/lib/x", "system folder /var"),
        ("io.pkgc.model.dir", "/models:/etc", "mount options"),
        ("io.pkgc.model.dir", "relative/dir", "absolute"),
        ("io.pkgc.model.dir", "/var/models\nX", "control characters"),
        ("io.pkgc.model.mode", "rw_mount", "must be one of"),
        ("io.pkgc.port", "0", "port number"),
        ("io.pkgc.port", "99999", "port number"),
        ("io.pkgc.port", "٣٣", "port number"),
        ("io.pkgc.route.score", "score", "not valid"),
        ("io.pkgc.route.health", "/ok now", "not valid"),
        ("io.pkgc.route.health.port", "-1", "port number"),
        ("io.pkgc.model.name", "../../x", "not valid"),
        ("io.pkgc.model.version", "1/../../2", "not valid"),
    ],
)
def test_hostile_labels_are_refused_naming_the_label(key, value, words):
    labels = contract().to_labels()
    labels[key] = value
    with pytest.raises(ResolveError) as caught:
        PackageLabels.from_labels("evil:1", labels)
    message = str(caught.value)
    assert f"label {key}=" in message and words in message and "evil:1" in message


def test_long_label_values_are_quoted_short():
    labels = contract().to_labels()
    labels["io.pkgc.model.dir"] = "/x" + "y" * 5000 + "/.."
    message = str(pytest.raises(ResolveError, PackageLabels.from_labels, "img", labels).value)
    assert len(message) < 300


def test_an_image_without_the_contract_is_not_a_package():
    with pytest.raises(ResolveError, match="not a pkgc package"):
        PackageLabels.from_labels("python:3.11", {"maintainer": "x"})


@pytest.mark.parametrize("path", ["/var/azureml-app/azureml-models/m/1", "/models/m", "/mnt/model", "/var/azureml-app/models/é [1] $x"])
def test_model_dirs_that_are_fine(path):
    assert container_path_problem(path) is None


def test_base_image_labels_are_checked():
    from compiler.labels import BaseImageLabels

    assert BaseImageLabels.from_labels("b", {"io.pkgc.base.python": "3.11", "io.pkgc.base.conda": "false"}) == BaseImageLabels("3.11", False)
    assert BaseImageLabels.from_labels("b", {"io.pkgc.base.python": "", "io.pkgc.base.conda": "true"}) == BaseImageLabels(None, True)
    assert BaseImageLabels.from_labels("b", {}) is None
    for bad in ({"io.pkgc.base.python": "3.11 --index-url x"}, {"io.pkgc.base.python": "3.11", "io.pkgc.base.conda": "yes"}):
        with pytest.raises(ResolveError, match="label io.pkgc.base"):
            BaseImageLabels.from_labels("b", bad)
