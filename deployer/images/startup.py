"""The model server's start-up files and the settings every environment image carries.

As in v1's images, the entry script and the model are not in the image: the container
finds them under `AML_APP_ROOT` and `AZUREML_MODEL_DIR` at start-up (a volume, or an init
container that downloads them), and the entrypoint runs `azmlinfsrv` on them.
"""

from __future__ import annotations

PREFIX = "/opt/aksflight"
SITE_PACKAGES = f"{PREFIX}/python"
SCRIPTS = f"{SITE_PACKAGES}/bin"
ENTRYPOINT = f"{PREFIX}/bin/aksflight-entrypoint"
APP_ROOT = "/var/azureml-app"
MODEL_DIR = f"{APP_ROOT}/azureml-models"
SERVER_PORT = 5001
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SCRIPT_SHEBANG = b"#!/usr/bin/env python3"

ENTRYPOINT_SCRIPT = """\
#!/bin/sh
# Starts the Azure ML inference server on the v1 layout: the entry script and the model are
# provided at start-up below AML_APP_ROOT and AZUREML_MODEL_DIR (not part of the image).
set -eu
: "${AML_APP_ROOT:=/var/azureml-app}"
: "${AZUREML_ENTRY_SCRIPT:=score.py}"
: "${AZUREML_MODEL_DIR:=$AML_APP_ROOT/azureml-models}"
: "${SERVER_PORT:=5001}"
: "${WORKER_COUNT:=1}"
: "${AZUREML_SOURCE_DIRECTORY:=$AML_APP_ROOT}"
: "${HOME:=/tmp}"
export AML_APP_ROOT AZUREML_ENTRY_SCRIPT AZUREML_MODEL_DIR SERVER_PORT WORKER_COUNT
export AZUREML_SOURCE_DIRECTORY HOME
cd "$AML_APP_ROOT"
case "$AZUREML_ENTRY_SCRIPT" in
  /*) script="$AZUREML_ENTRY_SCRIPT" ;;
  *) script="$AML_APP_ROOT/$AZUREML_ENTRY_SCRIPT" ;;
esac
if command -v azmlinfsrv >/dev/null 2>&1; then
  exec azmlinfsrv --entry_script "$script" --port "$SERVER_PORT" \\
    --worker_count "$WORKER_COUNT" "$@"
fi
exec "${AKSFLIGHT_PYTHON:-python3}" -m azureml_inference_server_http.amlserver \\
  --entry_script "$script" --port "$SERVER_PORT" --worker_count "$WORKER_COUNT" "$@"
"""


def image_env(base_env: list[str], has_packages: bool) -> list[str]:
    """The config's Env: the v1 variables, our paths in front of the base image's."""
    inherited = dict(item.split("=", 1) for item in base_env if "=" in item)
    path = inherited.get("PATH", DEFAULT_PATH)
    front = [f"{PREFIX}/bin"]
    ours = {
        "AML_APP_ROOT": APP_ROOT,
        "AZUREML_ENTRY_SCRIPT": "score.py",
        "AZUREML_SOURCE_DIRECTORY": APP_ROOT,
        "AZUREML_MODEL_DIR": MODEL_DIR,
        "SERVER_PORT": str(SERVER_PORT),
        "WORKER_COUNT": "1",
        "SCORING_TIMEOUT_MS": "60000",
        "PYTHONUNBUFFERED": "1",
    }
    if has_packages:
        front.insert(0, SCRIPTS)
        old = inherited.get("PYTHONPATH")
        ours["PYTHONPATH"] = f"{SITE_PACKAGES}:{old}" if old else SITE_PACKAGES
    ours["PATH"] = ":".join([*front, path])
    merged = {**inherited, **ours}
    return [f"{key}={value}" for key, value in merged.items()]
