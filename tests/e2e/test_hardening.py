"""Hardening against hostile images and concurrent or careless use, on the real engine:
labels are untrusted input, a busy port leaves nothing behind, concurrent builds of one target agree."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from compiler.labels import PackageLabels
from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine


def _leftovers(engine, image: str) -> list:
    return engine._client.containers.list(all=True, filters={"ancestor": image})


def _image_with_labels(engine, base_image: str, tag: str, labels: dict[str, str]) -> str:
    """An image 'anyone' built: the base image plus hand-written labels."""
    lines = [f"FROM {base_image}"] + [f"LABEL {json.dumps(k)}={json.dumps(v)}" for k, v in labels.items()]
    dockerfile = ("\n".join(lines) + "\n").encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    engine.build(context, tag, lambda _line: None, no_cache=True)  # the previous case removed its image
    return tag


@pytest.fixture
def hostile_image(engine, base_image, readonly_package):
    labels = dict(engine.image_info(readonly_package["image"]).labels)
    tag = "pkgc/pkgc-lead-hostile:1"
    yield lambda changes: _image_with_labels(engine, base_image, tag, {**labels, **changes})
    engine.remove_image(tag)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"io.pkgc.model.tree": "sha256:/etc", "io.pkgc.model.dir": "/loot"}, "label io.pkgc.model.tree="),
        ({"io.pkgc.model.tree": "sha256:../../outside"}, "label io.pkgc.model.tree="),
        ({"io.pkgc.model.tree": "sha256:" + "0" * 64}, "are not in workspace"),
        ({"io.pkgc.model.dir": "/etc"}, "label io.pkgc.model.dir="),
        ({"io.pkgc.port": "70000"}, "label io.pkgc.port="),
    ],
)
def test_hostile_labels_mount_nothing(hostile_image, engine, session_env, changes, words):
    image = hostile_image(changes)
    for command in (["run", image, "--detach"], ["verify", image]):
        proc = run_pkgc(*command, env=session_env)
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
        assert len(errors) == 1 and words in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert _leftovers(engine, image) == []


def test_busy_port_is_one_line_and_leaves_no_container(readonly_package, engine, session_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_pkgc("run", readonly_package["image"], "--port", str(port), "--detach", env=session_env)
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr and "internal error" not in proc.stderr
    assert [c for c in _leftovers(engine, readonly_package["image"]) if c.status == "created"] == []


def test_concurrent_builds_of_one_target_agree(example_copy, registered, session_env, engine, tmp_path):
    """Two builds at once, different model versions: each version tag names the image its record names."""
    spec = tmp_path / "package-race.yml"
    spec.write_text((example_copy / "package-moe.yml").read_text()
                    .replace("sklearn-regression-online-pkg", "pkgc-lead-race").replace("code: src", f"code: {example_copy / 'src'}"))  # fmt: skip
    second = run_pkgc("-q", "model", "create", "--name", "sklearn-regression", "--path", str(example_copy / "model"), env=session_env)
    assert second.returncode == 0, second.stderr
    models = [registered["model"], second.stdout.strip()]
    assert run_pkgc("lock", str(spec), "--model", models[0], env=session_env).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "compiler.cli", "build", str(spec), "--model", m, "--json"],
                              env=session_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for m in models]  # fmt: skip
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    assert sorted(r["target_environment"] for r in results) == ["pkgc-lead-race:1", "pkgc-lead-race:2"]
    for result in results:
        version = result["target_environment"].split(":")[1]
        record = json.loads(run_pkgc("environment", "show", f"pkgc-lead-race:{version}", env=session_env).stdout)
        tagged = engine.image_info(f"pkgc/pkgc-lead-race:{version}")
        assert record["image"] == f"pkgc/pkgc-lead-race:{version}" and tagged.id == record["package"]["image_id"]
        assert PackageLabels.from_labels(record["image"], tagged.labels).model_ref == record["package"]["model"]
        engine.remove_image(tagged.id)  # every tag of it, the content tag too
    workspace = Path(session_env["PKGC_WORKSPACE"])
    assert not list((workspace / "environments" / "pkgc-lead-race").glob("*.reserved"))
