"""Which server and client library to build the router on: minimal proxies, measured alike.

Each variant is the same few lines (forward POST /score to one upstream, return the body) on
a different server library, event loop or client. All run as one process in front of the
same nginx `return 200` backend, next to nginx as a reverse proxy, under wrk. Variants whose
libraries are not installed in the running interpreter are skipped (run it with a Python
that has uvloop, uvicorn, granian and httpx installed to see them all).

Usage: python bench/router_server_choice.py [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from router_latency import BODY, free_port, nginx, stop, wait_http, wrk

VARIANTS: dict[str, tuple[str, ...]] = {
    "aiohttp server + aiohttp client (asyncio)": ("aiohttp",),
    "aiohttp server + aiohttp client (uvloop)": ("aiohttp", "uvloop"),
    "aiohttp server + httpx client (uvloop)": ("aiohttp", "uvloop", "httpx"),
    "uvicorn raw ASGI + aiohttp client (uvloop, httptools)": ("uvicorn", "uvloop", "httptools"),
    "granian ASGI + aiohttp client (uvloop)": ("granian", "uvloop", "aiohttp"),
    "the router: asyncio protocols + httptools (uvloop)": (),
}
ROUTER_VARIANT = "the router: asyncio protocols + httptools (uvloop)"


def _aiohttp_app(upstream: str, client: str) -> Any:
    import aiohttp
    from aiohttp import web

    state: dict[str, Any] = {}

    async def start(app: web.Application) -> None:
        if client == "httpx":
            import httpx

            state["client"] = httpx.AsyncClient(limits=httpx.Limits(max_connections=None))
        else:
            state["client"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if client == "httpx":
            answer = await state["client"].post(upstream, content=body)
            return web.Response(status=answer.status_code, body=answer.content)
        async with state["client"].post(upstream, data=body) as upstream_answer:
            payload = await upstream_answer.read()
            return web.Response(status=upstream_answer.status, body=payload)

    app = web.Application()
    app.on_startup.append(start)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


class AsgiProxy:
    """A raw ASGI application: no framework between the server and the proxying."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        import aiohttp

        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        async with self.session.post(self.upstream, data=b"".join(chunks)) as answer:
            payload = await answer.read()
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status,
                    "headers": [(b"content-length", str(len(payload)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload})


def asgi_app() -> AsgiProxy:
    import os

    return AsgiProxy(os.environ["PROXY_UPSTREAM"])


def serve(variant: str, port: int, upstream: str) -> None:
    import os

    if variant.startswith("aiohttp"):
        from aiohttp import web

        client = "httpx" if "httpx" in variant else "aiohttp"
        if "uvloop" in variant:
            import uvloop

            uvloop.install()
        web.run_app(
            _aiohttp_app(upstream, client),
            host="127.0.0.1",
            port=port,
            access_log=None,
            print=None,
        )
    elif variant.startswith("uvicorn"):
        import uvicorn

        uvicorn.run(
            AsgiProxy(upstream),
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    elif variant.startswith("granian"):
        from granian import Granian

        os.environ["PROXY_UPSTREAM"] = upstream
        Granian(
            "router_server_choice:asgi_app",
            address="127.0.0.1",
            port=port,
            interface="asgi",
            workers=1,
            loop="uvloop",
            factory=True,
            log_enabled=False,
        ).serve()


def _router_command(root: Path, python: str, port: int, upstream: str) -> list[str]:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "access_log": {"enabled": False},
        "services": [
            {
                "name": "bench",
                "replicas": [upstream.rsplit("/", 1)[0]],
                "replica_max_concurrent_requests": 1000,
            }
        ],
    }
    (root / "router.json").write_text(json.dumps(config))
    return [python, "-m", "router", "--config", str(root / "router.json"), "--log-level", "WARNING"]


def available(modules: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in modules)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--router-python", default=sys.executable, help="a Python with the router installed"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return 0

    root = Path(tempfile.mkdtemp(prefix="router-choice-"))
    script = root / "post.lua"
    script.write_text(
        f"wrk.method = \"POST\"\nwrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    backend_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{backend_port}/score"
    processes = [
        nginx(
            root,
            "backend",
            f"server {{ listen 127.0.0.1:{backend_port}; "
            f"location / {{ default_type application/json; return 200 '{{\"ok\":true}}'; }} }}",
        ),
        nginx(
            root,
            "proxy",
            f"upstream model {{ server 127.0.0.1:{backend_port}; keepalive 64; }} "
            f"server {{ listen 127.0.0.1:{proxy_port}; location / {{ "
            'proxy_http_version 1.1; proxy_set_header Connection ""; '
            "proxy_pass http://model/score; } }",
        ),
    ]
    targets = {"nginx proxy_pass": f"http://127.0.0.1:{proxy_port}/score"}
    skipped = []
    try:
        wait_http(f"http://127.0.0.1:{backend_port}/")
        for variant, modules in VARIANTS.items():
            if not available(modules):
                skipped.append(variant)
                continue
            port = free_port()
            if variant == ROUTER_VARIANT:
                command = _router_command(root, args.router_python, port, upstream)
            else:
                command = [
                    sys.executable,
                    __file__,
                    "--serve",
                    variant,
                    "--port",
                    str(port),
                    "--upstream",
                    upstream,
                ]
            processes.append(
                subprocess.Popen(
                    command, start_new_session=True, cwd=Path(__file__).resolve().parents[1]
                )
            )
            path = "/api/v1/service/bench/score" if variant == ROUTER_VARIANT else "/score"
            wait_http(
                f"http://127.0.0.1:{port}/healthz"
                if variant == ROUTER_VARIANT
                else f"http://127.0.0.1:{port}/score",
                timeout=20,
            )
            targets[variant] = f"http://127.0.0.1:{port}{path}"
        results: dict[str, dict[str, list[float]]] = {
            name: {"rps": [], "p50_1": [], "p99_1": []} for name in targets
        }
        for url in targets.values():
            wrk(url, script, 1, args.connections)
        for _ in range(args.rounds):
            for name, url in targets.items():
                loaded = wrk(url, script, args.seconds, args.connections)
                single = wrk(url, script, args.seconds, 1)
                results[name]["rps"].append(loaded["rps"])
                results[name]["p50_1"].append(single["p50"])
                results[name]["p99_1"].append(single["p99"])
    finally:
        for process in processes:
            stop(process)
    base = statistics.median(results["nginx proxy_pass"]["rps"])
    print(f"wrk -t1, {args.rounds} rounds x {args.seconds:g} s, medians")
    print(f"{'variant':<56} {'req/s':>8} {'x nginx':>8} {'p50 c1':>8} {'p99 c1':>8}")
    for name, r in results.items():
        rps = statistics.median(r["rps"])
        print(
            f"{name:<56} {rps:>8.0f} {rps / base:>8.2f} "
            f"{statistics.median(r['p50_1']):>8.3f} {statistics.median(r['p99_1']):>8.3f}"
        )
    for name in skipped:
        print(f"{name:<56} skipped: not installed in this interpreter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
