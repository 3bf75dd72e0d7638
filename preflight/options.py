"""What a preflight run may vary: where to ask, how long to wait, whom to trust, and the
I/O seams tests replace with fakes. Options are checked when built, so a run never starts
with input it would fail on half-way."""

from __future__ import annotations

import ipaddress
import math
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from preflight.errors import OptionsError
from rules.names import check_label

if TYPE_CHECKING:
    import dns.asyncresolver
    import httpx

DEFAULT_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 64
# azureml-fe, the v1 router, is installed into this namespace.
DEFAULT_NAMESPACE = "azureml"
PROXY_SCHEMES = ("http", "https")

ResolverFactory = Callable[["ProbeOptions"], "dns.asyncresolver.Resolver"]
# Returns a `kubernetes.aio.client.ApiClient` (untyped library), or None to skip.
KubeClientFactory = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Nameserver:
    address: str
    port: int = 53

    def __str__(self) -> str:
        if self.port == 53:
            return self.address
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse_nameserver(value: str) -> Nameserver:
    """`ip`, `ip:port` or `[ipv6]:port` → a `Nameserver`; OptionsError when it is none."""
    text = value.strip()
    where = f"nameserver {value!r}"
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise OptionsError(where, "write an IPv6 address with a port as [addr]:port")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise OptionsError(where, "not an IP address (use ip or ip:port)") from None
    port = 53
    if port_text or text.endswith(":"):
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise OptionsError(where, "the port must be a number from 1 to 65535")
        port = int(port_text)
    return Nameserver(str(address), port)


def _check_proxy(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in PROXY_SCHEMES or "//" not in url:
        raise OptionsError(
            "proxy", f"{url!r} needs a scheme: http://host:port or https://host:port"
        )
    try:
        _ = parts.port
    except ValueError:
        raise OptionsError("proxy", f"{url!r} has a bad port") from None
    if not parts.hostname:
        raise OptionsError("proxy", f"{url!r} names no host")
    return url


def _check_ca_bundle(path: Path) -> Path:
    """A readable PEM file OpenSSL accepts (loaded once here so a bad file fails early)."""
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        if isinstance(exc, ssl.SSLError) or not exc.strerror:
            reason = "no PEM certificate"
        else:
            reason = exc.strerror
        raise OptionsError("ca_bundle", f"cannot use {str(path)!r}: {reason}") from exc
    return path


def _check_readable(option: str, path: Path) -> Path:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise OptionsError(option, f"cannot read {str(path)!r}: {exc.strerror}") from exc
    return path


@dataclass(frozen=True)
class ProbeOptions:
    """How to probe. Seams: `resolver_factory`, `http_transport`, `kube_client_factory`,
    `clock` and `environ` (for proxy variables) default to the real thing."""

    nameservers: Sequence[str] = ()
    timeout: float = DEFAULT_TIMEOUT
    ca_bundle: str | Path | None = None
    proxy: str | None = None
    kubeconfig: str | Path | None = None
    context: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    concurrency: int = DEFAULT_CONCURRENCY
    resolver_factory: ResolverFactory | None = None
    http_transport: httpx.AsyncBaseTransport | None = None
    kube_client_factory: KubeClientFactory | None = None
    clock: Callable[[], float] = time.perf_counter
    environ: Mapping[str, str] | None = None
    nameserver_endpoints: tuple[Nameserver, ...] = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.nameservers, str):
            raise OptionsError("nameservers", "give a list of addresses, not one string")
        set_ = object.__setattr__
        set_(self, "nameserver_endpoints", tuple(parse_nameserver(n) for n in self.nameservers))
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not math.isfinite(self.timeout)
            or not 0 < self.timeout <= 300
        ):
            raise OptionsError(
                "timeout", f"{self.timeout!r} is not a number of seconds in (0, 300]"
            )
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or not 1 <= self.concurrency <= 10_000
        ):
            raise OptionsError("concurrency", f"{self.concurrency!r} is not a whole number 1-10000")
        if self.ca_bundle is not None:
            set_(self, "ca_bundle", _check_ca_bundle(Path(self.ca_bundle)))
        if self.proxy is not None:
            _check_proxy(self.proxy)
        if self.kubeconfig is not None:
            set_(self, "kubeconfig", _check_readable("kubeconfig", Path(self.kubeconfig)))
        problem = check_label(self.namespace)
        if problem:
            raise OptionsError("namespace", f"{self.namespace!r}: {problem}")

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ
