"""aksflight's preflight runner against the naive sequential way, on loopback endpoints.

Endpoints: dnsmasq answering every name with its own 127.x address, nginx terminating TLS
for all of them (a trustme wildcard certificate), and a listener whose full accept queue
drops connections like a firewall does (so a dropped host costs a whole timeout).

1. The same plan (`--hosts` HTTPS hosts, `--dropped` of them dropped) run by aksflight and
   by the naive way: for each host in order, one resolver call and one HTTPS request.
   Prints the medians and their ratio.
2. A plan of `--large` endpoints (with the same dropped hosts) against the single slowest
   chain: wall time, their ratio, and the run's CPU seconds, against the CPU of as many
   bare TLS handshakes (measured between the runs: the floor with this OpenSSL), and
   the same plan on asyncio's own loop (runs use uvloop, as `aksflight check` does,
   where it is installed). Then as many TCP endpoints (DNS and connect).
   Goals: within 2x the single chain; under 2 CPU-seconds for 1,000 endpoints.

    .venv/bin/python bench/preflight_runner.py [--runs 3] [--hosts 30] [--dropped 3]
                                               [--timeout 1] [--large 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.nameserver
import dns.query
import dns.resolver
import httpx
import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preflight import eventloop
from preflight.options import ProbeOptions
from preflight.runner import RunResult, run_plan
from rules.model import Phase, Protocol, Requirement
from rules.plan import Plan, build_plan

DOMAIN = "bench.test"


def host_name(index: int) -> str:
    return f"h{index:04d}.{DOMAIN}"


def host_address(index: int) -> str:
    return f"127.1.{index // 250}.{index % 250 + 1}"


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass(frozen=True)
class Endpoints:
    nameserver: str
    https_port: int
    drop_port: int
    ca_bundle: Path


@contextlib.contextmanager
def dropping_listener() -> Iterator[int]:
    """A full accept queue: the kernel drops new SYNs, so connects time out."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # any 127.x address
        sock.listen(0)
        port = int(sock.getsockname()[1])
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


