"""An API server that refuses every credential (401), for the `unauthorized` status; the
other Kubernetes probe tests use the project's strict fake API server (`fakekube`)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_UNAUTHORIZED = json.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
).encode()


class _Refuse(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _refuse(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(_UNAUTHORIZED)))
        self.end_headers()
        self.wfile.write(_UNAUTHORIZED)

    do_GET = _refuse
    do_POST = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def refusing_api_server() -> Iterator[str]:
    """Yields the URL of a server that answers 401 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
