"""Batch scoring script as Azure ML batch deployments define it: init() once, run(mini_batch) per
list of file paths. Each input file is a CSV of rows of 10 features (no header); the result is one
row per input row: file name, row number, prediction."""

import os

import joblib
import pandas

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "sklearn_regression_model.pkl"))


def run(mini_batch):
    results = []
    for path in mini_batch:
        rows = pandas.read_csv(path, header=None)
        predictions = model.predict(rows.to_numpy(dtype=float))
        for number, value in enumerate(predictions):
            results.append({"file": os.path.basename(path), "row": number, "prediction": float(value)})
    return pandas.DataFrame(results, columns=["file", "row", "prediction"])
