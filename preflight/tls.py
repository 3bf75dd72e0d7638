"""The TLS probe: a handshake with SNI set to the name, verified against the system trust
store (or the given CA bundle) and the name. The leaf's issuer is always recorded, so a
firewall that inspects TLS shows up as an unexpected issuer."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from preflight._net import describe, network_status
from preflight._streams import SocketStream, open_socket, wrap
from preflight.context import ProbeContext
from rules.model import Check, Observation, ProbeStatus

_TCP_LEVEL = (ProbeStatus.REFUSED, ProbeStatus.UNREACHABLE)


def certificate_evidence(der: bytes | None) -> dict[str, Any]:
    """Issuer, subject, SANs and expiry of a DER certificate (empty when there is none)."""
    if not der:
        return {}
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {"certificate_error": "the peer sent a certificate that does not parse"}
    sans: list[str] = []
    try:
        # By OID: about half the CPU of looking the extension up by class.
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        pass
    else:
        value = names.value
        if isinstance(value, x509.SubjectAlternativeName):
            sans.extend(value.get_values_for_type(x509.DNSName))
            sans.extend(str(ip) for ip in value.get_values_for_type(x509.IPAddress))
    return {
        "issuer": cert.issuer.rfc4514_string(),
        "subject": cert.subject.rfc4514_string(),
        "sans": sans,
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


async def handshake(
    address: str, port: int, server_name: str, tls: ssl.SSLContext, context: ProbeContext
) -> SocketStream:
    """A TLS session on the connection the TCP check left (or a new one)."""
    sock = context.park.take_socket(("tcp", server_name, address, port))
    if sock is None:
        sock = await open_socket(address, port)
    return await wrap(sock, tls, server_name)


def _session_evidence(stream: SocketStream, context: ProbeContext) -> dict[str, Any]:
    """The peer certificate's evidence (parsed once per distinct certificate in a run)
    and the protocol version."""
    ssl_object = stream.ssl_object
    if ssl_object is None:
        return {}
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        evidence: dict[str, Any] = {}
    else:
        known = context.certificates.get(der)
        if known is None:
            known = context.certificates[der] = certificate_evidence(der)
        evidence = {**known}
        if "sans" in known:
            evidence["sans"] = list(known["sans"])
    evidence["tls_version"] = ssl_object.version()
    return evidence


async def _inspect(address: str, port: int, host: str, context: ProbeContext) -> dict[str, Any]:
    """The certificate of a peer that failed verification, fetched without verifying."""
    try:
        sock = await open_socket(address, port)
        stream = await wrap(sock, context.ssl_inspect, host)
    except OSError:
        return {}
    try:
        return _session_evidence(stream, context)
    finally:
        stream.close()


async def probe_tls(check: Check, context: ProbeContext, addresses: Sequence[str]) -> Observation:
    """Handshake with the first address that accepts a connection."""
    assert check.port is not None
    started = context.clock()
    evidence: dict[str, Any] = {"address": None, "issuer": None}
    status, detail = ProbeStatus.ERROR, "no address to connect to"
    try:
        async with asyncio.timeout(context.timeout):
            for address in addresses:
                evidence["address"] = address
                try:
                    stream = await handshake(
                        address, check.port, check.target, context.ssl_verify, context
                    )
                except OSError as exc:
                    status, detail = network_status(exc), describe(exc)
                    if isinstance(exc, ssl.SSLCertVerificationError):
                        evidence["verify_message"] = exc.verify_message
                        evidence.update(await _inspect(address, check.port, check.target, context))
                    if status in _TCP_LEVEL:
                        continue
                    break
                evidence.update(_session_evidence(stream, context))
                if context.continues_after(check):
                    context.park.park(("tls", check.target, address, check.port), stream)
                else:
                    stream.close()
                status, detail = ProbeStatus.OK, ""
                break
    except TimeoutError:
        status, detail = ProbeStatus.TIMEOUT, f"no handshake within {context.timeout:g} s"
    duration_ms = (context.clock() - started) * 1000
    return Observation(check.id, status, duration_ms, detail, evidence)
