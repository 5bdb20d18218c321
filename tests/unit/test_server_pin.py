"""The injected inference server: a supported range with a preferred pin; the user's pin wins inside it."""

import pytest

from compiler.deps.merge import merge
from compiler.servers.azureml_online import AZUREML_ONLINE, AZUREML_SERVER_VERSION
from compiler.servers.custom import custom_server
from compiler.servers.pins import describe_server, server_depset
from compiler.deps.specs import parse_conda, parse_pip
from compiler.deps.types import DepSet, Source
from compiler.errors import MergeError
from compiler.labels import Route

USER = Source("conda_file", "conda file 'conda.yaml' of environment env:1")
SERVER = "azureml-inference-server-http"


def user(*pip, conda=()):
    reqs = tuple(parse_conda(c, USER) for c in conda) + tuple(parse_pip(p, USER) for p in pip)
    return DepSet(USER, reqs)


def merged_with_server(*pip, conda=()):
    others = [user(*pip, conda=conda)]
    return merge(others + [server_depset(AZUREML_ONLINE, others)])


def server_dep(merged):
    return next((d for d in merged.pip if d.name == SERVER), None)


def test_no_user_constraint_takes_the_preferred_pin():
    merged = merged_with_server("joblib==1.6.0")
    assert server_dep(merged).specifier == f"=={AZUREML_SERVER_VERSION}"
    assert server_dep(merged).pip_line() == f"{SERVER}==1.5.1"  # unchanged: existing locks stay valid
    note = describe_server(AZUREML_ONLINE, merged)
    assert note == f"inference server: {SERVER}==1.5.1, the version pkgc tests (a pin of your own within >=1.3,<2 wins)"


@pytest.mark.parametrize("pin", ["azureml-inference-server-http==1.4.1", "Azureml_Inference_Server_HTTP==1.4.1"])
def test_a_user_pin_inside_the_range_wins_and_is_reported(pin):
    merged = merged_with_server(pin)
    dep = server_dep(merged)
    assert dep.pip_line() == f"{SERVER}==1.4.1,<2,>=1.3"
    assert dep.sources == (str(USER), "inference server 'azureml_online' (pkgc supports "
                           "azureml-inference-server-http>=1.3,<2; tested 1.5.1)")
    note = describe_server(AZUREML_ONLINE, merged)
    assert note.startswith(f"inference server: {SERVER}==1.4.1,<2,>=1.3: your '{pin}' from {USER}")
    assert note.endswith("within the supported >=1.3,<2")


def test_a_loose_user_constraint_is_intersected_with_the_range():
    assert server_dep(merged_with_server(f"{SERVER}>=1.0")).specifier == ">=1.0,<2,>=1.3"


@pytest.mark.parametrize("pin", ["==0.8.4", "==2.0.0", "<1.2"])
def test_a_pin_outside_the_range_names_the_supported_versions(pin):
    with pytest.raises(MergeError) as err:
        merged_with_server(f"{SERVER}{pin}")
    (line,) = err.value.lines()
    assert f"'{SERVER}{pin}' from {USER}" in line
    assert "pkgc supports azureml-inference-server-http>=1.3,<2; tested 1.5.1" in line


def test_a_conda_pin_of_the_server_counts_too():
    merged = merged_with_server(conda=("azureml-inference-server-http=1.4",))
    assert server_dep(merged).specifier == "<2,>=1.3"
    assert merged.conda_dep(SERVER).specifier == "==1.4.*"


def test_azureml_defaults_brings_the_server_with_its_own_pin():
    others = [user("azureml-defaults==1.62.0")]
    injected = server_depset(AZUREML_ONLINE, others)
    assert injected.requirements == ()
    merged = merge(others + [injected])
    assert server_dep(merged) is None
    note = describe_server(AZUREML_ONLINE, merged)
    assert note == (f"inference server: {SERVER} as azureml-defaults==1.62.0 ({USER}) pins it "
                    "(pkgc supports >=1.3,<2; tested 1.5.1)")


def test_azureml_defaults_and_an_explicit_server_pin_keep_the_range():
    merged = merged_with_server("azureml-defaults==1.62.0", f"{SERVER}==1.4.1")
    assert server_dep(merged).specifier == "==1.4.1,<2,>=1.3"


def test_a_custom_server_injects_nothing():
    server = custom_server(Route(8080, "/predict"), Route(8080, "/health"), Route(8080, "/health"), ("serve",), {})
    assert server_depset(server, [user("joblib")]).requirements == ()
    assert describe_server(server, merge([user("joblib")])) is None
