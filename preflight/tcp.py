"""The TCP probe: connect to the addresses the name's DNS check found, in order, until one
answers. Refused, filtered (timeout) and unreachable are told apart by errno. The
connection is left for the TLS (or plain HTTP) check of the same endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from preflight._net import describe, network_status
from preflight._streams import open_socket
from preflight.context import ProbeContext
from rules.model import Check, Observation, ProbeStatus


async def probe_tcp(check: Check, context: ProbeContext, addresses: Sequence[str]) -> Observation:
    """Connect to `check.port` on each address until one accepts or the timeout runs out."""
    assert check.port is not None
    started = context.clock()
    evidence: dict[str, Any] = {"address": None, "addresses_tried": [], "connect_ms": None}
    if not addresses:
        return Observation(check.id, ProbeStatus.ERROR, 0.0, "no address to connect to", evidence)
    status = ProbeStatus.ERROR
    detail = ""
    errors: dict[str, str] = {}
    try:
        async with asyncio.timeout(context.timeout):
            for address in addresses:
                evidence["address"] = address
                evidence["addresses_tried"].append(address)
                attempt = context.clock()
                try:
                    sock = await open_socket(address, check.port)
                except OSError as exc:
                    status, detail = network_status(exc), describe(exc)
                    errors[address] = status.value
                    continue
                evidence["connect_ms"] = round((context.clock() - attempt) * 1000, 3)
                if context.continues_after(check):
                    context.park.park(("tcp", check.target, address, check.port), sock)
                else:
                    sock.close()
                status, detail = ProbeStatus.OK, ""
                break
    except TimeoutError:
        status, detail = ProbeStatus.TIMEOUT, f"no answer within {context.timeout:g} s"
        errors[evidence["address"]] = status.value
    if errors:
        evidence["errors"] = errors
    duration_ms = (context.clock() - started) * 1000
    return Observation(check.id, status, duration_ms, detail, evidence)
