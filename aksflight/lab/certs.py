"""Certificates for the lab's TLS endpoints, made with trustme.

The lab CA is what clients are told to trust (its PEM is the state dir's CA bundle); hosts
with `ca="other"` get a certificate from a second CA that nobody trusts, which is what a
TLS-inspecting firewall or a wrong endpoint looks like to a client.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme

from aksflight.lab.errors import LabError
from aksflight.lab.spec import LabSpec, privatelink_name

LAB_CA_ORGANISATION = "aksflight lab CA"
OTHER_CA_ORGANISATION = "aksflight untrusted CA"


@dataclass(frozen=True, slots=True)
class IssuedCertificates:
    """Paths written: the trusted bundle, the untrusted CA, and one key+chain PEM per host."""

    ca_bundle: Path
    other_ca: Path
    host_pems: dict[str, Path]


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def issue_certificates(spec: LabSpec, directory: Path) -> IssuedCertificates:
    """Write the CA bundle and a certificate for every HTTPS host (its privatelink name too)."""
    lab_ca = trustme.CA(organization_name=LAB_CA_ORGANISATION)
    other_ca = trustme.CA(organization_name=OTHER_CA_ORGANISATION)
    certs_dir = directory / "certs"
    try:
        certs_dir.mkdir(parents=True, exist_ok=True)
        ca_bundle = directory / "ca.pem"
        other_ca_path = directory / "other-ca.pem"
        lab_ca.cert_pem.write_to_path(ca_bundle)
        other_ca.cert_pem.write_to_path(other_ca_path)
        host_pems: dict[str, Path] = {}
        for host in spec.hosts:
            names = [host.name]
            if host.privatelink:
                names.append(privatelink_name(host.name))
            issuer = other_ca if host.ca == "other" else lab_ca
            leaf = issuer.issue_cert(*names)
            path = certs_dir / f"{host.name}.pem"
            _write_private(path, leaf.private_key_and_cert_chain_pem.bytes())
            host_pems[host.name] = path
    except OSError as exc:
        raise LabError(f"cannot write certificates under {directory}: {exc.strerror}") from exc
    return IssuedCertificates(ca_bundle=ca_bundle, other_ca=other_ca_path, host_pems=host_pems)
