"""`aksflight allowlist` end to end: flags, files, warnings, exit codes, and --resolve."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.mgmt.network import models as m

from aksflight.cli import build_parser, main
from aksflight.commands import allowlist as command
from tests.conftest import EXAMPLES

CONFIG = str(EXAMPLES / "token-auth-private-endpoints.yaml")
LAB = str(EXAMPLES / "lab.yaml")


def test_writes_arm_json_to_a_file_and_warnings_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rcg.json"
    assert (
        main(["allowlist", "-c", CONFIG, "-f", "azure-firewall", "--fqdn-tag", "-o", str(out)]) == 0
    )
    group = m.FirewallPolicyRuleCollectionGroup(json.loads(out.read_text()))
    assert group.name == "aksflight"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "aksflight: warning: aks-base/aks-fqdn-tag: the tag has missed hosts" in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["rcg.json"]  # no temporary file left


def test_source_cidr_flags_replace_the_configured_subnets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["allowlist", "-c", CONFIG, "-f", "csv", "--source-cidr", "10.9.0.0/16"]) == 0
    body = capsys.readouterr().out.splitlines()[1:]
    assert body and all(",10.9.0.0/16," in line for line in body)


def test_phase_flag_limits_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["allowlist", "-c", CONFIG, "-f", "txt", "--phase", "model-deploy"]) == 0
    text = capsys.readouterr().out
    assert "mlweuacr.azurecr.io" in text and "mcr.microsoft.com" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-f", "csv", "--source-cidr", "10.0.0.1/8"], "--source-cidr: invalid CIDR '10.0.0.1/8'"),
        (["-f", "csv", "--resolve"], "--resolve: only the nftables format"),
        (["-f", "pf"], "invalid choice: 'pf'"),
        (["-f", "csv", "--phase", "later"], "--phase: unknown phase 'later'"),
        (["-f", "azure-firewall", "--group-priority", "99"], "outside 100-65000"),
        (["-f", "cilium", "--namespace", "Bad_NS"], "namespace"),
        (["-f", "nftables", "--resolve", "--nameserver", "dns.example"], "--nameserver"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["allowlist", "-c", CONFIG, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_no_sources_is_exit_2_for_formats_that_need_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "region: eastus\ncluster: {name: c1}\nregistry: myacr01\nstorage_account: st01\n"
    )
    assert main(["allowlist", "-c", str(config), "-f", "squid"]) == 2
    assert "no source CIDRs" in capsys.readouterr().err
    out = tmp_path / "never.conf"
    assert main(["allowlist", "-c", str(config), "-f", "squid", "-o", str(out)]) == 2
    assert not out.exists()  # nothing half-written


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[int]:
    """A real DNS server on 127.0.0.1 that knows two of the lab config's names."""
    binary = shutil.which("dnsmasq")
    if binary is None:
        pytest.skip("needs dnsmasq")
    port = _free_udp_port()
    process = subprocess.Popen(
        [
            binary,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            f"--port={port}",
            f"--pid-file={tmp_path / 'd.pid'}",
            "--address=/mcr.microsoft.com/192.0.2.10",
            "--address=/labacr01.azurecr.io/192.0.2.20",
            "--address=/labacr01.azurecr.io/2001:db8::20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        resolve = command.dns_resolver(["127.0.0.1"], port=port, timeout=2)
        deadline = time.monotonic() + 10
        while not resolve("mcr.microsoft.com"):
            assert time.monotonic() < deadline, "dnsmasq did not answer"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_resolve_fills_the_sets_from_a_real_dns_server_and_warns_about_the_rest(
    dnsmasq: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["allowlist", "-c", LAB, "-f", "nftables", "--resolve"]
    args = build_parser(argv).parse_args(argv)
    resolver = command.dns_resolver(["127.0.0.1"], port=dnsmasq, timeout=5)
    assert command.run(args, resolver=resolver) == 0
    captured = capsys.readouterr()
    assert "elements = { 192.0.2.10 }" in captured.out
    assert "elements = { 192.0.2.20 }" in captured.out
    assert "2001:db8::20" not in captured.out  # the lab's node subnet is IPv4
    assert "resolved at 20" in captured.out and "go stale" in captured.out
    assert "no address found for lab-aks-00000000.hcp.eastus.azmk8s.io" in captured.err


def test_an_output_file_gets_the_usual_permissions_and_a_bad_directory_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rules.csv"
    assert main(["allowlist", "-c", CONFIG, "-f", "csv", "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o644 == 0o644
    missing = tmp_path / "no-such-dir" / "rules.csv"
    assert main(["allowlist", "-c", CONFIG, "-f", "csv", "-o", str(missing)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_nameserver_without_resolve_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["allowlist", "-c", CONFIG, "-f", "nftables", "--nameserver", "10.0.0.53"]
    assert main(argv) == 2
    assert "--nameserver: only used with --resolve" in capsys.readouterr().err
