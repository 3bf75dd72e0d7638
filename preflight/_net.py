"""Shared pieces of the network probes: translating exceptions into the status vocabulary
by their type (and errno), and small address helpers."""

from __future__ import annotations

import errno
import ssl
from collections.abc import Iterator, Mapping

from rules.model import ProbeStatus

# OpenSSL verify codes that mean "the certificate is fine, but not for this name".
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64
_NAME_MISMATCH = (X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH)

_ERRNO_STATUS: Mapping[int, ProbeStatus] = {
    errno.ECONNREFUSED: ProbeStatus.REFUSED,
    errno.ETIMEDOUT: ProbeStatus.TIMEOUT,
    errno.EHOSTUNREACH: ProbeStatus.UNREACHABLE,
    errno.ENETUNREACH: ProbeStatus.UNREACHABLE,
    errno.EHOSTDOWN: ProbeStatus.UNREACHABLE,
    # A local firewall rejecting the packet (nftables in OUTPUT) reports EPERM/EACCES.
    errno.EPERM: ProbeStatus.UNREACHABLE,
    errno.EACCES: ProbeStatus.UNREACHABLE,
    errno.EADDRNOTAVAIL: ProbeStatus.UNREACHABLE,
}


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it, depth first through exception groups (libraries wrap
    the socket error that tells what happened in one or two layers of their own)."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested: list[BaseException] = []
        if isinstance(current, BaseExceptionGroup):
            nested.extend(current.exceptions)
        cause = current.__cause__ or current.__context__
        if cause is not None:
            nested.append(cause)
        stack.extend(reversed(nested))


def network_status(exc: BaseException) -> ProbeStatus:
    """The status a connection or handshake failure stands for, by exception type."""
    for current in exception_chain(exc):
        if isinstance(current, ssl.SSLCertVerificationError):
            if current.verify_code in _NAME_MISMATCH:
                return ProbeStatus.HOSTNAME_MISMATCH
            return ProbeStatus.UNTRUSTED
        if isinstance(current, ssl.SSLError):
            return ProbeStatus.TLS_ERROR
        if isinstance(current, ConnectionRefusedError):
            return ProbeStatus.REFUSED
        if isinstance(current, TimeoutError):
            return ProbeStatus.TIMEOUT
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return ProbeStatus.TLS_ERROR if _in_tls(exc) else ProbeStatus.ERROR
        code = current.errno if isinstance(current, OSError) else None
        if code is not None and code in _ERRNO_STATUS:
            return _ERRNO_STATUS[code]
    return ProbeStatus.ERROR


def _in_tls(exc: BaseException) -> bool:
    return any(isinstance(e, ssl.SSLError) for e in exception_chain(exc))


def describe(exc: BaseException) -> str:
    """One line naming the innermost informative error (for `Observation.detail`)."""
    parts = []
    for current in exception_chain(exc):
        text = str(current).strip().splitlines()[0] if str(current).strip() else ""
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
    return parts[-1] if parts else type(exc).__name__


def host_port(address: str, port: int) -> str:
    """`addr:port`, bracketing IPv6 addresses."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
