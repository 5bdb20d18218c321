"""``azureml_batch``: no server but a job. pkgc's batch driver (templates/runtime/pkgc_batch.py) calls
the scoring script's init() and run(mini_batch); the spec's ``settings`` become its ``PKGC_BATCH_*``
defaults (compiler/spec/batch_job.py). An MLflow model without a script gets Azure's generated one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from compiler.mlflow.batch_scoring import generate_batch_scoring
from compiler.mlflow.mlmodel import MLflowModel
from compiler.mlflow.scoring import GeneratedCode
from compiler.servers.base import InferenceServer, RuntimeFile, ServerRequest, ServerType
from compiler.spec.batch_job import job_variables
from compiler.spec.model import AzureMLBatchServer
from compiler.spec.values import PKGC_HOME

BATCH_DRIVER = f"{PKGC_HOME}/bin/pkgc_batch.py"  # templates/runtime/pkgc_batch.py in the image


class AzureMLBatch(ServerType):
    name = "azureml_batch"
    needs_code = True
    runtime_files = (RuntimeFile("pkgc_batch.py", BATCH_DRIVER, "the batch driver: init(), run(mini_batch), outputs",
                                 executable=True),)  # fmt: skip

    def from_spec(self, request: ServerRequest) -> InferenceServer:
        server = request.spec_file.spec.inferencing_server
        assert isinstance(server, AzureMLBatchServer)
        if server.settings is None:
            return AZUREML_BATCH  # the strict driver: no retries, the first failed file stops the job
        return replace(AZUREML_BATCH, environment=tuple(sorted(job_variables(server.settings).items())))

    def mlflow_scoring(self, model: MLflowModel, model_subdir: str, cache_dir: Path) -> GeneratedCode:
        return generate_batch_scoring(model_subdir, cache_dir)


TYPE = AzureMLBatch()
AZUREML_BATCH = InferenceServer(kind=TYPE, requirements=(), score=None, readiness=None, liveness=None)
