"""The runner on real plans from the catalogue and on small hand-made ones, against
dnsmasq and TLS servers on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme

from preflight.errors import OptionsError
from preflight.options import ProbeOptions
from preflight.runner import EventKind, RunEvent, RunResult, run_plan
from rules.catalogue import requirements_for
from rules.evaluate import evaluate
from rules.model import CheckKind, Phase, ProbeStatus, Protocol, Requirement, Status
from rules.plan import NodeState, Plan, build_plan
from tests.conftest import example_config
from tests.preflight.conftest import requirement, run
from tests.preflight.servers import Dnsmasq, TLSServer, silent_nameserver, stalled_listener

Start = Callable[[str, trustme.LeafCert], TLSServer]
LAB_ADDRESS = "127.0.0.2"


def lab_plan(port: int) -> Plan:
    """The lab example's full plan, every endpoint moved to `port` on loopback."""
    reqs = [
        dataclasses.replace(r, port=port) if r.port is not None else r
        for r in requirements_for(example_config("lab.yaml"))
    ]
    return build_plan(reqs)


def hosts_of(plan: Plan) -> list[str]:
    return [host for host, _ in plan.probe_targets()]


@dataclasses.dataclass
class Lab:
    plan: Plan
    server: TLSServer
    options: ProbeOptions


@pytest.fixture
def make_lab(
    tmp_path: Path,
    ca: trustme.CA,
    ca_bundle: Path,
    dnsmasq: Callable[..., Dnsmasq],
    tls_server: Start,
) -> Callable[..., Lab]:
    """dnsmasq answering every name of the plan with one loopback address (NXDOMAIN for
    the names given), and one TLS server holding a certificate for all of them."""

    def make(*nxdomain: str) -> Lab:
        names = hosts_of(lab_plan(443))
        server = tls_server(LAB_ADDRESS, ca.issue_cert(*names))
        zone = dnsmasq(
            *(
                f"--address=/{n}/" if n in nxdomain else f"--address=/{n}/{LAB_ADDRESS}"
                for n in names
            )
        )
        options = ProbeOptions(
            nameservers=[zone.nameserver],
            ca_bundle=ca_bundle,
            timeout=2,
            environ={"HOME": str(tmp_path)},  # no Kubernetes credentials: k8s checks skip
        )
        return Lab(lab_plan(server.port), server, options)

    return make


def run_with_events(plan: Plan, options: ProbeOptions) -> tuple[RunResult, list[RunEvent]]:
    events: list[RunEvent] = []
    result = run(run_plan(plan, options, on_event=events.append))
    return result, events


