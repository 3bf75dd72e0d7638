"""Image references (`host[:port]/repository[:tag][@sha256:…]`) and registry locations.

The registry host is always explicit: an environment image is pushed to and looked up in
named registries, so there is no default registry to guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployer.images.errors import ImageConfigError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]{{1,5}})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_REFERENCE = re.compile(
    rf"^(?P<host>{_HOST})/(?P<repository>{_REPOSITORY})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_LOCATION = re.compile(rf"^(?P<host>{_HOST})/(?P<repository>{_REPOSITORY})$")
TAG_PATTERN = re.compile(rf"^{_TAG}$")
DIGEST_PATTERN = re.compile(rf"^{_DIGEST}$")
LOOPBACK_HOSTS = ("localhost", "127.", "[::1]")


def _looks_like_host(text: str) -> bool:
    return "." in text or ":" in text or text == "localhost" or text.startswith("[")


def is_loopback(host: str) -> bool:
    if host.startswith("["):
        return host.startswith("[::1]")
    name = host.rsplit(":", 1)[0]
    return name == "localhost" or name.startswith("127.")


@dataclass(frozen=True, order=True)
class ImageReference:
    """One image: registry host, repository, and a tag and/or a digest."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str, field: str = "image") -> ImageReference:
        text = text.strip()
        head = text.split("/", 1)[0]
        if "/" not in text or not _looks_like_host(head):
            raise ImageConfigError(
                field, f"{text!r}: name the registry host (e.g. myacr.azurecr.io/name:tag)"
            )
        match = _REFERENCE.fullmatch(text)
        if match is None or len(match["repository"]) > 255:
            raise ImageConfigError(field, f"{text!r} is not an image reference")
        if match["tag"] is None and match["digest"] is None:
            return cls(match["host"], match["repository"], "latest")
        return cls(match["host"], match["repository"], match["tag"], match["digest"])

    @property
    def location(self) -> RegistryLocation:
        return RegistryLocation(self.host, self.repository)

    @property
    def manifest_key(self) -> str:
        """What goes after `/manifests/`: the digest when pinned, else the tag."""
        key = self.digest or self.tag
        assert key is not None
        return key

    def with_digest(self, digest: str) -> ImageReference:
        return ImageReference(self.host, self.repository, self.tag, digest)

    def pinned(self) -> str:
        """`host/repository@sha256:…` (requires a digest)."""
        assert self.digest is not None
        return f"{self.host}/{self.repository}@{self.digest}"

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, order=True)
class RegistryLocation:
    """A registry and the repository in it where environment images live."""

    host: str
    repository: str

    @classmethod
    def parse(cls, text: str, field: str = "registry") -> RegistryLocation:
        text = text.strip().rstrip("/")
        head = text.split("/", 1)[0]
        if "/" not in text or not _looks_like_host(head):
            raise ImageConfigError(
                field, f"{text!r}: give HOST/REPOSITORY (e.g. myacr.azurecr.io/environments)"
            )
        match = _LOCATION.fullmatch(text)
        if match is None:
            raise ImageConfigError(field, f"{text!r} is not a registry HOST/REPOSITORY")
        return cls(match["host"], match["repository"])

    def image(self, tag: str | None = None, digest: str | None = None) -> ImageReference:
        return ImageReference(self.host, self.repository, tag, digest)

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}"
