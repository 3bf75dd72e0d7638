"""The HTTP probe: a GET of `https://<name>/` sent to the address DNS found, with the Host
header and SNI set to the name. Any HTTP status proves the service answers. Through a
proxy the request names the host and the proxy resolves it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from preflight._net import describe, network_status, url_host
from preflight.context import ProbeContext
from rules.model import Check, Observation, ProbeStatus

_PROXY_TROUBLE = (ProbeStatus.REFUSED, ProbeStatus.TIMEOUT, ProbeStatus.UNREACHABLE)


def _host_header(host: str, port: int, scheme: str) -> str:
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


def _status_of(exc: httpx.HTTPError, via_proxy: bool) -> ProbeStatus:
    if isinstance(exc, httpx.ProxyError):
        return ProbeStatus.PROXY_ERROR
    timed_out = isinstance(exc, httpx.TimeoutException)
    status = ProbeStatus.TIMEOUT if timed_out else network_status(exc)
    if via_proxy and status in _PROXY_TROUBLE and not isinstance(exc, httpx.ReadTimeout):
        return ProbeStatus.PROXY_ERROR
    return status


async def probe_http(
    check: Check, context: ProbeContext, addresses: Sequence[str], *, scheme: str = "https"
) -> Observation:
    """GET / from the first address (or through the proxy); record status and server."""
    assert check.port is not None
    started = context.clock()
    proxy = context.proxy_for(check.target)
    evidence: dict[str, Any] = {
        "via_proxy": proxy,
        "resolved_by": "proxy" if proxy else "dns",
        "address": None,
        "status_code": None,
        "server_header": None,
    }
    host_header = _host_header(check.target, check.port, scheme)
    if proxy:
        targets: Sequence[str | None] = [None]
    elif addresses:
        targets = addresses
    else:
        return Observation(check.id, ProbeStatus.ERROR, 0.0, "no address to connect to", evidence)
    transport = context.http_transport(proxy)
    timeouts = httpx.Timeout(context.timeout).as_dict()
    status, detail = ProbeStatus.ERROR, ""
    try:
        async with asyncio.timeout(context.timeout):
            for address in targets:
                evidence["address"] = address
                url_host_part = check.target if address is None else url_host(address)
                url = f"{scheme}://{url_host_part}:{check.port}/"
                # Straight to the transport: a probe needs no cookies, auth or redirects.
                request = httpx.Request(
                    "GET",
                    url,
                    headers={"Host": host_header, "User-Agent": "aksflight-preflight"},
                    extensions={"sni_hostname": check.target, "timeout": timeouts},
                )
                try:
                    # Headers are the proof; the body is not read.
                    response = await transport.handle_async_request(request)
                    await response.aclose()
                except httpx.HTTPError as exc:
                    status, detail = _status_of(exc, proxy is not None), describe(exc)
                    if status in (ProbeStatus.REFUSED, ProbeStatus.UNREACHABLE):
                        continue
                    break
                evidence.update(
                    status_code=response.status_code,
                    server_header=response.headers.get("server"),
                    http_version=response.http_version,
                )
                status, detail = ProbeStatus.OK, ""
                break
    except TimeoutError:
        status, detail = ProbeStatus.TIMEOUT, f"no response within {context.timeout:g} s"
        if proxy:
            status = ProbeStatus.PROXY_ERROR
    duration_ms = (context.clock() - started) * 1000
    return Observation(check.id, status, duration_ms, detail, evidence)
