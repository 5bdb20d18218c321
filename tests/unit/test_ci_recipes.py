"""docs/ci.md's recipes: the Kubernetes Jobs validate against Kubernetes' own JSON schemas (offline,
kubernetes-validate, strict) and run pkgc's image as it must run; the GitHub Actions matrix (not run
here: no GitHub) runs it the same way. No cluster, no runner: the documents themselves are checked."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from compiler.selfimage.config import UID, WORK

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
K8S = "1.35.0"


def yaml_blocks() -> list[dict]:
    return [yaml.safe_load(m.group(1)) for m in re.finditer(r"^```yaml\n(.*?)^```", DOC.read_text(), re.S | re.M)]


def jobs() -> list[dict]:
    return [doc for doc in yaml_blocks() if isinstance(doc, dict) and doc.get("kind") == "Job"]


def test_the_job_manifests_are_valid_kubernetes():
    found = jobs()
    assert len(found) == 2 and any(j["spec"].get("completionMode") == "Indexed" for j in found)
    for job in found:
        kubernetes_validate.validate(job, K8S, strict=True)


def test_a_misspelt_field_fails_the_same_validation():
    job = jobs()[0]
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S, strict=True)


@pytest.mark.parametrize("job", jobs(), ids=lambda j: j["metadata"]["name"])
def test_the_jobs_run_pkgc_unprivileged_read_only_with_a_writable_work_folder(job):
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == UID
    assert pod["automountServiceAccountToken"] is False  # no API access, no engine socket
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context == {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[WORK]["name"]] and not mounts[WORK].get("readOnly")
    assert all(m.get("readOnly") for path, m in mounts.items() if path != WORK)  # nothing else is written
    assert not any("hostPath" in v for v in volumes.values())
    command = " ".join(container.get("command", []) + container.get("args", []))
    assert "build" in command and "--push" in command and "--cache" in command and "pkgc/pkgc:" in container["image"]


def test_the_github_actions_matrix_runs_the_image_the_same_way():
    (workflow,) = [doc for doc in yaml_blocks() if isinstance(doc, dict) and "jobs" in doc]
    job = workflow["jobs"]["build"]
    assert len(job["strategy"]["matrix"]["package"]) > 1 and job["strategy"]["fail-fast"] is False
    (step,) = [s for s in job["steps"] if "docker run" in s.get("run", "")]
    words = shlex.split(step["run"].split("docker run", 1)[1].replace("\\\n", " ").split("\n")[0].replace("${{", "").replace("}}", ""))
    assert {"--read-only", "--cap-drop", "--security-opt", "--user"} <= set(words)
    assert words[words.index("--user") + 1] == str(UID) and words[words.index("--cap-drop") + 1] == "ALL"
    assert "--cache" in words and "--push" in words and "--privileged" not in words
    assert not any("docker.sock" in w for w in words)
