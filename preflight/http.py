"""The HTTP probe: a GET of `https://<name>/` sent to the address DNS found, with the Host
header and SNI set to the name. Any HTTP status proves the service answers. Through a
proxy the request names the host and the proxy resolves it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from preflight._http1 import ResponseError, exchange
from preflight._net import describe, network_status, url_host
from preflight._streams import connect
from preflight.context import ProbeContext
from rules.model import Check, Observation, ProbeStatus

USER_AGENT = "aksflight-preflight"
_PROXY_TROUBLE = (ProbeStatus.REFUSED, ProbeStatus.TIMEOUT, ProbeStatus.UNREACHABLE)
_NEXT_ADDRESS = (ProbeStatus.REFUSED, ProbeStatus.UNREACHABLE)


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
    if not proxy and not addresses:
        return Observation(check.id, ProbeStatus.ERROR, 0.0, "no address to connect to", evidence)
    try:
        async with asyncio.timeout(context.timeout):
            if proxy is None and context.options.http_transport is None:
                status, detail = await _direct(check, context, addresses, scheme, evidence)
            else:
                status, detail = await _through_httpx(
                    check, context, addresses, scheme, evidence, proxy=proxy
                )
    except TimeoutError:
        status, detail = ProbeStatus.TIMEOUT, f"no response within {context.timeout:g} s"
        if proxy:
            status = ProbeStatus.PROXY_ERROR
    duration_ms = (context.clock() - started) * 1000
    return Observation(check.id, status, duration_ms, detail, evidence)


async def _direct(
    check: Check,
    context: ProbeContext,
    addresses: Sequence[str],
    scheme: str,
    evidence: dict[str, Any],
) -> tuple[ProbeStatus, str]:
    """On the connection the TLS (or TCP) check left, else a new one, address by address
    while they refuse."""
    assert check.port is not None
    tls = context.ssl_verify if scheme == "https" else None
    host_header = _host_header(check.target, check.port, scheme)
    status, detail = ProbeStatus.ERROR, ""
    for address in addresses:
        evidence["address"] = address
        try:
            stream = await connect(address, check.port, check.target, tls, context.park)
        except OSError as exc:
            status, detail = network_status(exc), describe(exc)
            if status in _NEXT_ADDRESS:
                continue
            return status, detail
        try:
            head = await exchange(stream, host_header, USER_AGENT)
        except OSError as exc:
            return network_status(exc), describe(exc)
        except ResponseError as exc:
            return ProbeStatus.ERROR, f"{type(exc).__name__}: {exc}"
        finally:
            stream.close()
        evidence.update(
            status_code=head.status_code,
            server_header=head.server,
            http_version=head.http_version,
        )
        return ProbeStatus.OK, ""
    return status, detail


async def _through_httpx(
    check: Check,
    context: ProbeContext,
    addresses: Sequence[str],
    scheme: str,
    evidence: dict[str, Any],
    *,
    proxy: str | None,
) -> tuple[ProbeStatus, str]:
    """Through the proxy (which resolves the name) or an injected transport."""
    assert check.port is not None
    targets: Sequence[str | None] = [None] if proxy else addresses
    transport = context.http_transport(proxy)
    timeouts = httpx.Timeout(context.timeout).as_dict()
    host_header = _host_header(check.target, check.port, scheme)
    status, detail = ProbeStatus.ERROR, ""
    for address in targets:
        evidence["address"] = address
        url_host_part = check.target if address is None else url_host(address)
        url = f"{scheme}://{url_host_part}:{check.port}/"
        # Straight to the transport: a probe needs no cookies, auth or redirects.
        request = httpx.Request(
            "GET",
            url,
            headers={"Host": host_header, "User-Agent": USER_AGENT},
            extensions={"sni_hostname": check.target, "timeout": timeouts},
        )
        try:
            # Headers are the proof; the body is not read.
            response = await transport.handle_async_request(request)
            await response.aclose()
        except httpx.HTTPError as exc:
            status, detail = _status_of(exc, proxy is not None), describe(exc)
            if status in _NEXT_ADDRESS:
                continue
            return status, detail
        evidence.update(
            status_code=response.status_code,
            server_header=response.headers.get("server"),
            http_version=response.http_version,
        )
        return ProbeStatus.OK, ""
    return status, detail
