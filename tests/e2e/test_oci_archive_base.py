"""``--base-image oci-archive:FILE`` with no engine, through the real command line: the archive skopeo
writes from the offline base image is read in place (never extracted) and gives the same base layers
under the package as the same base given as an ``oci:DIR`` layout; the same archive made hostile (a layer member linked to
/dev/zero) is one line of bad input, with no partial blob in the store."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_pkgc
from tests.e2e.test_oci_backend import NOWHERE, no_engine_build

pytestmark = pytest.mark.engine


def _manifest(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_bytes())
    digest = next(m["digest"] for m in index["manifests"] if "artifactType" not in m)
    return json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())


def test_an_oci_archive_base_builds_the_image_its_layout_gives(base_image, example_copy, session_env, tmp_path):
    archive, layout = tmp_path / "base.tar", tmp_path / "layout"
    for target in (f"oci-archive:{archive}:base", f"oci:{layout}:base"):
        subprocess.run(["skopeo", "copy", "--quiet", f"docker-daemon:{base_image}", target], check=True, capture_output=True)
    extracted_before = set(Path(tempfile.gettempdir()).glob("pkgc-oci-archive-*"))
    from_archive = no_engine_build(tmp_path / "archive", example_copy, f"oci-archive:{archive}:base")
    from_layout = no_engine_build(tmp_path / "layout-build", example_copy, f"oci:{layout}:base")
    base_layers = _manifest(layout)["layers"]
    built = [_manifest(tmp_path / name / "out-package-azure-app")["layers"] for name in ("archive", "layout-build")]
    assert built[0][: len(base_layers)] == built[1][: len(base_layers)] == base_layers
    # the rest differs only where the base's name is recorded: the SBOM (its base component) in the runtime layer
    assert len(built[0]) == len(built[1]) and sum(a != b for a, b in zip(*built)) == 1
    assert from_archive["manifest_digest"] != from_layout["manifest_digest"]  # the label org.opencontainers.image.base.name
    assert set(Path(tempfile.gettempdir()).glob("pkgc-oci-archive-*")) == extracted_before

    with tarfile.open(archive) as tar:  # the same archive, its largest layer member now a link to /dev/zero
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]  # type: ignore[union-attr]
    largest = max((m for m, _ in members if m.isfile()), key=lambda m: m.size).name
    hostile = tmp_path / "hostile.tar"
    with tarfile.open(hostile, "w") as tar:
        for member, data in members:
            if member.name == largest:
                member = tarfile.TarInfo(largest)
                member.type, member.linkname, data = tarfile.SYMTYPE, "/dev/zero", None
            tar.addfile(member, None if data is None else io.BytesIO(data))
    cache = tmp_path / "hostile-cache"
    env = {**session_env, "DOCKER_HOST": NOWHERE, "PKGC_CACHE_DIR": str(cache), "PKGC_WORKSPACE": str(tmp_path / "ws")}
    project = tmp_path / "archive" / "project"
    model = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(project / "model"), env=env)
    environment = run_pkgc("-q", "environment", "create", "--file", str(project / "environment" / "sklearn-regression-env.yml"), env=env)
    assert model.returncode == 0 and environment.returncode == 0, model.stderr + environment.stderr
    proc = run_pkgc("build", str(project / "package-azure-app.yml"), "--model", model.stdout.strip(),
                    "--base-image", f"oci-archive:{hostile}:base", "--output", f"oci:{tmp_path / 'never'}", env=env)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and f"{largest.removeprefix('./')}: is a symbolic link" in errors[0] and "Traceback" not in proc.stderr
    assert not list(cache.rglob(".partial-*")) and not (tmp_path / "never").exists()
