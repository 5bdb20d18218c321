"""Train the example's regression model (scikit-learn's bundled diabetes data; no download).

Usage: python train.py [OUTPUT_FOLDER]   (default: ./model)
"""

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge


def train(output: Path, alpha: float = 1.0) -> Path:
    X, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=alpha).fit(X, y)
    output.mkdir(parents=True, exist_ok=True)
    path = output / "sklearn_regression_model.pkl"
    joblib.dump(model, path)
    return path


if __name__ == "__main__":
    print(train(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "model"))