def _start_dnsmasq(workdir: Path, count: int) -> tuple[subprocess.Popen[bytes], int]:
    hosts = workdir / "hosts"
    hosts.write_text("".join(f"{host_address(i)} {host_name(i)}\n" for i in range(count)))
    for _ in range(5):  # the free port may be taken before dnsmasq binds it
        port = _free_port(socket.SOCK_DGRAM)
        process = subprocess.Popen(
            [
                shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                f"--port={port}",
                "--pid-file=",
                f"--addn-hosts={hosts}",
                f"--local=/{DOMAIN}/",
                "--dns-forward-max=5000",
                "--cache-size=10000",
                *(["--user=root"] if os.geteuid() == 0 else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        query = dns.message.make_query(host_name(0), "A")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(dns.exception.Timeout, OSError):
                dns.query.udp(query, "127.0.0.1", port=port, timeout=0.1)
                return process, port
        _stop(process)
    raise RuntimeError("dnsmasq did not start")


def _start_nginx(workdir: Path, ca: trustme.CA) -> tuple[subprocess.Popen[bytes], int]:
    ca.issue_cert(f"*.{DOMAIN}").private_key_and_cert_chain_pem.write_to_path(
        str(workdir / "leaf.pem")
    )
    port = _free_port(socket.SOCK_STREAM)
    (workdir / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{
        listen {port} ssl backlog=4096;
        ssl_certificate {workdir}/leaf.pem;
        ssl_certificate_key {workdir}/leaf.pem;
        location / {{ return 404; }}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [
            "nginx",
            "-p",
            str(workdir),
            "-e",
            str(workdir / "error.log"),
            "-c",
            str(workdir / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return process, port
        time.sleep(0.02)
    _stop(process)
    raise RuntimeError(f"nginx did not start; see {workdir}/error.log")


@contextlib.contextmanager
def endpoints(workdir: Path, count: int) -> Iterator[Endpoints]:
    """Everything the benchmark connects to, stopped by pid when done."""
    ca = trustme.CA()
    bundle = workdir / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    dnsmasq, dns_port = _start_dnsmasq(workdir, count)
    try:
        nginx, https_port = _start_nginx(workdir, ca)
        try:
            with dropping_listener() as drop_port:
                yield Endpoints(f"127.0.0.1:{dns_port}", https_port, drop_port, bundle)
        finally:
            _stop(nginx)
    finally:
        _stop(dnsmasq)


def plan_for(
    ep: Endpoints, hosts: range, dropped: int, protocol: Protocol = Protocol.HTTPS
) -> Plan:
    """HTTPS (or `protocol`) to every host; the first `dropped` go to the dropping listener."""
    return build_plan(
        Requirement(
            id=f"bench/{i}",
            catalogue="bench",
            host=host_name(i),
            port=ep.drop_port if i < dropped else ep.https_port,
            protocol=protocol,
            phases=(Phase.ROUTER_INSTALL,),
            purpose="benchmark endpoint",
            source="bench",
        )
        for i in hosts
    )


def aksflight(plan: Plan, options: ProbeOptions) -> RunResult:
    """The run as `aksflight check` makes it: on uvloop where it is installed."""
    return eventloop.run(run_plan(plan, options))


def naive(plan: Plan, ep: Endpoints, timeout: float) -> None:
    """One resolver call and one HTTPS request per host, in order."""
    resolver = dns.resolver.Resolver(configure=False)
    address, port = ep.nameserver.split(":")
    resolver.nameservers = [dns.nameserver.Do53Nameserver(address, int(port))]
    resolver.lifetime = timeout
    with httpx.Client(verify=str(ep.ca_bundle), timeout=timeout) as client:
        for host, ports in plan.probe_targets():
            try:
                answer = resolver.resolve(host, "A", search=False)
            except dns.exception.DNSException:
                continue
            target = answer[0].to_text()
            with contextlib.suppress(httpx.HTTPError):
                client.get(
                    f"https://{target}:{ports[0]}/",
                    headers={"Host": host},
                    extensions={"sni_hostname": host},
                )


def bare_handshakes(ep: Endpoints, count: int, concurrency: int = 64) -> tuple[float, float]:
    """CPU and wall seconds of `count` TLS handshakes alone (asyncio, the same CA and SNI
    names, as many at once as the runner's default): the floor any prober pays for TLS
    checks with this Python and OpenSSL, on this machine (nginx shares its cores)."""
    context = ssl.create_default_context(cafile=str(ep.ca_bundle))

    async def one(index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            _, writer = await asyncio.open_connection(
                "127.0.0.1", ep.https_port, ssl=context, server_hostname=host_name(index)
            )
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    async def all_of_them() -> None:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(i, gate) for i in range(count)))

    started, wall_started = time.process_time(), time.perf_counter()
    asyncio.run(all_of_them())
    return time.process_time() - started, time.perf_counter() - wall_started


def median_s(runs: int, job: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        job()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--dropped", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--large", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # nginx workers and dnsmasq may drop privileges
        with endpoints(workdir, max(args.hosts, args.large)) as ep:
            options = ProbeOptions(
                nameservers=[ep.nameserver], ca_bundle=ep.ca_bundle, timeout=args.timeout
            )
            small = plan_for(ep, range(args.hosts), args.dropped)
            ours = median_s(args.runs, lambda: aksflight(small, options))
            theirs = median_s(args.runs, lambda: naive(small, ep, args.timeout))
            print(
                f"same plan, {args.hosts} hosts, {args.dropped} dropped, timeout {args.timeout:g} s"
            )
            print(f"  aksflight  median {ours:7.3f} s")
            print(f"  naive      median {theirs:7.3f} s")
            print(f"  ratio naive/aksflight {theirs / ours:6.1f}x")

            single = plan_for(ep, range(1), 1 if args.dropped else 0)
            chain = median_s(args.runs, lambda: aksflight(single, options))
            large = plan_for(ep, range(args.large), args.dropped)
            # Runs, the floor and the standard-loop runs alternate, so a noisy neighbour
            # weighs on all of them alike.
            walls, cpus, floors, floor_walls, std_runs = [], [], [], [], []
            for _ in range(args.runs):
                result = aksflight(large, options)
                walls.append(result.duration_s)
                cpus.append(result.cpu_s)
                floor_cpu, floor_wall = bare_handshakes(ep, args.large)
                floors.append(floor_cpu)
                floor_walls.append(floor_wall)
                if eventloop.USES_UVLOOP:
                    std_runs.append(asyncio.run(run_plan(large, options)))
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            floor, floor_wall = statistics.median(floors), statistics.median(floor_walls)
            print(f"{args.large} endpoints ({len(large.checks)} checks), {args.dropped} dropped")
            print(f"  single slowest chain median {chain:7.3f} s")
            print(
                f"  all endpoints        median {wall:7.3f} s  ({wall / chain:4.2f}x the chain;"
                " goal under 2x)"
            )
            print(f"  CPU                  median {cpu:7.3f} s  (goal under 2 s)")
            print(
                f"  CPU of {args.large} bare TLS handshakes alone {floor:7.3f} s "
                f"(the floor here; the run costs {cpu / floor:4.2f}x it, "
                f"{cpu - floor:+.3f} s beyond it)"
            )
            print(
                f"  wall of {args.large} bare TLS handshakes alone {floor_wall:7.3f} s "
                f"({floor_wall / chain:4.2f}x the chain; the run takes "
                f"{wall / floor_wall:4.2f}x it)"
            )
            if std_runs:
                std_wall = statistics.median(r.duration_s for r in std_runs)
                std_cpu = statistics.median(r.cpu_s for r in std_runs)
                print(
                    f"  the same on asyncio's own loop (not uvloop): wall median "
                    f"{std_wall:7.3f} s ({std_wall / chain:4.2f}x the chain), "
                    f"CPU median {std_cpu:7.3f} s"
                )
            tcp = plan_for(ep, range(args.large), args.dropped, Protocol.TCP)
            tcp_runs = [aksflight(tcp, options) for _ in range(args.runs)]
            tcp_wall = statistics.median(r.duration_s for r in tcp_runs)
            tcp_cpu = statistics.median(r.cpu_s for r in tcp_runs)
            print(f"{args.large} TCP endpoints (DNS + connect, {len(tcp.checks)} checks)")
            print(
                f"  wall median {tcp_wall:7.3f} s ({tcp_wall / chain:4.2f}x the chain), "
                f"CPU median {tcp_cpu:7.3f} s"
            )


if __name__ == "__main__":
    main()
