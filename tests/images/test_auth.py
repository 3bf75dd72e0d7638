"""The token challenge flow against a registry behind token auth, with each credential
source: a docker config (auth, identity token, credential helper), explicit credentials,
and ACR's Entra exchange; refusals are one-line RegistryAuthErrors."""

from __future__ import annotations

import base64
import json
import stat

import httpx
import pytest

from deployer.images import (
    Credential,
    Credentials,
    ImageReference,
    Registry,
    RegistryAuthError,
)
from deployer.images.auth import parse_challenge
from tests.images.registries import ENTRA_TOKEN, make_base_image, push_base


@pytest.fixture
def pushed(auth_registry, token_server) -> ImageReference:
    token = token_server.issue("alice", ["repository:base/tiny:pull,push"])
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        digest = push_base(client, auth_registry.url(""), "base/tiny", "1", make_base_image())
    return ImageReference.parse(f"{auth_registry.host}/base/tiny:1").with_digest(digest)


def head(make_transport, credentials: Credentials, ref: ImageReference) -> str | None:
    reg = Registry(make_transport(credentials=credentials))
    return reg.head_manifest(ImageReference(ref.host, ref.repository, ref.tag))


def test_the_registry_really_challenges(auth_registry):
    response = httpx.get(auth_registry.url("/v2/base/tiny/manifests/1"))
    assert response.status_code == 401
    challenge = parse_challenge(response.headers["www-authenticate"])
    assert challenge is not None and challenge.scheme == "bearer"
    assert challenge.scope == "repository:base/tiny:pull"


def test_docker_config_auth_entry(pushed, make_transport, token_server, tmp_path):
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"alice:wonderland").decode()
    config.write_text(json.dumps({"auths": {f"https://{pushed.host}": {"auth": auth}}}))
    credentials = Credentials(docker_config=config)
    reg = Registry(make_transport(credentials=credentials))
    ref = ImageReference(pushed.host, pushed.repository, "1")
    assert reg.head_manifest(ref) == pushed.digest
    assert reg.get_manifest(ref).digest == pushed.digest
    token_requests = [r for r in token_server.requests if r[1] == "/oauth2/token"]
    assert len(token_requests) == 1  # one token for the scope, reused
    assert token_requests[0][2]["scope"] == ["repository:base/tiny:pull"]


def test_wrong_password_is_refused_in_one_line(pushed, make_transport):
    credentials = Credentials({pushed.host: Credential("alice", "guess")}, use_docker_config=False)
    with pytest.raises(RegistryAuthError, match=r"refused the credentials \(HTTP 401\)") as caught:
        head(make_transport, credentials, pushed)
    assert "\n" not in str(caught.value)


def test_no_credentials_is_refused(pushed, make_transport):
    with pytest.raises(RegistryAuthError):
        head(make_transport, Credentials(use_docker_config=False), pushed)


def test_identity_token_uses_the_refresh_grant(pushed, make_transport, token_server, tmp_path):
    token_server.refresh_tokens["refresh-123"] = "alice"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {pushed.host: {"identitytoken": "refresh-123"}}}))
    assert head(make_transport, Credentials(docker_config=config), pushed) == pushed.digest
    method, _, form = token_server.requests[-1]
    assert (method, form["grant_type"]) == ("POST", ["refresh_token"])


def test_credential_helper(pushed, make_transport, tmp_path, monkeypatch):
    helper = tmp_path / "bin" / "docker-credential-aksflight-test"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'echo "{\\"ServerURL\\": \\"$host\\", \\"Username\\": \\"alice\\", '
        '\\"Secret\\": \\"wonderland\\"}"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{helper.parent}:/usr/bin:/bin")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credHelpers": {pushed.host: "aksflight-test"}}))
    assert head(make_transport, Credentials(docker_config=config), pushed) == pushed.digest


def test_acr_entra_exchange(pushed, make_transport, token_server):
    credentials = Credentials(
        use_docker_config=False,
        entra_token=lambda: ENTRA_TOKEN,
        acr_hosts=[pushed.host],
        tenant="contoso",
    )
    assert head(make_transport, credentials, pushed) == pushed.digest
    paths = [(method, path) for method, path, _ in token_server.requests]
    assert paths == [("POST", "/oauth2/exchange"), ("POST", "/oauth2/token")]
    exchange_form = token_server.requests[0][2]
    assert exchange_form["tenant"] == ["contoso"]
    assert exchange_form["service"] == ["aksflight-test-registry"]


def test_acr_exchange_refused(pushed, make_transport):
    credentials = Credentials(
        use_docker_config=False, entra_token=lambda: "not-valid", acr_hosts=[pushed.host]
    )
    with pytest.raises(RegistryAuthError, match=r"ACR exchange .* refused"):
        head(make_transport, credentials, pushed)


def test_a_broken_docker_config_names_the_file(pushed, make_transport, tmp_path):
    config = tmp_path / "config.json"
    config.write_text("{not json")
    with pytest.raises(RegistryAuthError, match=r"config\.json: cannot read the docker config"):
        head(make_transport, Credentials(docker_config=config), pushed)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://r/token",service="s",scope="repository:a:pull"',
            ("bearer", "https://r/token", "s", "repository:a:pull"),
        ),
        ('Basic realm="Registry Realm"', ("basic", "Registry Realm", "", "")),
        ("Negotiate", None),
        ("Bearer service=s", None),
    ],
)
def test_parse_challenge(header, expected):
    found = parse_challenge(header)
    assert (found and (found.scheme, found.realm, found.service, found.scope)) == expected
