"""Service keys and access tokens, in the form the router checks them.

Keys: two random strings; either is accepted, so one can be rotated while clients use the
other (v1's `regen_key`). Tokens: ES256 JWTs signed with the service's own key; the router
holds only the public half. `issue_token` returns `(token, refresh_by)` as v1's
`get_access_token()` did: fetch a new one after `refresh_by`, the token stays valid until
twice that far from its issue time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from deployer.errors import DeployConfigError

TOKEN_ISSUER = "aksflight"  # noqa: S105 (the JWT issuer claim, not a secret)
TOKEN_LIFETIME = timedelta(hours=1)
KEY_NAMES = ("primary", "secondary")


def new_key() -> str:
    """32 URL-safe characters (192 random bits), as long as v1's keys."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class SigningKey:
    private_pem: str
    public_pem: str


def new_signing_key() -> SigningKey:
    """A new ES256 key pair, made by the router's own generator (the router verifies it)."""
    from router.auth import generate_signing_key

    return SigningKey(*generate_signing_key())


def issue_token(
    signing_key: SigningKey, service: str, now: datetime | None = None
) -> tuple[str, datetime]:
    issued = now or datetime.now(UTC)
    payload = {
        "iss": TOKEN_ISSUER,
        "aud": service,
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + TOKEN_LIFETIME).timestamp()),
    }
    token = jwt.encode(payload, signing_key.private_pem, algorithm="ES256")
    return token, issued + TOKEN_LIFETIME / 2


def key_name(text: str) -> str:
    """`primary`/`secondary` (any case, as v1's "Primary"/"Secondary")."""
    name = text.lower()
    if name not in KEY_NAMES:
        raise DeployConfigError("key", f"{text!r}: choose primary or secondary")
    return name


def regenerate(keys: tuple[str, str], which: str, value: str | None = None) -> tuple[str, str]:
    """The key pair with one key replaced (by `value`, or a new random key)."""
    from deployer.config import MIN_KEY_LENGTH

    name = key_name(which)
    new = value if value is not None else new_key()
    if len(new) < MIN_KEY_LENGTH or not new.isascii() or not new.isprintable() or " " in new:
        raise DeployConfigError(
            "--value", f"at least {MIN_KEY_LENGTH} printable ASCII characters without spaces"
        )
    primary, secondary = keys
    other = secondary if name == "primary" else primary
    if new == other:
        raise DeployConfigError("--value", "must differ from the other key")
    return (new, secondary) if name == "primary" else (primary, new)
