"""End to end: the real Azure ML inference server with a real scikit-learn model, behind the router.

The model server runs from its own virtual environment (AKSFLIGHT_MODELSERVER_VENV, else
`<repo>/.venv-modelserver`); the router runs as `python -m router --config FILE`, so its memory
can be measured from the outside while 100 MB + 1 byte bodies are rejected.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from router.auth import TokenIssuer, generate_signing_key
from router.server import start_process, wait_until_ready
from tests.conftest import modelserver_venv
from tests.router.router_support import free_port

pytestmark = [pytest.mark.modelserver, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LIMIT = 100 * 1024 * 1024
PRIMARY = "primary-key-0123456789abcdef"
SECONDARY = "secondary-key-0123456789abcdef"
ROTATED = "rotated-primary-0123456789abcdef"

SCORE_PY = """
import json
import os

import joblib

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(raw_data):
    data = json.loads(raw_data)["data"]
    return {"predictions": model.predict(data).tolist()}
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    venv = modelserver_venv()
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("modelserver")
    features, labels = load_iris(return_X_y=True)
    model_dir = root / "model"
    model_dir.mkdir()
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), model_dir / "model.joblib")
    app_root = root / "app"
    app_root.mkdir()
    (app_root / "score.py").write_text(SCORE_PY)
    home = root / "home"
    home.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "AZUREML_MODEL_DIR": str(model_dir),
        "AZUREML_ENTRY_SCRIPT": "score.py",
        "AML_APP_ROOT": str(app_root),
    }
    env.pop("VIRTUAL_ENV", None)
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [str(venv / "bin" / "azmlinfsrv"), "--entry_script", "score.py", "--port", str(port)],
        cwd=app_root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (root / "server.log").read_text()
            try:
                if httpx.get(url + "/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("model server did not start")
        yield url
    finally:
        _stop(process)
        log.close()


def _write_config(path: Path, port: int, replica: str, primary: str, public_key: str) -> None:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "reload_seconds": 0.1,
        "access_log": {"enabled": True, "path": str(path.parent / "access.log")},
        "services": [
            {
                "name": "iris",
                "replicas": [replica],
                "auth": {"mode": "key", "primary_key": primary, "secondary_key": SECONDARY},
            },
            {
                "name": "iris-token",
                "replicas": [replica],
                "auth": {"mode": "token", "issuer": "aksflight", "public_keys": [public_key]},
            },
        ],
    }
    staged = path.with_suffix(".tmp")
    staged.write_text(json.dumps(config))
    staged.replace(path)


@pytest.fixture(scope="module")
def signing_key() -> tuple[str, str]:
    return generate_signing_key()


