"""A local HTTPS server that plays the Azure Resource Manager endpoint for firewall policies.

Serves `firewallPolicies/{name}` and its `ruleCollectionGroups` (paged with `nextLink`) for
one subscription and resource group, insists on the bearer token, answers ARM-shaped errors,
and records every request. TLS comes from a trustme CA, as the SDK sends tokens over HTTPS only.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

TOKEN = "test-token-not-a-secret"


@dataclass
class ArmState:
    subscription: str
    resource_group: str
    policy_name: str
    groups: list[dict[str, Any]]
    base_policy: str | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    page_size: int = 1

    @property
    def policy_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/firewallPolicies/{self.policy_name}"
        )


def _handler(state: ArmState, base_url: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            state.requests.append(
                {
                    "path": url.path,
                    "auth": self.headers.get("Authorization", ""),
                    "api-version": query.get("api-version", [""])[0],
                }
            )
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": {"code": "AuthenticationFailed", "message": "bad token"}})
                return
            if url.path.lower() == state.policy_path.lower():
                properties: dict[str, Any] = {
                    "ruleCollectionGroups": [
                        {"id": f"{state.policy_path}/ruleCollectionGroups/{g['name']}"}
                        for g in state.groups
                    ]
                }
                if state.base_policy:
                    properties["basePolicy"] = {"id": state.base_policy}
                self._send(
                    200,
                    {"id": state.policy_path, "name": state.policy_name, "properties": properties},
                )
                return
            if url.path.lower() == f"{state.policy_path}/ruleCollectionGroups".lower():
                start = int(query.get("$skipToken", ["0"])[0])
                page = state.groups[start : start + state.page_size]
                body: dict[str, Any] = {"value": page}
                if start + state.page_size < len(state.groups):
                    body["nextLink"] = (
                        f"{base_url[0]}{url.path}?api-version={query['api-version'][0]}"
                        f"&$skipToken={start + state.page_size}"
                    )
                self._send(200, body)
                return
            self._send(
                404, {"error": {"code": "ResourceNotFound", "message": f"{url.path} was not found"}}
            )

    return Handler


@contextmanager
def arm_server(state: ArmState, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Yields (base URL, path of the CA bundle to trust); stops the server afterwards."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "arm-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    base_url: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, base_url))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    base_url.append(f"https://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base_url[0], str(ca_path)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
