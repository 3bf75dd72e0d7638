"""up/status/down leave nothing behind, also after a crash; labs coexist; up is fast."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aksflight.lab import (
    LabCommandError,
    LabState,
    LabStateError,
    down,
    exec_in_node,
    load_state,
    render,
    spec_from_hosts,
    status,
    up,
)
from aksflight.lab.system import is_alive
from tests.lab.conftest import LabFactory
from tests.lab.lab_support import ip_binary, namespaces_with_prefix, root_links, unique_lab_name
from tests.lab.test_lab_network import connect, resolve

pytestmark = pytest.mark.lab

HOSTS = [("mcr.microsoft.com", (443,)), ("db.example.com", (5432,))]


def assert_nothing_left(state: LabState) -> None:
    assert namespaces_with_prefix(f"{state.name}-") == []
    assert f"{state.name}-" not in root_links()
    assert not any(is_alive(pid) for pid in state.pids.values())
    assert not Path(f"/etc/netns/{state.name}-node").exists()
    assert not Path(state.state_dir).exists()


def kill_and_wait(pid: int) -> None:
    """SIGKILL is delivered asynchronously: wait until the process is really dead."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.005)


@pytest.fixture
def fresh(lab_available: None, tmp_path: Path):
    """A lab name and state dir for tests that drive up/down themselves."""
    name = unique_lab_name()
    state_dir = tmp_path / name
    yield name, state_dir
    down(name, state_dir)


def test_up_status_down_leaves_nothing_and_down_is_idempotent(fresh) -> None:
    name, state_dir = fresh
    state = up(spec_from_hosts(HOSTS, name=name), state_dir)
    assert sorted(namespaces_with_prefix(f"{name}-")) == sorted(state.namespaces.values())
    assert load_state(name, state_dir) == state
    assert status(name, state_dir).running

    teardown = down(name, state_dir)
    assert sorted(teardown.processes_stopped) == sorted(state.pids.values())
    assert sorted(teardown.namespaces_removed) == sorted(state.namespaces.values())
    assert_nothing_left(state)
    assert not status(name, state_dir).running

    again = down(name, state_dir)
    assert again.processes_stopped == [] and again.namespaces_removed == []
    with pytest.raises(LabStateError, match="not up"):
        load_state(name, state_dir)


def test_down_after_a_crash_cleans_up(fresh) -> None:
    name, state_dir = fresh
    state = up(spec_from_hosts(HOSTS, name=name), state_dir)
    stray = subprocess.Popen(
        [ip_binary(), "netns", "exec", state.node_namespace, "sleep", "60"], start_new_session=True
    )
    for pid in state.pids.values():
        kill_and_wait(pid)
    lab_status = status(name, state_dir)
    assert not lab_status.running
    assert lab_status.processes == {"dnsmasq": False, "endpoints-0": False}
    assert lab_status.missing_namespaces == []

    teardown = down(name, state_dir)
    assert stray.pid in teardown.processes_stopped
    assert stray.wait(timeout=5) == -signal.SIGTERM
    assert_nothing_left(state)


def test_down_without_state_file_still_removes_namespaces(fresh) -> None:
    name, state_dir = fresh
    state = up(spec_from_hosts(HOSTS, name=name), state_dir)
    (state_dir / "state.json").unlink()
    teardown = down(name, state_dir)
    assert sorted(teardown.namespaces_removed) == sorted(state.namespaces.values())
    assert_nothing_left(state)


def test_up_over_a_half_dead_lab_rebuilds_it(fresh) -> None:
    name, state_dir = fresh
    first = up(spec_from_hosts(HOSTS, name=name), state_dir)
    kill_and_wait(first.pids["endpoints-0"])
    second = up(spec_from_hosts(HOSTS, name=name), state_dir)
    assert status(name, state_dir).running
    assert not is_alive(first.pids["dnsmasq"])
    assert connect(second, "db.example.com", port=5432)["status"] == "connected"


def test_two_labs_coexist(make_lab: LabFactory) -> None:
    first = make_lab(HOSTS, drop=["mcr.microsoft.com"])
    second = make_lab(HOSTS)
    assert first.hosts == second.hosts  # same plan, separate namespaces
    assert status(first.name, first.state_dir).running
    assert status(second.name, second.state_dir).running
    assert connect(first, "mcr.microsoft.com", timeout=0.3)["status"] == "timeout"
    assert connect(second, "mcr.microsoft.com", cafile=second.ca_bundle)["status"] == "connected"


def test_up_of_twenty_hosts_is_fast(make_lab: LabFactory) -> None:
    hosts = [(f"svc{i}.example.com", (443, 8443)) for i in range(20)]
    started = time.perf_counter()
    state = make_lab(hosts, drop=["svc3.example.com"], privatelink=["svc4.example.com"])
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"up took {elapsed:.2f} s"
    assert len(set(state.hosts.values())) == 20
    assert resolve(state, "svc19.example.com")["addresses"] == [state.hosts["svc19.example.com"]]
    tls = connect(state, "svc19.example.com", 8443, cafile=state.ca_bundle)
    assert tls["status"] == "connected"


def test_exec_in_node_passes_environment_and_exit_code(make_lab: LabFactory) -> None:
    state = make_lab(HOSTS)
    completed = exec_in_node(state, ["sh", "-c", 'echo "$LAB_MARK"; exit 3'], {"LAB_MARK": "x1"})
    assert completed.returncode == 3
    assert completed.stdout == "x1\n"


def test_failed_up_tears_down_what_it_built(fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    name, state_dir = fresh
    real_argv = render.dnsmasq_argv

    def broken_argv(*args: str) -> list[str]:
        return [*real_argv(*args), "--no-such-dnsmasq-option"]

    monkeypatch.setattr(render, "dnsmasq_argv", broken_argv)
    with pytest.raises(LabCommandError, match="dnsmasq exited with") as caught:
        up(spec_from_hosts(HOSTS, name=name), state_dir)
    assert "\n" not in str(caught.value)
    assert namespaces_with_prefix(f"{name}-") == []
    assert not state_dir.exists()
