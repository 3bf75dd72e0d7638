"""Per-service authentication: v1 keys, JWTs from the deployer's key or an OIDC issuer's JWKS.

Every failure raises AuthError with a reason for the log; the client only ever sees one 401.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from router.config import AuthConfig, KeyAuth, NoAuth, TokenAuth
from router.errors import AuthError, ConfigError


class Authenticator(Protocol):
    """Checks the credential in a request's Authorization header.

    `check` returns until when (wall-clock seconds) the credential stays valid: infinity for
    keys, the expiry (plus leeway) for tokens. The router caches the answer per connection.
    """

    async def check(self, authorization: str | None) -> float: ...


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("no Authorization header")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthError("Authorization is not a Bearer credential")
    return credential.strip()


class AllowAll:
    async def check(self, authorization: str | None) -> float:
        return math.inf


class KeyAuthenticator:
    """Accepts either key; both are always compared so timing says nothing about which."""

    def __init__(self, config: KeyAuth) -> None:
        self._keys = (config.primary_key.encode(), config.secondary_key.encode())

    async def check(self, authorization: str | None) -> float:
        presented = _bearer(authorization).encode()
        matches = [hmac.compare_digest(presented, key) for key in self._keys]
        if not any(matches):
            raise AuthError("key matches neither the primary nor the secondary key")
        return math.inf


class _JwksKeys:
    """Signing keys of an external issuer, fetched off the event loop and cached by kid."""

    def __init__(self, url: str, lifespan: float = 300.0) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=True, lifespan=int(lifespan), timeout=5)
        self._lifespan = lifespan
        self._keys: dict[str, tuple[float, Any]] = {}

    async def key_for(self, token: str) -> Any:
        """A known kid is answered from memory; only a new one costs a thread (and a fetch)."""
        try:
            kid = str(jwt.get_unverified_header(token).get("kid"))
        except jwt.DecodeError as exc:
            raise AuthError(f"token header unreadable: {exc}") from exc
        cached = self._keys.get(kid)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._lifespan:
            return cached[1]
        try:
            signing_key = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"no signing key for the token: {exc}") from exc
        except jwt.DecodeError as exc:
            raise AuthError(f"token header unreadable: {exc}") from exc
        self._keys[kid] = (now, signing_key.key)
        return signing_key.key


class TokenAuthenticator:
    """Verifies signature, expiry, issuer and audience; `alg: none` is never in the allow-list."""

    def __init__(self, config: TokenAuth, service: str) -> None:
        self._config = config
        self._audience = config.audience or service
        self._algorithms = list(config.algorithms)
        self._jwks = _JwksKeys(config.jwks_url) if config.jwks_url else None
        self._public_keys = [_load_public_key(pem) for pem in config.public_keys]

    async def check(self, authorization: str | None) -> float:
        token = _bearer(authorization)
        keys = [await self._jwks.key_for(token)] if self._jwks else self._public_keys
        last_error: Exception | None = None
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=self._algorithms,
                    audience=self._audience,
                    issuer=self._config.issuer,
                    leeway=self._config.leeway_seconds,
                    options={"require": ["exp", "aud", "iss"]},
                )
            except jwt.InvalidSignatureError as exc:
                last_error = exc
                continue
            except jwt.PyJWTError as exc:
                raise AuthError(f"token rejected: {exc}") from exc
            return float(claims["exp"]) + self._config.leeway_seconds
        raise AuthError(f"token rejected: {last_error}") from last_error


def _load_public_key(pem: str) -> Any:
    try:
        return serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ConfigError(f"auth.public_keys: not a PEM public key: {exc}") from exc


def build_authenticator(config: AuthConfig, service: str) -> Authenticator:
    if isinstance(config, KeyAuth):
        return KeyAuthenticator(config)
    if isinstance(config, TokenAuth):
        return TokenAuthenticator(config, service)
    assert isinstance(config, NoAuth)
    return AllowAll()


def generate_signing_key() -> tuple[str, str]:
    """A new ES256 key pair as (private PEM, public PEM), for the deployer's token issuer."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


class TokenIssuer:
    """Issues v1-style access tokens: `issue(service)` returns `(token, refresh_by)`.

    The token stays valid for `lifetime`; clients should fetch a new one after `refresh_by`
    (half the lifetime), which leaves slack for clock skew and slow clients, as v1 did.
    """

    def __init__(
        self,
        private_key_pem: str,
        issuer: str,
        lifetime: timedelta = timedelta(hours=1),
        algorithm: str = "ES256",
    ) -> None:
        self._key = private_key_pem
        self._issuer = issuer
        self._lifetime = lifetime
        self._algorithm = algorithm

    def issue(
        self, service: str, now: datetime | None = None, claims: Mapping[str, Any] | None = None
    ) -> tuple[str, datetime]:
        issued = now or datetime.now(UTC)
        payload = {
            **(claims or {}),
            "iss": self._issuer,
            "aud": service,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int((issued + self._lifetime).timestamp()),
        }
        token = jwt.encode(payload, self._key, algorithm=self._algorithm)
        return token, issued + self._lifetime / 2
