"""``azureml_online``: Azure ML's HTTP server (azureml-inference-server-http), injected and pinned,
running the scoring script's init() and run(); an MLflow model without one gets pkgc's score.py."""

from __future__ import annotations

from pathlib import Path

from compiler.labels import Route
from compiler.mlflow.mlmodel import MLflowModel
from compiler.mlflow.scoring import GeneratedCode, generate_scoring
from compiler.servers.base import InferenceServer, RuntimeFile, ServerRequest, ServerType
from compiler.spec.values import PKGC_HOME

AZUREML_SERVER_PACKAGE = "azureml-inference-server-http"
AZUREML_SERVER_VERSION = "1.5.1"  # preferred: the version pkgc's tests build and serve
AZUREML_SERVER_SUPPORTED = ">=1.3,<2"  # 1.3 moved to pydantic 2 and werkzeug 3; 2.x is a new major
KEEPALIVE_WORKER = f"{PKGC_HOME}/lib/pkgc_worker.py"  # the entrypoint puts its folder on PYTHONPATH


class AzureMLOnline(ServerType):
    name = "azureml_online"
    needs_code = True
    entrypoint_default = True  # images of this server carry no PKGC_SERVER, as before servers had types
    runtime_files = (RuntimeFile("pkgc_worker.py", KEEPALIVE_WORKER, "pkgc's gunicorn worker: connections kept alive",
                                 executable=False),)  # imported, not run  # fmt: skip

    def from_spec(self, request: ServerRequest) -> InferenceServer:
        return AZUREML_ONLINE

    def mlflow_scoring(self, model: MLflowModel, model_subdir: str, cache_dir: Path) -> GeneratedCode:
        return generate_scoring(model, model_subdir, cache_dir)


TYPE = AzureMLOnline()
AZUREML_ONLINE = InferenceServer(
    kind=TYPE,
    requirements=(f"{AZUREML_SERVER_PACKAGE}{AZUREML_SERVER_SUPPORTED}",),
    score=Route(5001, "/score"),
    readiness=Route(5001, "/"),
    liveness=Route(5001, "/"),
    preferred=(f"{AZUREML_SERVER_PACKAGE}=={AZUREML_SERVER_VERSION}",),
    brought_by=("azureml-defaults",),
)
