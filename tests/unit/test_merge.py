"""Merge stage: constraints combine with their sources kept; conflicts name both sides."""

import pytest

from compiler.deps.conda_file import parse_conda_document
from compiler.deps.merge import merge
from compiler.deps.satisfiable import satisfiable
from compiler.servers.azureml_online import AZUREML_ONLINE
from compiler.servers.pins import server_depset
from compiler.deps.specs import parse_conda, parse_pip
from compiler.deps.types import DepSet, Source
from compiler.errors import MergeError, SpecError
from compiler.spec.yamldoc import load_yaml

A = Source("conda_file", "conda file of env:1")
B = Source("server", "inference server")


def depset(source, *reqs, manager="pip"):
    parse = parse_pip if manager == "pip" else parse_conda
    return DepSet(source, tuple(parse(r, source) for r in reqs))


@pytest.mark.parametrize(
    "spec, ok",
    [
        ("==1.2,==1.3", False),
        ("==1.2,>=1.0", True),
        ("==1.2.*,==1.3", False),
        ("~=1.4.2,<1.4", False),
        ("<=2.0,>=2.0", True),
        ("<2,>=2", False),
        ("==3.9.*,==3.11.*", False),
        (">=1.0,!=1.5", True),
        ("<=23.2.1", True),
    ],
)
def test_satisfiable(spec, ok):
    assert satisfiable(spec) is ok


def test_constraints_are_combined_not_overwritten():
    merged = merge([depset(A, "pip<=23.2.1", "numpy>=1.20"), depset(B, "pip", "numpy<3")])
    pip = {d.name: d for d in merged.pip}
    assert pip["pip"].specifier == "<=23.2.1"  # an unconstrained pip does not drop the pin
    assert pip["numpy"].specifier == ">=1.20,<3"
    assert pip["numpy"].sources == ("conda file of env:1", "inference server")


def test_conflict_names_both_sources_and_constraints():
    with pytest.raises(MergeError) as err:
        user = depset(A, "azureml-inference-server-http==0.8.4")
        merge([user, server_depset(AZUREML_ONLINE, [user])])
    (line,) = err.value.lines()
    assert "'azureml-inference-server-http==0.8.4' from conda file of env:1" in line
    assert (
        "'azureml-inference-server-http>=1.3,<2' from inference server 'azureml_online' "
        "(pkgc supports azureml-inference-server-http>=1.3,<2; tested 1.5.1)" in line
    )


def test_conda_and_pip_constraints_on_one_package_must_agree():
    with pytest.raises(MergeError, match="numpy"):
        merge([depset(A, "numpy=1.23.5", manager="conda"), depset(B, "numpy>=2")])


def test_extras_and_names_are_normalised():
    merged = merge([depset(A, "Scikit_Learn>=1.0"), depset(B, "scikit-learn[alldeps]<2")])
    (dep,) = merged.pip
    assert dep.name == "scikit-learn" and dep.extras == ("alldeps",)
    assert dep.pip_line() == "scikit-learn[alldeps]>=1.0,<2"


def test_conda_file_parsing_with_pip_section(tmp_path):
    path = tmp_path / "conda.yaml"
    path.write_text("name: x\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - joblib==1.6.0\n")
    ds = parse_conda_document(load_yaml(path), A)
    assert ds.channels == ("conda-forge",)
    assert [(r.manager, r.name, r.specifier) for r in ds.requirements] == [
        ("conda", "python", "==3.11.*"),
        ("conda", "pip", ""),
        ("pip", "joblib", "==1.6.0"),
    ]


def test_conda_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "conda.yaml"
    path.write_text("dependencies:\n  - python=3.11\n  - pip:\n    - 'numpy>=>1'\n    - --index-url http://x\n")
    with pytest.raises(SpecError) as err:
        parse_conda_document(load_yaml(path), A)
    lines = err.value.lines()
    assert lines[0].startswith(f"{path}:4: dependencies[1].pip[0]: invalid pip requirement")
    assert lines[1].startswith(f"{path}:5: dependencies[1].pip[1]: pip option '--index-url' is not supported")