def test_open_lab_every_probe_passes(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()
    result, events = run_with_events(lab.plan, lab.options)
    probed = [c for c in lab.plan.checks.values() if c.kind is not CheckKind.PEER]
    assert sorted(result.observations) == sorted(c.id for c in probed)
    for check in probed:
        obs = result.observations[check.id]
        expected = ProbeStatus.SKIPPED if check.kind is CheckKind.KUBERNETES else ProbeStatus.OK
        assert obs.status is expected, (check.id, obs.status, obs.detail)
    for peer in ("peer:router", "peer:model-pods"):
        assert result.results[peer].state is NodeState.SKIPPED
    gates = [n for n in lab.plan.graph if n.startswith("phase:")]
    assert {result.results[g].state for g in gates} == {NodeState.OK}
    # One connection per endpoint: TCP, TLS and HTTP of a host share it. A TCP-only
    # check closes its connection before the server's accept loop may have counted it.
    endpoints = {(c.target, c.port) for c in probed if c.kind is CheckKind.TCP}
    deadline = time.monotonic() + 2
    while lab.server.connections < len(endpoints) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert lab.server.connections == len(endpoints)
    # The evaluation reconstructs the same story from the observations.
    evaluation = evaluate(lab.plan, result.observations)
    assert not [f for f in evaluation.findings if f.status is Status.BLOCKED]
    started = [e.node_id for e in events if e.kind is EventKind.STARTED]
    assert sorted(started) == sorted(result.observations)
    assert result.duration_s > 0 and result.cpu_s > 0


def test_nxdomain_blocks_its_chain_and_every_later_phase(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab("mcr.microsoft.com")
    result, events = run_with_events(lab.plan, lab.options)
    port = lab.server.port
    root = "dns:mcr.microsoft.com"
    assert result.observations[root].status is ProbeStatus.NXDOMAIN
    own_chain = [f"{k}:mcr.microsoft.com:{port}" for k in ("tcp", "tls", "http")]
    later = [c.id for c in lab.plan.checks.values() if c.phase is not Phase.ROUTER_INSTALL]
    blocked = {e.node_id: e for e in events if e.result and e.result.state is NodeState.BLOCKED}
    for node in own_chain + later:
        assert node not in result.observations, node
        assert node in blocked, node
        assert blocked[node].result is not None and blocked[node].result.root == root
        assert blocked[node].observation is None
    # The API server's chain, in the same phase, still ran.
    api = "lab-aks-00000000.hcp.eastus.azmk8s.io"
    assert result.observations[f"http:{api}:{port}"].status is ProbeStatus.OK
    assert result.results["phase:router-install"].state is NodeState.BLOCKED
    evaluation = evaluate(lab.plan, result.observations)
    findings = {f.check.id: f for f in evaluation.findings}
    for node in own_chain + later:
        assert findings[node].status is Status.BLOCKED
        assert findings[node].blocked_by == root
    assert evaluation.first_failing_phase is Phase.ROUTER_INSTALL


def stalled_plan(
    names: list[str], dnsmasq: Callable[..., Dnsmasq], ports: list[int]
) -> tuple[Plan, str]:
    zone = dnsmasq(*(f"--address=/{n}/127.0.0.1" for n in names))
    plan = build_plan(requirement(n, p) for n, p in zip(names, ports, strict=True))
    return plan, zone.nameserver


def test_two_stalled_handshakes_overlap(dnsmasq: Callable[..., Dnsmasq]) -> None:
    names = ["a.stall.test", "b.stall.test"]
    with stalled_listener() as port_a, stalled_listener() as port_b:
        plan, nameserver = stalled_plan(names, dnsmasq, [port_a, port_b])
        started = time.perf_counter()
        result = run(run_plan(plan, ProbeOptions(nameservers=[nameserver], timeout=1)))
        elapsed = time.perf_counter() - started
    assert result.observations[f"tls:a.stall.test:{port_a}"].status is ProbeStatus.TIMEOUT
    assert result.observations[f"tls:b.stall.test:{port_b}"].status is ProbeStatus.TIMEOUT
    assert result.results[f"http:a.stall.test:{port_a}"].root == f"tls:a.stall.test:{port_a}"
    assert 1.0 <= elapsed < 1.5
    assert 1.0 <= result.duration_s < 1.5


def test_concurrency_is_bounded(dnsmasq: Callable[..., Dnsmasq]) -> None:
    names = ["a.stall.test", "b.stall.test"]
    with stalled_listener() as port_a, stalled_listener() as port_b:
        plan, nameserver = stalled_plan(names, dnsmasq, [port_a, port_b])
        options = ProbeOptions(nameservers=[nameserver], timeout=0.4, concurrency=1)
        result, events = run_with_events(plan, options)
    in_flight = peak = 0
    for event in events:
        if event.kind is EventKind.STARTED:
            in_flight += 1
            peak = max(peak, in_flight)
        elif event.observation is not None:
            in_flight -= 1
    assert peak == 1
    assert result.duration_s >= 0.8  # the two stalls could not overlap


def test_dns_timeouts_overlap() -> None:
    names = ["a.example.com", "b.example.com", "c.example.com"]
    plan = build_plan(requirement(n, 443) for n in names)
    with silent_nameserver() as nameserver:
        result = run(run_plan(plan, ProbeOptions(nameservers=[nameserver], timeout=1)))
    assert {result.observations[f"dns:{n}"].status for n in names} == {ProbeStatus.DNS_TIMEOUT}
    assert result.duration_s < 1.5
    for n in names:
        assert result.results[f"tcp:{n}:443"].root == f"dns:{n}"


def test_a_slow_branch_does_not_hold_up_the_others(
    dnsmasq: Callable[..., Dnsmasq], tls_server: Start, ca: trustme.CA, ca_bundle: Path
) -> None:
    """The fast host's HTTP check (a later generation) ends before the slow host's TLS
    check: nodes start when their own prerequisites finish, not generation by generation."""
    server = tls_server("127.0.0.1", ca.issue_cert("fast.example.com"))
    with stalled_listener() as slow_port:
        zone = dnsmasq(
            "--address=/fast.example.com/127.0.0.1", "--address=/slow.example.com/127.0.0.1"
        )
        plan = build_plan(
            [
                requirement("fast.example.com", server.port),
                requirement("slow.example.com", slow_port),
            ]
        )
        options = ProbeOptions(nameservers=[zone.nameserver], ca_bundle=ca_bundle, timeout=1)
        result, events = run_with_events(plan, options)
    finished = [e.node_id for e in events if e.kind is EventKind.FINISHED]
    fast_http = f"http:fast.example.com:{server.port}"
    slow_tls = f"tls:slow.example.com:{slow_port}"
    assert result.observations[fast_http].status is ProbeStatus.OK
    assert result.observations[slow_tls].status is ProbeStatus.TIMEOUT
    assert finished.index(fast_http) < finished.index(slow_tls)


def test_ip_literal_hosts_have_no_dns_check(tls_server: Start, ca: trustme.CA) -> None:
    server = tls_server("127.0.0.4", ca.issue_cert("127.0.0.4"))
    plan = build_plan([requirement("127.0.0.4", server.port, Protocol.TCP)])
    result = run(run_plan(plan, ProbeOptions(timeout=2)))
    assert sorted(result.observations) == [f"tcp:127.0.0.4:{server.port}"]
    obs = result.observations[f"tcp:127.0.0.4:{server.port}"]
    assert obs.status is ProbeStatus.OK
    assert obs.evidence["address"] == "127.0.0.4"


class _HangingResolver:
    """Ignores its own lifetime: only the runner's backstop ends the check."""

    nameservers: ClassVar[list[str]] = ["192.0.2.53"]  # never contacted

    async def resolve(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(60)


class _BrokenResolver:
    nameservers: ClassVar[list[str]] = ["192.0.2.53"]  # never contacted

    async def resolve(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("resolver bug")


def test_backstop_ends_a_probe_that_ignores_its_timeout() -> None:
    plan = build_plan([requirement("hang.example.com", 443)])
    options = ProbeOptions(timeout=0.2, resolver_factory=lambda _: _HangingResolver())  # type: ignore[arg-type, return-value]
    result = run(run_plan(plan, options))
    obs = result.observations["dns:hang.example.com"]
    assert obs.status is ProbeStatus.DNS_TIMEOUT
    assert result.duration_s < 2.0


def test_a_probe_bug_is_recorded_not_raised() -> None:
    plan = build_plan([requirement("bug.example.com", 443), requirement("also.example.com", 443)])
    options = ProbeOptions(timeout=1, resolver_factory=lambda _: _BrokenResolver())  # type: ignore[arg-type, return-value]
    result = run(run_plan(plan, options))
    obs = result.observations["dns:bug.example.com"]
    assert obs.status is ProbeStatus.ERROR
    assert obs.detail == "RuntimeError: resolver bug"
    assert result.results["tcp:bug.example.com:443"].state is NodeState.BLOCKED


def test_an_event_handler_error_stops_the_run_and_propagates() -> None:
    plan = build_plan([requirement("a.example.com", 443)])

    def explode(event: RunEvent) -> None:
        raise ValueError("handler failed")

    with silent_nameserver() as nameserver, pytest.raises(ValueError, match="handler failed"):
        run(run_plan(plan, ProbeOptions(nameservers=[nameserver], timeout=5), on_event=explode))


def test_bad_explicit_kubeconfig_fails_before_any_probe(fakekube: Any) -> None:
    plan = build_plan(requirements_for(example_config("lab.yaml")))
    options = ProbeOptions(kubeconfig=fakekube.kubeconfig_path, context="missing")
    events: list[RunEvent] = []
    with pytest.raises(OptionsError, match=r"^kubeconfig: "):
        run(run_plan(plan, options, on_event=events.append))
    assert events == []


def test_fake_clock_times_the_run() -> None:
    ticks = iter(range(1000))
    plan = build_plan(
        [
            Requirement(
                id="t/x",
                catalogue="t",
                host="*.example.com",
                port=443,
                protocol=Protocol.HTTPS,
                phases=(Phase.ROUTER_INSTALL,),
                purpose="p",
                source="s",
            )
        ]
    )
    result = run(run_plan(plan, ProbeOptions(clock=lambda: float(next(ticks)))))
    assert result.duration_s == 1.0
    assert result.observations == {}


def test_the_result_repr_stays_short(make_lab: Callable[..., Lab]) -> None:
    """asyncio.run formats its main task's result on the way out: a full repr of every
    observation would cost a big plan a tenth of a second after the run."""
    lab = make_lab()
    result = run(run_plan(lab.plan, lab.options))
    text = repr(result)
    assert text.startswith(f"RunResult({len(result.observations)} observations, ")
    assert len(text) < 100
