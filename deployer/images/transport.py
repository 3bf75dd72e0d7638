"""Talking to registries: one httpx client, the auth challenge, retries with backoff.

Temporary failures (connection errors, timeouts, 429 and 5xx) are retried with exponential
backoff; the sleep is injectable so tests do not wait. A 401 is answered once with a token
(or basic credentials); a second 401 or a 403 is `RegistryAuthError`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from deployer.images.auth import Challenge, Credentials, basic_header, fetch_token, parse_challenge
from deployer.images.errors import RegistryAuthError, RegistryError
from deployer.images.reference import is_loopback

TEMPORARY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits `base`, 2×base, … up to `cap` seconds between them."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap, self.base * (2**attempt)))


def error_code(response: httpx.Response) -> str:
    """The first OCI error code of a response body (`MANIFEST_UNKNOWN`, …), or ''."""
    try:
        errors = response.json().get("errors") or []
        return str(errors[0].get("code", "")) if errors else ""
    except (ValueError, AttributeError, IndexError, TypeError, httpx.ResponseNotRead):
        return ""


def _path_only(path: str) -> str:
    return path.partition("?")[0]


def scope_for(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"


class RegistryTransport:
    """Sends requests to registries with auth and retries; counts what it sent."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        plain_http: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 60.0,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._plain_http = frozenset(plain_http)
        self.http = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True
        )
        self._challenges: dict[str, Challenge | None] = {}
        self._tokens: dict[tuple[str, frozenset[str]], str] = {}
        self.requests_sent = 0
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RegistryTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def base_url(self, host: str) -> str:
        scheme = "http" if host in self._plain_http or is_loopback(host) else "https"
        return f"{scheme}://{host}"

    def url(self, host: str, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url(host) + path

    def _auth_header(self, host: str, scopes: frozenset[str]) -> str | None:
        challenge = self._challenges.get(host)
        if challenge is None:
            return None
        credential = self.credentials.for_host(host)
        if challenge.scheme == "basic":
            if credential is None or not credential.username:
                raise RegistryAuthError(f"{host} asks for a username and password; none found")
            return basic_header(credential)
        key = (host, scopes)
        if key not in self._tokens:
            self._tokens[key] = fetch_token(
                self.http, challenge, scopes, credential, host=host, credentials=self.credentials
            )
        return f"Bearer {self._tokens[key]}"

    def _learn_challenge(self, host: str, response: httpx.Response) -> bool:
        """Record a 401's challenge; False when it brings nothing new to try."""
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        if challenge is None:
            raise RegistryAuthError(f"{host} answered 401 without a usable challenge", status=401)
        known = self._challenges.get(host)
        self._challenges[host] = challenge
        return known != challenge

    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        scopes: Iterable[str],
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        stream: bool = False,
        retry: bool = True,
    ) -> httpx.Response:
        """One request, authenticated and retried; the caller checks the status (and closes a
        streamed response). Retries stop at the policy's attempts; the last answer is returned,
        a transport error after the last attempt becomes `RegistryError(temporary=True)`."""
        scope_set = frozenset(scopes)
        attempt = 0
        reauthenticated = False
        while True:
            send_headers = dict(headers or {})
            auth = self._auth_header(host, scope_set)
            if auth:
                send_headers["Authorization"] = auth
            request = self.http.build_request(
                method, self.url(host, path), headers=send_headers, content=content
            )
            self.requests_sent += 1
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not retry or attempt + 1 >= self.retry.attempts:
                    raise RegistryError(
                        f"{host}: {method} {_path_only(path)} failed ({type(exc).__name__})",
                        temporary=True,
                    ) from exc
                self._backoff(attempt)
                attempt += 1
                continue
            if response.status_code == 401 and not reauthenticated:
                response.close()
                self._tokens.pop((host, scope_set), None)
                if not self._learn_challenge(host, response) and auth:
                    raise RegistryAuthError(f"{host} refused the credentials", status=401)
                reauthenticated = True
                continue
            if response.status_code in (401, 403):
                response.close()
                raise RegistryAuthError(
                    f"{host} refused access to {_path_only(path)} (HTTP {response.status_code})",
                    status=response.status_code,
                )
            if (
                response.status_code in TEMPORARY_STATUSES
                and retry
                and attempt + 1 < self.retry.attempts
            ):
                response.close()
                self._backoff(attempt)
                attempt += 1
                continue
            return response

    def _backoff(self, attempt: int) -> None:
        self.retries += 1
        self.sleep(self.retry.delay(attempt))


def fail(response: httpx.Response, what: str, cls: type[RegistryError] = RegistryError) -> Any:
    """Raise the registry's answer as one line: what failed, the status and the OCI code."""
    if not response.is_closed:
        with contextlib.suppress(httpx.HTTPError):
            response.read()
    code = error_code(response)
    suffix = f" {code}" if code else ""
    raise cls(
        f"{what}: HTTP {response.status_code}{suffix}",
        status=response.status_code,
        code=code,
        temporary=response.status_code in TEMPORARY_STATUSES,
    )
