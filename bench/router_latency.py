"""The router's added latency and throughput against nginx as a reverse proxy, same backend.

Starts, on loopback only: a fast backend (nginx `return 200`), nginx as a reverse proxy in
front of it (one worker, keepalive upstream), and the router (`python -m router`, one
process, no auth, access log off unless --access-log). Where the router's data plane is
compiled (router/native.py), a second router runs it as plain Python (AKSFLIGHT_ROUTER_PURE=1)
for the comparison. Load comes from wrk. Rounds alternate between the targets so machine
noise hits them alike; the script prints medians per target and the ratios the goals are
stated in:

    router throughput >= 0.5 x nginx, added p50 <= 1 ms, added p99 <= 5 ms

Usage: python bench/router_latency.py [--rounds 5] [--seconds 4] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BODY = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})
REPO = Path(__file__).resolve().parents[1]
PURE_ENV = "AKSFLIGHT_ROUTER_PURE"  # router.native.PURE_ENV (the bench imports no router code)
PATH = "/api/v1/service/bench/score"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def nginx(root: Path, name: str, server_block: str) -> subprocess.Popen[bytes]:
    prefix = root / name
    (prefix / "logs").mkdir(parents=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    {server_block}
}}
"""
    )
    return subprocess.Popen(
        ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)],
        start_new_session=True,
    )


def wrk(url: str, script: Path, seconds: float, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    percentiles = {}
    for label, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        percentiles[label] = float(value) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed responses\n{output}")
    return {"rps": rate, "p50": percentiles["50"], "p99": percentiles["99"]}


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every process in a process group (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} is not installed")
            return 0

    root = Path(tempfile.mkdtemp(prefix="router-bench-"))
    backend_port, proxy_port, router_port = free_port(), free_port(), free_port()
    compiled = compiled_router(args.python)
    script = root / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
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
            f"server {{ listen 127.0.0.1:{proxy_port}; location {PATH} {{ "
            'proxy_http_version 1.1; proxy_set_header Connection ""; '
            "proxy_pass http://model/score; } }",
        ),
    ]
    config = {
        "listen": {"host": "127.0.0.1", "port": router_port},
        "access_log": {"enabled": args.access_log, "path": str(root / "access.log")},
        "services": [
            {
                "name": "bench",
                "replicas": [f"http://127.0.0.1:{backend_port}"],
                "replica_max_concurrent_requests": 1000,
            }
        ],
    }
    targets = {
        "backend": f"http://127.0.0.1:{backend_port}/score",
        "nginx": f"http://127.0.0.1:{proxy_port}{PATH}",
    }
    routers = {"router": (router_port, {})}
    if compiled:
        routers["router-py"] = (free_port(), {PURE_ENV: "1"})
    for name, (port, env) in routers.items():
        config["listen"]["port"] = port
        (root / f"{name}.json").write_text(json.dumps(config))
        processes.append(start_router(args.python, root / f"{name}.json", env))
        targets[name] = f"http://127.0.0.1:{port}{PATH}"
    try:
        wait_http(f"http://127.0.0.1:{backend_port}/")
        for port, _ in routers.values():
            wait_http(f"http://127.0.0.1:{port}/readyz")
        for url in targets.values():
            wrk(url, script, 1, args.connections)  # warm up
        results: dict[str, dict[str, list[float]]] = {
            name: {"rps": [], "p50": [], "p99": [], "p50_1": [], "p99_1": [], "cpu_us": []}
            for name in targets
        }
        groups = {name: process.pid for name, process in zip(targets, processes, strict=True)}
        for _ in range(args.rounds):
            for name, url in targets.items():
                cpu_before = group_cpu_seconds(groups[name])
                loaded = wrk(url, script, args.seconds, args.connections)
                cpu = group_cpu_seconds(groups[name]) - cpu_before
                results[name]["cpu_us"].append(cpu * 1e6 / (loaded["rps"] * args.seconds))
                single = wrk(url, script, args.seconds / 2, 1)
                results[name]["rps"].append(loaded["rps"])
                results[name]["p50"].append(loaded["p50"])
                results[name]["p99"].append(loaded["p99"])
                results[name]["p50_1"].append(single["p50"])
                results[name]["p99_1"].append(single["p99"])
    finally:
        for process in processes:
            stop(process)
        if os.environ.get("BENCH_KEEP") is None:
            shutil.rmtree(root, ignore_errors=True)

    med = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}
    print(f"wrk -t1, {args.rounds} rounds x {args.seconds:g} s, medians; POST {len(BODY)} B")
    build = "compiled; router-py: the same, plain Python" if compiled else "plain Python"
    print(f"router: data plane {build}")
    print(
        f"{'target':<9} {'req/s @c' + str(args.connections):>12} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'p50 ms @c1':>11} {'p99 ms @c1':>11} {'CPU us/req':>11}"
    )
    for name, m in med.items():
        print(
            f"{name:<9} {m['rps']:>12.0f} {m['p50']:>8.2f} {m['p99']:>8.2f}"
            f" {m['p50_1']:>11.3f} {m['p99_1']:>11.3f} {m['cpu_us']:>11.1f}"
        )
    base = med["backend"]
    for proxy in ("nginx", *routers):
        m = med[proxy]
        print(
            f"{proxy}: added latency at c1 p50 {m['p50_1'] - base['p50_1']:.3f} ms, "
            f"p99 {m['p99_1'] - base['p99_1']:.3f} ms; "
            f"at c{args.connections} p50 {m['p50'] - base['p50']:.2f} ms, "
            f"p99 {m['p99'] - base['p99']:.2f} ms"
        )
    ratio = med["router"]["rps"] / med["nginx"]["rps"]
    print(f"router / nginx throughput: {ratio:.2f} (goal >= 0.50)")
    cpu_ratio = med["router"]["cpu_us"] / med["nginx"]["cpu_us"]
    print(f"router / nginx CPU per request: {cpu_ratio:.1f} (the machine-independent cost)")
    if compiled:
        plain = med["router-py"]
        print(
            f"plain-Python router / nginx throughput: {plain['rps'] / med['nginx']['rps']:.2f}; "
            f"compiled / plain: throughput {med['router']['rps'] / plain['rps']:.2f}x, "
            f"CPU per request {med['router']['cpu_us'] / plain['cpu_us']:.2f}x"
        )
    return 0


def compiled_router(python: str) -> bool:
    """Whether `python -m router` would run the compiled data plane (router/native.py)."""
    probe = "import router.native as n; print(n.select_build().compiled)"
    output = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO, env=env_with()
    ).stdout
    return output.strip() == "True"


def env_with(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without a build choice of its own, plus `extra`."""
    return {k: v for k, v in os.environ.items() if k != PURE_ENV} | (extra or {})


def start_router(python: str, config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [python, "-m", "router", "--config", str(config), "--log-level", "WARNING"],
        start_new_session=True,
        cwd=REPO,
        env=env_with(env),
    )


if __name__ == "__main__":
    sys.exit(main())
