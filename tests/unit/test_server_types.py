"""The server seam: every type the spec admits has one module in the registry, each turns its own
spec into its server, and each file it ships is in templates/runtime."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml

from compiler.resolve.types import ResolvedModel
from compiler.resources import templates_dir
from compiler.servers.base import ServerRequest, ServerType
from compiler.servers.registry import SERVERS, server_type
from compiler.spec.load import load_package_spec
from compiler.spec.model import SERVER_TYPES, InferencingServer
from compiler.spec.values import PKGC_HOME

MODEL_DIR = "/var/azureml-app/azureml-models/m/1"
ROUTES = {"scoring_route": {"port": 8080, "path": "/predict"}, "readiness_route": {"port": 8080, "path": "/ready"}}
SPECS = {  # one minimal inferencing_server per type
    "azureml_online": {"type": "azureml_online", "code_configuration": {"code": "src", "scoring_script": "score.py"}},
    "azureml_batch": {"type": "azureml_batch", "code_configuration": {"code": "src", "scoring_script": "score.py"},
                      "settings": {"mini_batch_size": 5}},
    "custom": {"type": "custom", "inference_configuration": {"entry_script": "serve --port 8080", **ROUTES}},
    "triton": {"type": "triton"},
}  # fmt: skip


def test_the_registry_covers_every_server_type_the_spec_admits():
    union = typing.get_args(typing.get_args(InferencingServer)[0])  # Annotated[Union[...], discriminator]
    admitted = {typing.get_args(cls.model_fields["type"].annotation)[0] for cls in union}
    assert admitted == set(SERVER_TYPES)
    assert set(SERVERS) == set(SERVER_TYPES) == set(SPECS)
    for name in SERVER_TYPES:
        kind = server_type(name)
        assert isinstance(kind, ServerType) and kind.name == name


def spec_request(tmp_path: Path, server: dict) -> ServerRequest:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\ndef run(data): return data\n")
    repository = tmp_path / "tree" / "repo" / "linear"
    (repository / "1").mkdir(parents=True)
    (repository / "config.pbtxt").write_text('name: "linear"\nbackend: "python"\n')
    doc = {"target_environment": "t", "base_environment_source": {"type": "environment_asset", "resource_id": "azureml:e:1"},
           "inferencing_server": server}  # fmt: skip
    path = tmp_path / "package.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    model = ResolvedModel("m", "1", "custom_model", "ab" * 32, tmp_path / "tree", "repo", "azureml:m:1")
    return ServerRequest(load_package_spec(path), model, MODEL_DIR)


@pytest.mark.parametrize("name", SERVER_TYPES)
def test_each_type_makes_its_server_from_its_spec(tmp_path, name):
    kind = server_type(name)
    server = kind.from_spec(spec_request(tmp_path, SPECS[name]))
    assert server.kind is kind and server.type == name
    variables = kind.start_variables(server)
    assert variables.get("PKGC_SERVER", "azureml_online") == name  # azureml_online: the entrypoint's default
    assert variables.get("PKGC_PORT") == (str(server.score.port) if server.score else None)
    if name == "azureml_batch":
        assert dict(server.environment)["PKGC_BATCH_MINI_BATCH_SIZE"] == "5" and server.ports == ()
    if name == "custom":
        assert server.command == ("serve", "--port", "8080") and not kind.own_container(server)


@pytest.mark.parametrize("name", SERVER_TYPES)
def test_every_shipped_runtime_file_is_in_the_templates(name):
    for shipped in server_type(name).runtime_files:
        source = templates_dir() / "runtime" / shipped.name
        assert source.is_file(), source
        assert shipped.dest.startswith(f"{PKGC_HOME}/") and shipped.why
        if shipped.executable and not shipped.name.endswith(".py"):
            assert source.read_bytes().startswith(b"#!"), f"{source} is run: it needs a #! line"
