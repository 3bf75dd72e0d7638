"""Train the example model: a logistic regression on the iris data set, saved with joblib.

    python train.py OUTPUT_DIR      writes OUTPUT_DIR/model.joblib (about 1 KB)

Run it with the interpreter that will serve the model, so scikit-learn's versions match.
"""

import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def main() -> None:
    output = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    output.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    joblib.dump(model, output / "model.joblib")
    print(output / "model.joblib")


if __name__ == "__main__":
    main()
