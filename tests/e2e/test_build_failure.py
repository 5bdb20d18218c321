"""A build that fails leaves nothing behind: no tagged image, no workspace record, one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from tests.conftest import run_pkgc

pytestmark = pytest.mark.engine


def test_failed_build_tags_nothing_and_records_nothing(registered, session_env, example_copy, tmp_path):
    template = tmp_path / "Dockerfile.broken.j2"
    template.write_text('{% extends "Dockerfile.j2" %}\n{% block user %}{{ super() }}RUN echo "step fails" && false\n{% endblock %}\n')
    spec = tmp_path / "package.yml"
    spec.write_text((example_copy / "package-azure-app.yml").read_text()
                    .replace("sklearn-regression-docker-pkg", "broken-build-pkg")
                    .replace("code: src", f"code: {example_copy / 'src'}"))  # fmt: skip
    env = dict(session_env)
    proc = run_pkgc("build", str(spec), "--model", registered["model"], "--template", str(template), "--json", env=env)
    assert proc.returncode == 3, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pkgc: error:")]
    assert len(errors) == 1 and "image build failed" in errors[0] and "returned a non-zero code" in errors[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (log,) = [line.split(": ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("pkgc full log: ")]
    assert "output: step fails" in Path(log).read_text()  # the engine's output, kept in the run's log
    assert docker.from_env().images.list(name="pkgc/broken-build-pkg") == []  # neither version nor content tag
    listed = run_pkgc("environment", "list", "--json", env=env)
    assert "broken-build-pkg" not in [e["name"] for e in json.loads(listed.stdout)]