@pytest.fixture(scope="module")
def routed(
    model_server: str, tmp_path_factory: pytest.TempPathFactory, signing_key: tuple[str, str]
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    root = tmp_path_factory.mktemp("router")
    config = root / "router.json"
    port = free_port()
    _write_config(config, port, model_server, PRIMARY, signing_key[1])
    errors = (root / "router.err").open("wb")
    process = start_process(config, python=sys.executable, stdout=errors, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout=20)
        yield url, config, process
    finally:
        _stop(process)
        errors.close()


IRIS = {"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}


def _score(url: str, service: str, credential: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    return httpx.post(
        f"{url}/api/v1/service/{service}/score", json=IRIS, headers=headers, timeout=30
    )


def test_key_auth_both_keys_and_rotation_without_interruption(
    routed: tuple[str, Path, subprocess.Popen[bytes]],
    model_server: str,
    signing_key: tuple[str, str],
) -> None:
    url, config, _ = routed
    first = _score(url, "iris", PRIMARY)
    assert first.status_code == 200, first.text
    assert first.json() == {"predictions": [0, 2]}
    assert first.headers["x-ms-request-id"]
    assert _score(url, "iris", SECONDARY).json() == {"predictions": [0, 2]}
    for credential in (None, "wrong-key-0123456789", PRIMARY + "x"):
        rejected = _score(url, "iris", credential)
        assert rejected.status_code == 401
        assert rejected.headers["WWW-Authenticate"].startswith("Bearer")
        assert rejected.text == "Unauthorized"

    _write_config(config, int(url.rsplit(":", 1)[1]), model_server, ROTATED, signing_key[1])
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        statuses.append(_score(url, "iris", SECONDARY).status_code)
        if _score(url, "iris", PRIMARY).status_code == 401:
            break
    assert set(statuses) == {200}, "a client using the secondary key saw a failure"
    assert _score(url, "iris", PRIMARY).status_code == 401
    assert _score(url, "iris", ROTATED).json() == {"predictions": [0, 2]}
    assert _score(url, "iris", SECONDARY).status_code == 200

    access = [json.loads(line) for line in (config.parent / "access.log").read_text().splitlines()]
    assert {"request_id", "service", "replica", "status", "latency_ms", "bytes_out"} <= set(
        access[0]
    )
    assert any(entry["status"] == 401 for entry in access)
    assert any(entry["replica"] == model_server and entry["status"] == 200 for entry in access)


def test_token_auth_accepts_issued_tokens_and_rejects_bad_ones(
    routed: tuple[str, Path, subprocess.Popen[bytes]], signing_key: tuple[str, str]
) -> None:
    url = routed[0]
    private, _ = signing_key
    issuer = TokenIssuer(private, "aksflight")
    token, refresh_by = issuer.issue("iris-token")
    assert datetime.now(UTC) < refresh_by < datetime.now(UTC) + timedelta(hours=1)
    assert _score(url, "iris-token", token).json() == {"predictions": [0, 2]}

    expired, _ = issuer.issue("iris-token", now=datetime.now(UTC) - timedelta(hours=2))
    other_audience, _ = issuer.issue("iris")
    other_issuer, _ = TokenIssuer(private, "someone-else").issue("iris-token")
    stranger, _ = TokenIssuer(generate_signing_key()[0], "aksflight").issue("iris-token")
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({**claims, "aud": "iris-token", "exp": claims["exp"] + 86400}).encode()
    ).decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    for bad in (expired, other_audience, other_issuer, stranger, tampered, unsigned, "x.y.z"):
        answer = _score(url, "iris-token", bad)
        assert answer.status_code == 401, bad
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert _score(url, "iris-token", None).status_code == 401
    assert _score(url, "iris-token", PRIMARY).status_code == 401


def test_swagger_is_passed_through(
    routed: tuple[str, Path, subprocess.Popen[bytes]], model_server: str
) -> None:
    url = routed[0]
    through = httpx.get(
        f"{url}/api/v1/service/iris/swagger.json?version=2",
        headers={"Authorization": f"Bearer {SECONDARY}"},
        timeout=10,
    )
    direct = httpx.get(f"{model_server}/swagger.json?version=2", timeout=10)
    assert through.status_code == direct.status_code
    assert through.content == direct.content
    assert httpx.get(f"{url}/api/v1/service/iris/swagger.json", timeout=10).status_code == 401


def test_over_100_mb_is_413_and_router_memory_stays_flat(
    routed: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    url, _, process = routed
    key = {"Authorization": f"Bearer {SECONDARY}"}
    _score(url, "iris", SECONDARY)
    before = _rss_kib(process.pid)
    score = f"{url}/api/v1/service/iris/score"

    declared = httpx.post(
        score,
        content=_chunks(LIMIT + 1),
        headers={**key, "Content-Length": str(LIMIT + 1)},
        timeout=60,
    )
    assert declared.status_code == 413

    def streamed() -> Iterator[bytes]:
        yield from _chunks(LIMIT + 1)

    try:
        chunked = httpx.post(score, content=streamed(), headers=key, timeout=60)
        assert chunked.status_code == 413
    except httpx.RemoteProtocolError:
        pytest.fail("the router closed the connection without a 413")
    after = _rss_kib(process.pid)
    assert after - before < 30 * 1024, f"router RSS grew from {before} KiB to {after} KiB"
    assert _score(url, "iris", SECONDARY).status_code == 200


def _chunks(total: int, size: int = 1024 * 1024) -> Iterator[bytes]:
    block = b"0" * size
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece
