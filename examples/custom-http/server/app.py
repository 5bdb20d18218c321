"""A scoring server written by hand with the standard library: the general case of a custom server.

POST /predict on --port scores {"data": [[...10 features...], ...]} with the sklearn-regression model
and answers {"predictions": [...]}. GET /healthz on --health-port (a second port, as many platforms
probe on) answers 200 once the model is loaded. The model is read from AZUREML_MODEL_DIR.
"""

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import joblib
import numpy

MODEL_FILE = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "sklearn_regression_model.pkl")


class Scoring(BaseHTTPRequestHandler):
    model = None

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/predict":
            return self._answer(404, {"error": f"no route {self.path}"})
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            rows = numpy.array(request["data"], dtype=float)
            self._answer(200, {"predictions": self.model.predict(rows).tolist()})
        except (ValueError, KeyError, TypeError) as exc:
            self._answer(400, {"error": f"{type(exc).__name__}: {exc}"})


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        ready = self.path == "/healthz" and Scoring.model is not None
        self.send_response(200 if ready else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--health-port", type=int, default=8001)
    args = parser.parse_args()
    Scoring.model = joblib.load(MODEL_FILE)
    health = ThreadingHTTPServer(("0.0.0.0", args.health_port), Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    print(f"model loaded from {MODEL_FILE}; scoring on :{args.port}, health on :{args.health_port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", args.port), Scoring).serve_forever()


if __name__ == "__main__":
    main()
