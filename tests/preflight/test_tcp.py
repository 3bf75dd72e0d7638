"""The TCP probe against loopback listeners: open, closed, dropping."""

from __future__ import annotations

import errno
import socket

import pytest

from preflight._net import network_status
from preflight.options import ProbeOptions
from preflight.tcp import probe_tcp
from rules.model import CheckKind, ProbeStatus
from tests.preflight.conftest import check, probe_once, run
from tests.preflight.servers import closed_port, dropping_listener


def connect(addresses: list[str], port: int, timeout: float = 2.0) -> object:
    target = check(CheckKind.TCP, "mcr.microsoft.com", port)
    return run(probe_once(probe_tcp, target, ProbeOptions(timeout=timeout), addresses))


def test_connected() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        obs = connect(["127.0.0.1"], port)
    assert obs.check_id == f"tcp:mcr.microsoft.com:{port}"
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["address"] == "127.0.0.1"
    assert obs.evidence["addresses_tried"] == ["127.0.0.1"]
    assert obs.evidence["connect_ms"] >= 0


def test_refused() -> None:
    with closed_port() as port:
        obs = connect(["127.0.0.1"], port)
    assert obs.status is ProbeStatus.REFUSED
    assert obs.evidence["errors"] == {"127.0.0.1": "refused"}
    assert "ConnectionRefusedError" in obs.detail


def test_filtered_times_out() -> None:
    with dropping_listener() as port:
        obs = connect(["127.0.0.1"], port, timeout=0.5)
    assert obs.check_id == f"tcp:mcr.microsoft.com:{port}"
    assert obs.status is ProbeStatus.TIMEOUT
    assert obs.evidence["address"] == "127.0.0.1"
    assert 450 <= obs.duration_ms < 1500


def test_next_address_after_a_refusal() -> None:
    with closed_port("127.0.0.2") as port, socket.create_server(("127.0.0.3", port)):
        obs = connect(["127.0.0.2", "127.0.0.3"], port)
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["address"] == "127.0.0.3"
    assert obs.evidence["addresses_tried"] == ["127.0.0.2", "127.0.0.3"]
    assert obs.evidence["errors"] == {"127.0.0.2": "refused"}


def test_no_address_is_an_error_not_a_lookup() -> None:
    obs = connect([], 443)
    assert obs.status is ProbeStatus.ERROR
    assert obs.evidence["addresses_tried"] == []


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ProbeStatus.REFUSED),
        (TimeoutError(errno.ETIMEDOUT, "timed out"), ProbeStatus.TIMEOUT),
        (OSError(errno.EHOSTUNREACH, "No route to host"), ProbeStatus.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), ProbeStatus.UNREACHABLE),
        (OSError(errno.EPERM, "Operation not permitted"), ProbeStatus.UNREACHABLE),
        (OSError(errno.EBADF, "Bad file descriptor"), ProbeStatus.ERROR),
    ],
)
def test_status_by_errno_and_type(exc: OSError, status: ProbeStatus) -> None:
    assert network_status(exc) is status


def test_status_found_through_wrapping_exceptions() -> None:
    """Libraries wrap the socket error; the status comes from the cause, not the text."""
    try:
        try:
            raise OSError(errno.EHOSTUNREACH, "No route to host")
        except OSError as inner:
            raise RuntimeError("connection refused (misleading text)") from inner
    except RuntimeError as outer:
        assert network_status(outer) is ProbeStatus.UNREACHABLE
    group = ExceptionGroup("all attempts failed", [ConnectionRefusedError(errno.ECONNREFUSED, "")])
    assert (
        network_status(OSError("All connection attempts failed").with_traceback(None))
        is ProbeStatus.ERROR
    )
    wrapped = OSError("All connection attempts failed")
    wrapped.__cause__ = group
    assert network_status(wrapped) is ProbeStatus.REFUSED
