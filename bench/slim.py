"""Benchmark --slim and byte-code on two packages (a script, not a test).

For the sklearn example and an MLflow iris package (LogisticRegression saved by the real mlflow with
the MLflow example's pins), each built by the OCI back end four ways -- default, --slim,
--no-bytecode, --slim --no-bytecode -- it measures the image size (engine), what slim removed
(/opt/pkgc/venv/pkgc-slim.json), and `docker run` -> first 200 on /score (median of --runs,
interleaved so a busy moment hits every variant alike). The MLflow iris package's slim size is also
given as a fraction of MLflow `build-docker`'s image for the same model (--mlflow-docker-mb: 1200,
the size the issue reports; that image cannot be built here: its base comes from Docker Hub).
Prints a table and writes bench/results/slim-<time>.json.

Also, with --variants docker_default,docker_slim: the docker back end (whose venv carries pip and
setuptools from `python3 -m venv`, and pip's byte-code of test folders).

Usage: python3 bench/slim.py [--runs N] [--prefix NAME] [--variants V,...] [--packages sklearn,iris]
       (images are named pkgc/<prefix>-<package>-<variant>)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backends import median, remove_images  # noqa: E402
from bench import build, first_score, pkgc, report  # noqa: E402
from compiler.engines import DockerEngine  # noqa: E402

VARIANTS = {"default": (), "slim": ("--slim",), "nobytecode": ("--no-bytecode",), "slim_nobytecode": ("--slim", "--no-bytecode"),
            "docker_default": ("--builder", "docker"), "docker_slim": ("--builder", "docker", "--slim")}  # fmt: skip
IRIS_REQUIREMENTS = ["mlflow==3.17.2", "scikit-learn==1.9.1", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "skops==0.16.0"]


def iris_model(folder: Path) -> tuple[Path, bytes]:
    """An MLflow iris classifier saved with a signature and pinned requirements; and a request body."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    path = folder / "iris-model"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)), pip_requirements=IRIS_REQUIREMENTS)
    body = {"input_data": {"columns": list(X.columns), "data": X.head(2).values.tolist()}}
    return path, json.dumps(body).encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="runs of each start-up measurement")
    parser.add_argument("--prefix", default="pkgc-slim-bench", help="target names: <prefix>-<package>-<variant>")
    parser.add_argument("--variants", default="default,slim,nobytecode,slim_nobytecode", help=f"of {','.join(VARIANTS)}")
    parser.add_argument("--packages", default="sklearn,iris", help="of sklearn,iris")
    parser.add_argument("--mlflow-docker-mb", type=float, default=1200.0, help="MLflow build-docker's image size for the iris model")
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.variants.split(",")}
    engine = DockerEngine.connect()
    work = Path(tempfile.mkdtemp(prefix="pkgc-bench-slim-"))
    env = dict(os.environ, PKGC_WORKSPACE=str(work / "workspace"))
    example = work / "sklearn"
    shutil.copytree(ROOT / "examples" / "sklearn-regression", example, ignore=shutil.ignore_patterns("*.conda-lock.yml"))
    pkgc(env, "base-image", "build", "debian-bookworm")
    sk_model = pkgc(env, "model", "create", "--name", "bench-sklearn", "--path", str(example / "model")).strip()
    pkgc(env, "environment", "create", "--file", str(example / "environment" / "sklearn-regression-env.yml"))
    iris_path, iris_body = iris_model(work)
    iris = pkgc(env, "model", "create", "--name", "bench-iris", "--path", str(iris_path), "--type", "mlflow_model").strip()
    iris_spec = work / "iris.yml"
    iris_spec.write_text("target_environment: bench-iris\ninferencing_server:\n  type: azureml_online\nmodel_configuration:\n  mode: copy\n")
    packages = {"sklearn": (example / "package-azure-app.yml", sk_model, (example / "sample-request.json").read_bytes()),
                "iris": (iris_spec, iris, iris_body)}  # fmt: skip
    packages = {name: packages[name] for name in args.packages.split(",")}
    repositories = [f"pkgc/{args.prefix}-{name}-{variant}" for name in packages for variant in variants]
    remove_images(engine, repositories)
    figures: dict[str, object] = {}
    images: dict[str, tuple[str, bytes]] = {}
    for name, (spec, model, body) in packages.items():
        pkgc(env, "build", str(spec), "--model", model, "--emit", "plan")  # lock + fetch outside the timings
        for variant, flags in variants.items():
            target = f"{args.prefix}-{name}-{variant}"
            result, seconds = build(env, spec, model, "--target-environment", target, "--no-cache", *flags)
            key = f"{name}_{variant}"
            images[key] = (result["image"], body)
            figures[f"{key}_image_mb"] = round(result["size_bytes"] / 1e6, 1)
            figures[f"{key}_build_s"] = seconds
            if "slim" in variant:
                removed = json.loads(engine.read_file(result["image"], "/opt/pkgc/venv/pkgc-slim.json", 1 << 22) or b"{}")
                figures[f"{key}_removed_mb"] = round(removed.get("removed_bytes", 0) / 1e6, 1)
                figures[f"{key}_removed_distributions"] = ",".join(removed.get("removed_distributions", [])) or "-"
    times: dict[str, list[float]] = {key: [] for key in images}
    for _ in range(args.runs):
        for key, (image, body) in images.items():
            times[key].append(first_score(engine, image, body))
    figures.update({f"{key}_first_200_s": median(values) for key, values in times.items()})
    for key in [k for k in figures if k.startswith("iris_") and k.endswith("slim_image_mb")]:
        figures[key.replace("_image_mb", "_vs_mlflow_build_docker")] = round(figures[key] / args.mlflow_docker_mb, 3)
    figures["mlflow_build_docker_mb_assumed"] = args.mlflow_docker_mb
    figures["load_average_at_end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    report(figures, "slim-")
    remove_images(engine, repositories)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
