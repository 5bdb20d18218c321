"""A Triton Python-backend model: a linear regression whose weights sit beside it (weights.json)."""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        folder = os.path.join(args["model_repository"], args["model_version"])
        with open(os.path.join(folder, "weights.json")) as fh:
            weights = json.load(fh)
        self.coef = np.array(weights["coef"], dtype=np.float64)
        self.intercept = float(weights["intercept"])

    def execute(self, requests):
        responses = []
        for request in requests:
            rows = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            predictions = (rows @ self.coef + self.intercept).reshape(-1, 1).astype(np.float64)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", predictions)]))
        return responses
