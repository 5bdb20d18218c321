"""The slim rules (compiler/envbuild/slim.py) on a fake venv whose site-packages holds real dist-info
folders (METADATA, RECORD), and the plan's slim/bytecode choices as both back ends read them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.envbuild import slim
from compiler.envbuild.choices import SLIM_IN_CONTEXT, apply_environment_choices
from compiler.labels import BYTECODE, SLIM
from compiler.plan.types import BaseImage, EnvironmentBuild, ImageConfig, ImagePlan, Layer
from compiler.render import render_dockerfile

SITE = "lib/python3.11/site-packages"


def dist(root: Path, name: str, files: dict[str, str], requires: tuple[str, ...] = (), extras: tuple[str, ...] = ()) -> None:
    """Install a fake distribution: its files (paths relative to site-packages) and a dist-info."""
    site = root / SITE
    info = f"{name.replace('-', '_')}-1.0.dist-info"
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    lines += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    files = {**files, f"{info}/METADATA": "\n".join(lines) + "\n"}
    record = []
    for rel, text in files.items():
        path = (site / rel).resolve() if ".." in rel else site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        record.append(f"{rel},{slim.record_hash(text.encode())},{len(text)}")
    record.append(f"{info}/RECORD,,")
    (site / info / "RECORD").write_text("\n".join(record) + "\n")


def installers(root: Path) -> None:
    dist(root, "pip", {"pip/__init__.py": "", "../../../bin/pip": "#!python\n", "../../../bin/pip3": "#!python\n"})
    dist(root, "setuptools", {"setuptools/__init__.py": "", "pkg_resources/__init__.py": "", "_distutils_hack/__init__.py": "",
                              "distutils-precedence.pth": "import _distutils_hack\n"}, extras=("testing",),
         requires=('pip>=19.1; extra == "testing"', 'wheel; extra == "testing"', 'pytest; extra == "testing"'))  # fmt: skip
    dist(root, "wheel", {"wheel/__init__.py": "", "../../../bin/wheel": "#!python\n"})


@pytest.fixture
def venv(tmp_path) -> Path:
    root = tmp_path / "venv"
    (root / "bin").mkdir(parents=True)
    (root / SITE).mkdir(parents=True)
    installers(root)
    return root


def names(root: Path) -> set[str]:
    return {p.name.split("-")[0] for p in (root / SITE).glob("*.dist-info")}


def test_installers_go_with_their_scripts_pth_and_byte_code(venv):
    dist(venv, "flask", {"flask/__init__.py": "import os\n"}, requires=("click",))
    pyc = venv / SITE / "pip" / "__pycache__" / "__init__.cpython-311.pyc"
    pyc.parent.mkdir()
    pyc.write_bytes(b"\0")
    report = slim.slim_environment(venv, python="3.11")
    assert names(venv) == {"flask"}
    site = venv / SITE
    for gone in ("pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel", "distutils-precedence.pth"):
        assert not (site / gone).exists(), gone
    assert not list((venv / "bin").iterdir()) and not (site / "pip").exists()
    assert (site / "flask" / "__init__.py").is_file()
    assert sorted(report.removed_distributions) == ["pip", "setuptools", "wheel"]
    written = json.loads((venv / slim.REPORT_NAME).read_text())
    assert written["removed_distributions"] == ["pip", "setuptools", "wheel"] and written["removed_bytes"] > 0


def test_an_installer_required_at_run_time_stays_with_what_it_requires(venv):
    dist(venv, "legacy", {"legacy/__init__.py": "import pkg_resources\n"}, requires=("setuptools>=40",))
    (venv / SITE / "setuptools-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: setuptools\nVersion: 1.0\nRequires-Dist: wheel\n")
    report = slim.slim_environment(venv, python="3.11")
    assert names(venv) == {"legacy", "setuptools", "wheel"}
    assert report.kept_installers == {"setuptools": "required by legacy", "wheel": "required by setuptools"}
    assert (venv / SITE / "distutils-precedence.pth").is_file() and not (venv / "bin" / "pip").exists()


@pytest.mark.parametrize(
    ("requires", "extras", "python", "kept"),
    [
        (('setuptools; extra == "dev"', 'pytest; extra == "dev"'), ("dev",), "3.11", False),  # psutil[dev]: pytest absent
        (('setuptools; extra == "pkg"',), ("pkg",), "3.11", True),  # an extra of installers only: cannot tell, kept
        (('setuptools; python_version >= "3.12"',), (), "3.11", False),  # the image's Python, not the host's
        (('setuptools; python_version >= "3.12"',), (), "3.12", True),
        (('setuptools; sys_platform == "win32"',), (), "3.11", False),
        (("pip-tools",), (), "3.11", False),  # a name that merely starts like an installer
    ],
)
def test_requirements_are_read_with_markers_and_extras(venv, requires, extras, python, kept):
    dist(venv, "user", {"user/__init__.py": ""}, requires=requires, extras=extras)
    slim.slim_environment(venv, python=python)
    assert ("setuptools" in names(venv)) is kept


def test_installers_the_environment_asks_for_stay(venv):
    report = slim.slim_environment(venv, python="3.11", keep=("Setuptools",))
    assert names(venv) == {"setuptools"} and report.kept_installers == {"setuptools": "asked for by the environment"}


def test_test_and_doc_folders_go_unless_imported_or_named(venv):
    site = venv / SITE
    dist(venv, "lib", {
        "lib/__init__.py": "from lib import core\n",
        "lib/core.py": "import os\nDATA = os.path.join(os.path.dirname(__file__), 'x')\n",
        "lib/tests/__init__.py": "", "lib/tests/test_core.py": "import lib\n",
        "lib/sub/test/test_x.py": "", "lib/sub/__init__.py": "",
        "lib/testing/__init__.py": "from lib.tests import test_core\n",  # `testing` is API: kept, and its import keeps nothing
        "lib/_lib/__init__.py": "", "lib/_lib/util.py": "from .tests import helpers\n", "lib/_lib/tests/helpers.py": "",
        "lib/docs/readme.txt": "", "lib/examples/demo.py": "",
        "lib/data/__init__.py": "", "lib/data/loader.py": "open(os.path.join(HERE, 'docs', 'table.csv'))\n",
        "lib/data/docs/table.csv": "a,b\n",
    })  # fmt: skip
    dist(venv, "sloppy", {"tests/__init__.py": "", "tests/test_sloppy.py": ""})  # a top-level package named tests
    report = slim.slim_environment(venv, python="3.11")
    for gone in ("lib/sub/test", "lib/docs", "lib/examples"):
        assert not (site / gone).exists(), gone
    for kept in ("lib/testing", "lib/_lib/tests/helpers.py", "lib/data/docs/table.csv", "tests/test_sloppy.py"):
        assert (site / kept).exists(), kept
    # lib/tests is imported by lib/testing (a module outside every candidate folder): kept, with the reason
    assert report.kept_folders == {"lib/tests": "lib/testing/__init__.py", "lib/_lib/tests": "lib/_lib/util.py",
                                   "lib/data/docs": "lib/data/loader.py"}  # fmt: skip
    assert sorted(report.removed_folders) == ["lib/docs", "lib/examples", "lib/sub/test"]
    record = (site / "lib-1.0.dist-info" / "RECORD").read_text()
    assert "lib/sub/test/" not in record and "lib/examples/" not in record and "lib/core.py" in record


def test_paths_outside_the_environment_are_never_touched(venv, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    record = venv / SITE / "pip-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + "../../../../outside.txt,,\n/etc/hostname,,\n")
    slim.slim_environment(venv, python="3.11")
    assert outside.read_text() == "keep me" and "pip" not in names(venv)


def test_the_script_form_runs_with_only_the_standard_library_and_packaging(venv):
    proc = subprocess.run([sys.executable, slim.__file__, str(venv), "--keep", "wheel"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert names(venv) == {"wheel"} and "removed pip, setuptools" in proc.stderr


def _plan(strategy: str = "venv") -> ImagePlan:
    env = EnvironmentBuild(strategy, "/opt/pkgc/venv", "pkgc/requirements.lock.txt", "pkgc/wheels")  # type: ignore[arg-type]
    config = ImageConfig({}, {"io.pkgc.version": "0"}, "pkgc", 10001, "/app", 5001, ("/e",), path_prefix="/opt/pkgc/venv/bin")
    return ImagePlan(BaseImage("pkgc/base:1"), env, (Layer("user", "the user"),), config)


def test_choices_reach_the_plan_labels_and_the_dockerfile():
    plan, note = apply_environment_choices(_plan(), slim=True, bytecode=False, keep=("numpy", "Setuptools"))
    assert note is None and plan.config.labels[SLIM] == "true" and plan.config.labels[BYTECODE] == "false"
    assert plan.environment.slim_keep == ("setuptools",) and any(f.dest == SLIM_IN_CONTEXT for f in plan.files)
    text = render_dockerfile(plan)
    assert "--no-compile" in text
    assert "RUN /opt/pkgc/venv/bin/python /tmp/pkgc/slim.py /opt/pkgc/venv --keep setuptools" in text
    default, _ = apply_environment_choices(_plan(), slim=False, bytecode=True)
    assert default == _plan() and "slim.py" not in render_dockerfile(default) and "--no-compile" not in render_dockerfile(default)


def test_slim_on_the_conda_strategy_is_reported_not_applied():
    plan, note = apply_environment_choices(_plan("conda"), slim=True, bytecode=True)
    assert "venv environments only" in note and not plan.environment.slim and SLIM not in plan.config.labels


def test_config_file_sets_slim_and_bytecode_defaults(tmp_path):
    from compiler.options import load_options

    (tmp_path / "pkgc.toml").write_text("slim = true\nbytecode = false\n")
    options = load_options(config_dir=tmp_path, environ={})
    assert options.slim is True and options.bytecode is False
    assert load_options(config_dir=tmp_path / "none", environ={}).slim is False
