"""The built image's entrypoint starts the real model server on the v1 layout.

No container runtime here, so the image's layers are unpacked into a directory and the
entrypoint runs with the config's Env, its absolute paths moved into that directory; the
model server's own virtual environment stands in for the base image's Python. The entry
script imports a package that only the image's requirements layer provides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from deployer.images import ImageEnvironment, ImageReference, RegistryLocation, ensure_image
from deployer.images.startup import ENTRYPOINT
from tests.conftest import modelserver_venv
from tests.images.registries import free_port, unpack_layers
from tests.images.test_ensure import fetch

pytestmark = [pytest.mark.modelserver, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCORE_PY = """
import json
import six

def init():
    pass

def run(raw_data):
    return {"six": six.__file__, "echo": json.loads(raw_data)}
"""


def test_the_entrypoint_serves_the_entry_script(registry, base, pip_args, make_transport, tmp_path):
    venv = modelserver_venv()
    env = ImageEnvironment(
        ImageReference.parse(base.reference), ("six==1.17.0",), model_server="bundled"
    )
    result = ensure_image(
        env, RegistryLocation(registry.host, "envs"), transport=make_transport(), pip_args=pip_args
    )
    _, layers, config = fetch(registry, "envs", result.reference.digest)
    root = tmp_path / "rootfs"
    unpack_layers(layers, root)
    app = tmp_path / "app"
    (app / "azureml-models").mkdir(parents=True)
    (app / "score.py").write_text(SCORE_PY)
    port = free_port()
    variables = {}
    for item in config["config"]["Env"]:
        key, _, value = item.partition("=")
        variables[key] = value.replace("/opt/aksflight", f"{root}/opt/aksflight")
    variables.update(
        AML_APP_ROOT=str(app),
        AZUREML_MODEL_DIR=str(app / "azureml-models"),
        SERVER_PORT=str(port),
        HOME=str(tmp_path / "home"),
    )
    variables["PATH"] = f"{variables['PATH']}:{venv / 'bin'}"
    entrypoint = root / config["config"]["Entrypoint"][0].lstrip("/")
    assert entrypoint == root / ENTRYPOINT.lstrip("/")
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [str(entrypoint)],
        env=variables,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.post(f"http://127.0.0.1:{port}/score", json={"data": [1, 2]}, timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["echo"] == {"data": [1, 2]}
        assert body["six"].startswith(f"{root}/opt/aksflight/python/")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
