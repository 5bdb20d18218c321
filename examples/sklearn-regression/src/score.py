"""Scoring script for the Azure ML inference server: init() loads the model, run() predicts."""

import json
import logging
import os

import joblib
import numpy

model = None


def init():
    """Load the model once; AZUREML_MODEL_DIR holds the registered folder 'model'."""
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "sklearn_regression_model.pkl")
    model = joblib.load(model_path)
    logging.info("model loaded from %s", model_path)


def run(raw_data):
    """Predict for {"data": [[...10 features...], ...]}; return a list of predictions."""
    data = numpy.array(json.loads(raw_data)["data"])
    return model.predict(data).tolist()
