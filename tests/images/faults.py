"""A transport that sits between the client and a real registry and breaks chosen requests:
answers 5xx instead, drops the connection before or after the registry saw the request, or
cancels the upload session first (the registry then forgets it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx


@dataclass
class Fault:
    method: str
    path_contains: str
    action: str  # "503", "500", "drop-before", "drop-after", "forget-session"
    times: int = 1
    skip: int = 0  # let this many matching requests through first
    seen: int = 0


@dataclass
class FaultyTransport(httpx.BaseTransport):
    faults: list[Fault] = field(default_factory=list)
    inner: httpx.BaseTransport = field(default_factory=httpx.HTTPTransport)
    log: list[tuple[str, str, int | str]] = field(default_factory=list)

    def _match(self, request: httpx.Request) -> Fault | None:
        for fault in self.faults:
            if request.method == fault.method and fault.path_contains in request.url.path:
                fault.seen += 1
                if fault.skip < fault.seen <= fault.skip + fault.times:
                    return fault
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._match(request)
        action = fault.action if fault else ""
        self.log.append((request.method, request.url.path, action or "pass"))
        if action in ("503", "500"):
            return httpx.Response(int(action), json={"errors": [{"code": "UNAVAILABLE"}]})
        if action == "drop-before":
            raise httpx.ConnectError("connection dropped (test)", request=request)
        if action == "forget-session":
            self.inner.handle_request(httpx.Request("DELETE", request.url)).close()
        response = self.inner.handle_request(request)
        if action == "drop-after":
            response.read()
            response.close()
            raise httpx.ReadError("connection dropped after sending (test)", request=request)
        return response

    def close(self) -> None:
        self.inner.close()
