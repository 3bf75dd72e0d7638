"""Configuration, the replica pool and the authenticators, each on its own."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from router.auth import KeyAuthenticator, TokenAuthenticator, TokenIssuer, generate_signing_key
from router.config import KeyAuth, TokenAuth, dump_config, load_config, parse_config
from router.errors import AuthError, ConfigError, NoReplicas, QueueTimeout
from router.pool import ReplicaPool
from tests.router.router_support import run

KEY_A = "a" * 32
KEY_B = "b" * 32


# -- configuration ---------------------------------------------------------------------------


def test_defaults_follow_v1() -> None:
    service = parse_config({"services": [{"name": "iris"}]}).services[0]
    assert service.replica_max_concurrent_requests == 1
    assert service.max_request_wait_time == 500
    assert service.scoring_timeout_ms == 60_000
    assert service.autoscale.target_utilization == 70
    assert service.autoscale.refresh_seconds == 1
    assert (service.autoscale.min_replicas, service.autoscale.max_replicas) == (1, 10)
    assert parse_config({}).max_request_body_bytes == 100 * 1024 * 1024


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"services": [{"name": "Bad_Name"}]}, "services.0.name"),
        (
            {"services": [{"name": "a", "auth": {"mode": "key", "primary_key": "short"}}]},
            "primary_key",
        ),
        ({"services": [{"name": "a", "auth": {"mode": "magic"}}]}, "services.0.auth"),
        ({"services": [{"name": "a", "max_request_wait_time": 0}]}, "max_request_wait_time"),
        ({"services": [{"name": "a"}, {"name": "a"}]}, "duplicate service names: a"),
        (
            {"services": [{"name": "a", "autoscale": {"min_replicas": 5, "max_replicas": 2}}]},
            "min_replicas",
        ),
        ({"services": [{"name": "a", "typo": 1}]}, "services.0.typo"),
        (
            {"services": [{"name": "a", "auth": {"mode": "token", "issuer": "x"}}]},
            "exactly one of public_keys or jwks_url",
        ),
        ({"services": [{"name": "a", "data_collection": {"enabled": True}}]}, "directory"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_key_and_token_auth_cannot_both_be_given() -> None:
    with pytest.raises(ConfigError, match=r"services\.0\.auth"):
        parse_config(
            {
                "services": [
                    {
                        "name": "a",
                        "auth": {
                            "mode": "key",
                            "primary_key": KEY_A,
                            "secondary_key": KEY_B,
                            "issuer": "x",
                        },
                    }
                ]
            }
        )


def test_round_trip_through_json_and_yaml(tmp_path: Path) -> None:
    config = parse_config(
        {
            "services": [{"name": "iris", "replicas": ["http://127.0.0.1:5001"]}],
            "listen": {"port": 1},
        }
    )
    as_json = tmp_path / "router.json"
    as_json.write_text(dump_config(config))
    assert load_config(as_json) == config
    as_yaml = tmp_path / "router.yaml"
    as_yaml.write_text(
        "listen: {port: 1}\nservices:\n  - name: iris\n    replicas: [http://127.0.0.1:5001]\n"
    )
    assert load_config(as_yaml) == config


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("services: [\n")
    with pytest.raises(ConfigError, match="not valid yaml") as caught:
        load_config(broken)
    assert "\n" not in str(caught.value)


# -- the pool --------------------------------------------------------------------------------


def test_pool_prefers_idle_replicas_and_caps_each_at_its_capacity() -> None:
    pool = ReplicaPool(2)
    pool.set_replicas(["a", "b"])
    first, second, third, fourth = (pool.try_acquire() for _ in range(4))
    assert {first.url, second.url} == {"a", "b"}  # type: ignore[union-attr]
    assert third is not None and fourth is not None
    assert pool.try_acquire() is None
    assert pool.load().busy == 2 and pool.load().in_flight == 4


def test_pool_queue_is_fifo_and_times_out() -> None:
    async def scenario() -> None:
        pool = ReplicaPool(1)
        pool.set_replicas(["a"])
        held = pool.try_acquire()
        assert held is not None
        order: list[int] = []

        async def wait(index: int) -> None:
            replica = await pool.acquire(1.0)
            order.append(index)
            await asyncio.sleep(0.01)
            pool.release(replica)

        waiters = [asyncio.ensure_future(wait(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert pool.load().queued == 3
        pool.release(held)
        await asyncio.gather(*waiters)
        assert order == [0, 1, 2]
        again = pool.try_acquire()
        assert again is not None
        with pytest.raises(QueueTimeout):
            await pool.acquire(0.05)
        assert pool.load().queued == 0

    run(scenario())


def test_pool_without_replicas_fails_fast_and_cancelled_waiters_leave_no_slot_behind() -> None:
    async def scenario() -> None:
        pool = ReplicaPool(1)
        with pytest.raises(NoReplicas):
            await pool.acquire(1.0)
        pool.set_replicas(["a"])
        held = pool.try_acquire()
        assert held is not None
        waiter = asyncio.ensure_future(pool.acquire(1.0))
        await asyncio.sleep(0)
        pool.release(held)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert pool.load().in_flight == 0
        assert pool.try_acquire() is not None

    run(scenario())


def test_removed_replica_finishes_its_request_and_gets_no_more() -> None:
    pool = ReplicaPool(1)
    pool.set_replicas(["a", "b"])
    on_a = pool.try_acquire(exclude=frozenset({"b"}))
    assert on_a is not None and on_a.url == "a"
    pool.set_replicas(["b"])
    assert on_a.removed
    pool.release(on_a)
    assert [r.url for r in pool.replicas] == ["b"]
    assert pool.load().in_flight == 0


# -- authentication --------------------------------------------------------------------------


def test_key_auth_accepts_either_key_only_as_bearer() -> None:
    auth = KeyAuthenticator(KeyAuth(primary_key=KEY_A, secondary_key=KEY_B))
    run(auth.check(f"Bearer {KEY_A}"))
    run(auth.check(f"bearer {KEY_B}"))
    for bad in (None, "", KEY_A, f"Basic {KEY_A}", f"Bearer {KEY_A[:-1]}", "Bearer "):
        with pytest.raises(AuthError):
            run(auth.check(bad))


def _token_auth(public_pem: str, **extra: object) -> TokenAuthenticator:
    return TokenAuthenticator(
        TokenAuth(issuer="aksflight", public_keys=[public_pem], **extra), "svc"
    )


def test_token_auth_accepts_either_of_two_signing_keys_during_rotation() -> None:
    old_private, old_public = generate_signing_key()
    new_private, new_public = generate_signing_key()
    auth = TokenAuthenticator(
        TokenAuth(issuer="aksflight", public_keys=[old_public, new_public]), "svc"
    )
    for private in (old_private, new_private):
        token, _ = TokenIssuer(private, "aksflight").issue("svc")
        run(auth.check(f"Bearer {token}"))


def test_token_auth_rejects_hmac_confusion_and_missing_expiry() -> None:
    private, public = generate_signing_key()
    auth = _token_auth(public)
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(
        json.dumps({"iss": "aksflight", "aud": "svc", "exp": 2**40}).encode()
    )
    signature = jwt.utils.base64url_encode(
        hmac.new(public.encode(), header + b"." + body, hashlib.sha256).digest()
    )
    confused = b".".join((header, body, signature)).decode()
    with pytest.raises(AuthError):
        run(auth.check(f"Bearer {confused}"))
    no_expiry = jwt.encode({"iss": "aksflight", "aud": "svc"}, private, algorithm="ES256")
    with pytest.raises(AuthError):
        run(auth.check(f"Bearer {no_expiry}"))
    token, refresh_by = TokenIssuer(private, "aksflight", lifetime=timedelta(minutes=10)).issue(
        "svc", now=datetime.now(UTC)
    )
    assert timedelta(minutes=4) < refresh_by - datetime.now(UTC) <= timedelta(minutes=5)
    run(auth.check(f"Bearer {token}"))


class _Jwks(BaseHTTPRequestHandler):
    body = b"{}"
    fetches = 0

    def do_GET(self) -> None:
        type(self).fetches += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    _Jwks.body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/keys", key
    finally:
        server.shutdown()
        server.server_close()


def test_token_auth_trusts_an_external_issuer_through_its_jwks(
    jwks_server: tuple[str, rsa.RSAPrivateKey],
) -> None:
    url, key = jwks_server
    auth = TokenAuthenticator(TokenAuth(issuer="https://login.example", jwks_url=url), "svc")
    claims = {
        "iss": "https://login.example",
        "aud": "svc",
        "exp": int(datetime.now(UTC).timestamp()) + 600,
    }
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    run(auth.check(f"Bearer {good}"))
    run(auth.check(f"Bearer {good}"))
    assert _Jwks.fetches == 1  # cached
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode(claims, key, algorithm="RS256", headers={"kid": "unknown"}),
        jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"}),
        "not-a-jwt",
    ):
        with pytest.raises(AuthError):
            run(auth.check(f"Bearer {bad}"))
