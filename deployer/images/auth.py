"""Registry credentials and the token challenge flow.

Where credentials come from, per registry host, first match wins:

1. credentials given in code (`Credentials(explicit={host: Credential(...)})`);
2. a docker config file (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
   `auths` entries (`auth` = base64 `user:password`, or `identitytoken`), then
   `credHelpers`/`credsStore` helpers (`docker-credential-NAME get`);
3. for Azure Container Registry hosts (`*.azurecr.io` and the sovereign suffixes, or hosts
   named in `acr_hosts`): a Microsoft Entra access token exchanged at the registry's
   `/oauth2/exchange` for a refresh token, which the token endpoint then accepts;
4. none: anonymous (pulls from public repositories still get a token).

A `401` carrying `WWW-Authenticate: Bearer realm=…,service=…,scope=…` is answered by asking
the realm for a token for the scopes the operation needs (a mount needs pull on the source
repository too); `Basic` challenges get the username and password directly.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deployer.images.errors import RegistryAuthError

ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
ACR_SCOPE = "https://containerregistry.azure.net/.default"
ACR_USERNAME = "00000000-0000-0000-0000-000000000000"
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"|(\w+)=([^\s,]+)')


@dataclass(frozen=True)
class Credential:
    """A username and password, or an identity (refresh) token for the token endpoint."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`; None if neither."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        key = (match[1] or match[3]).lower()
        params[key] = match[2] if match[1] else match[4]
    if scheme.lower() == "bearer" and params.get("realm"):
        return Challenge(
            "bearer", params["realm"], params.get("service", ""), params.get("scope", "")
        )
    if scheme.lower() == "basic":
        return Challenge("basic", params.get("realm", ""))
    return None


def _docker_config_path() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) / "config.json" if folder else Path.home() / ".docker" / "config.json"


def _host_keys(host: str) -> tuple[str, ...]:
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"{host}/v1/")


class Credentials:
    """Finds the credential for a registry host (see the module docstring for the order)."""

    def __init__(
        self,
        explicit: Mapping[str, Credential] | None = None,
        *,
        docker_config: Path | None = None,
        use_docker_config: bool = True,
        entra_token: Callable[[], str] | None = None,
        acr_hosts: Iterable[str] = (),
        tenant: str = "",
    ) -> None:
        self._explicit = dict(explicit or {})
        self._docker_config = docker_config
        self._use_docker_config = use_docker_config
        self._entra_token = entra_token
        self._acr_hosts = frozenset(acr_hosts)
        self.tenant = tenant
        self._config_cache: dict[str, Any] | None = None

    def is_acr(self, host: str) -> bool:
        return host in self._acr_hosts or host.endswith(ACR_SUFFIXES)

    def for_host(self, host: str) -> Credential | None:
        if host in self._explicit:
            return self._explicit[host]
        if self._use_docker_config:
            found = self._from_docker_config(host)
            if found is not None:
                return found
        return None

    def entra_access_token(self) -> str:
        """An Entra token for ACR's exchange: the injected source, else azure-identity."""
        if self._entra_token is not None:
            return self._entra_token()
        try:
            from azure.identity import DefaultAzureCredential

            return str(DefaultAzureCredential().get_token(ACR_SCOPE).token)
        except Exception as exc:  # azure-identity raises many kinds; all mean "no token"
            raise RegistryAuthError(
                f"no Microsoft Entra token for the registry ({type(exc).__name__})"
            ) from exc

    def _load_docker_config(self) -> dict[str, Any]:
        if self._config_cache is None:
            path = self._docker_config or _docker_config_path()
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as exc:
                raise RegistryAuthError(f"{path}: cannot read the docker config ({exc})") from exc
            self._config_cache = data if isinstance(data, dict) else {}
        return self._config_cache

    def _from_docker_config(self, host: str) -> Credential | None:
        config = self._load_docker_config()
        auths = config.get("auths") or {}
        for key in _host_keys(host):
            entry = auths.get(key)
            if isinstance(entry, dict) and (found := _from_auth_entry(entry, host)):
                return found
        helper = (config.get("credHelpers") or {}).get(host) or config.get("credsStore")
        if isinstance(helper, str) and helper:
            return _from_helper(helper, host)
        return None


