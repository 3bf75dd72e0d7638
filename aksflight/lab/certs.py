"""Certificates for the lab's TLS endpoints, made with trustme.

The lab CA is what clients are told to trust (its PEM is the state dir's CA bundle); hosts
with `ca="other"` get a certificate from a second CA that nobody trusts, which is what a
TLS-inspecting firewall or a wrong endpoint looks like to a client. `up` creates only the two
CAs; each endpoint worker issues the leaf certificates of its own hosts, so for a large lab
that work is spread over the workers instead of serialised in `up`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme

from aksflight.lab.errors import LabError

LAB_CA_ORGANISATION = "aksflight lab CA"
OTHER_CA_ORGANISATION = "aksflight untrusted CA"


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA on disk: its certificate (what a client trusts) and its private key."""

    cert: Path
    key: Path

    def load(self) -> trustme.CA:
        return trustme.CA.from_pem(self.cert.read_bytes(), self.key.read_bytes())


@dataclass(frozen=True, slots=True)
class Authorities:
    """The trusted lab CA and the untrusted one."""

    lab: Authority
    other: Authority


def write_private(path: Path, data: bytes) -> None:
    """Write key material readable by root only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def create_authorities(directory: Path) -> Authorities:
    """Make both CAs; `ca.pem` is the bundle clients use, `other-ca.pem` the untrusted CA."""
    authorities = Authorities(
        lab=Authority(directory / "ca.pem", directory / "ca-key.pem"),
        other=Authority(directory / "other-ca.pem", directory / "other-ca-key.pem"),
    )
    try:
        for authority, organisation in (
            (authorities.lab, LAB_CA_ORGANISATION),
            (authorities.other, OTHER_CA_ORGANISATION),
        ):
            ca = trustme.CA(organization_name=organisation)
            ca.cert_pem.write_to_path(authority.cert)
            write_private(authority.key, ca.private_key_pem.bytes())
    except OSError as exc:
        raise LabError(f"cannot write certificates under {directory}: {exc.strerror}") from exc
    return authorities


def issue_leaf(ca: trustme.CA, names: list[str], path: Path) -> Path:
    """Write a key + certificate chain PEM for `names` (the first is the host name)."""
    leaf = ca.issue_cert(*names)
    write_private(path, leaf.private_key_and_cert_chain_pem.bytes())
    return path
