"""Entry script in the Azure ML v1 style: `init()` loads the model once, `run()` scores.

The model server sets AZUREML_MODEL_DIR to the directory holding the deployed model.
"""

import json
import os

import joblib

model = None


def init():
    global model  # noqa: PLW0603 (the v1 entry-script idiom)
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(raw_data):
    data = json.loads(raw_data)["data"]
    return {"predictions": model.predict(data).tolist()}