def _from_auth_entry(entry: Mapping[str, Any], host: str) -> Credential | None:
    if entry.get("identitytoken"):
        return Credential(
            username=str(entry.get("username", "")), identity_token=str(entry["identitytoken"])
        )
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"])).decode()
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryAuthError(
                f"docker config: the auth entry of {host} is not base64"
            ) from exc
        username, sep, password = decoded.partition(":")
        if not sep:
            raise RegistryAuthError(f"docker config: the auth entry of {host} has no ':'")
        return Credential(username, password)
    if entry.get("username"):
        return Credential(str(entry["username"]), str(entry.get("password", "")))
    return None


def _from_helper(helper: str, host: str) -> Credential | None:
    """Ask `docker-credential-<helper> get`; `<token>` as the username means a refresh token."""
    try:
        done = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryAuthError(f"credential helper docker-credential-{helper}: {exc}") from exc
    if done.returncode != 0:
        return None  # the helper knows no credentials for this host
    try:
        answer = json.loads(done.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistryAuthError(f"docker-credential-{helper}: unreadable answer") from exc
    if username == "<token>":
        return Credential(identity_token=secret)
    return Credential(username, secret)


def basic_header(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _token_from(response: httpx.Response, realm: str) -> str:
    try:
        body = response.json()
        token = body.get("token") or body.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryAuthError(f"token endpoint {realm} answered without a token")
    return token


def _refused(response: httpx.Response, what: str) -> RegistryAuthError:
    return RegistryAuthError(
        f"{what} refused the credentials (HTTP {response.status_code})", status=response.status_code
    )


def fetch_token(
    http: httpx.Client,
    challenge: Challenge,
    scopes: Iterable[str],
    credential: Credential | None,
    *,
    host: str,
    credentials: Credentials,
) -> str:
    """A bearer token for `scopes` from the challenge's realm (docker token or OAuth2 flow)."""
    scope_list = sorted(set(scopes) | ({challenge.scope} if challenge.scope else set()))
    refresh = credential.identity_token if credential else ""
    if credential is None and credentials.is_acr(host):
        refresh = acr_refresh_token(http, challenge, host, credentials)
    try:
        if refresh:
            response = http.post(
                challenge.realm,
                data={
                    "grant_type": "refresh_token",
                    "service": challenge.service,
                    "scope": " ".join(scope_list),
                    "refresh_token": refresh,
                    "client_id": "aksflight",
                },
            )
        else:
            params: list[tuple[str, str | int | float | bool | None]] = [
                ("service", challenge.service),
                *(("scope", s) for s in scope_list),
            ]
            headers = {"Authorization": basic_header(credential)} if credential else {}
            response = http.get(challenge.realm, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise RegistryAuthError(
            f"token endpoint {challenge.realm} unreachable ({type(exc).__name__})", temporary=True
        ) from exc
    if response.status_code in (401, 403):
        raise _refused(response, f"token endpoint {challenge.realm}")
    if response.status_code != 200:
        raise RegistryAuthError(
            f"token endpoint {challenge.realm} answered HTTP {response.status_code}",
            status=response.status_code,
            temporary=response.status_code >= 500,
        )
    return _token_from(response, challenge.realm)


def acr_refresh_token(
    http: httpx.Client, challenge: Challenge, host: str, credentials: Credentials
) -> str:
    """ACR's Entra exchange: POST the Entra access token to `/oauth2/exchange`."""
    realm = challenge.realm
    if realm.endswith("/oauth2/token"):
        exchange = realm[: -len("token")] + "exchange"
    else:
        exchange = f"https://{host}/oauth2/exchange"
    form = {
        "grant_type": "access_token",
        "service": challenge.service or host,
        "access_token": credentials.entra_access_token(),
    }
    if credentials.tenant:
        form["tenant"] = credentials.tenant
    try:
        response = http.post(exchange, data=form)
    except httpx.HTTPError as exc:
        raise RegistryAuthError(f"ACR exchange {exchange} unreachable") from exc
    if response.status_code != 200:
        raise _refused(response, f"ACR exchange {exchange}")
    try:
        token = response.json().get("refresh_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise RegistryAuthError(f"ACR exchange {exchange} answered without a refresh token")
    return token
