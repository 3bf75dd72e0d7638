"""`aksflight lab`: one-line errors with exit 2, and a real up/status/exec/down round trip."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aksflight.lab.cli import add_lab_parser, main, parse_host
from tests.lab.lab_support import namespaces_with_prefix, unique_lab_name


def lab_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aksflight.lab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--host", "bad_name"], "host name 'bad_name' is not a valid DNS name"),
        (["up", "--host", "a.example.com", "--drop", "b.example.com"], "drop: host b.example.com"),
        (["up", "--host", "a.example.com:https"], "port 'https' is not a number"),
        (["up"], "lab up needs at least one --host"),
        (["up", "--name", "Bad-Name", "--host", "a.example.com"], "lab name 'Bad-Name'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("aksflight lab: ")
    assert message in err
    assert err.count("\n") == 1


def test_parse_host() -> None:
    assert parse_host("a.example.com") == ("a.example.com", (443,))
    assert parse_host("db.example.com:5432,443") == ("db.example.com", (5432, 443))


def test_plan_hosts_hook_adds_a_config_option(tmp_path: Path) -> None:
    seen: list[str] = []

    def plan_hosts(args: argparse.Namespace) -> list[tuple[str, tuple[int, ...]]]:
        seen.append(args.config)
        return [("mcr.microsoft.com", (443,))]

    parser = argparse.ArgumentParser(prog="aksflight")
    add_lab_parser(parser.add_subparsers(dest="command"), plan_hosts=plan_hosts)
    args = parser.parse_args(["lab", "up", "-c", "env.yaml", "--drop", "x.example.com"])
    # The hook runs before validation: a behaviour for a host not in the plan is bad input.
    assert args.handler(args) == 2
    assert seen == ["env.yaml"]


@pytest.mark.lab
def test_cli_round_trip(lab_available: None, tmp_path: Path) -> None:
    name = unique_lab_name()
    where = ["--name", name, "--state-dir", str(tmp_path / name)]
    try:
        built = lab_cli(
            "up", *where, "--host", "mcr.microsoft.com", "--host", "db.example.com:5432",
            "--reject", "mcr.microsoft.com", "-o", "json",
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        state = json.loads(built.stdout)
        assert state["namespaces"]["node"] == f"{name}-node"
        assert set(state["hosts"]) == {"mcr.microsoft.com", "db.example.com"}

        shown = lab_cli("status", *where)
        assert shown.returncode == 0
        assert "mcr.microsoft.com" in shown.stdout and "reject" in shown.stdout

        ran = lab_cli("exec", *where, "--", "ip", "-4", "-br", "addr", "show", "dev", f"{name}-nf")
        assert ran.returncode == 0
        assert state["node_address"] in ran.stdout
        failed = lab_cli("exec", *where, "--", "sh", "-c", "exit 7")
        assert failed.returncode == 7
    finally:
        removed = lab_cli("down", *where, "-o", "json")
    assert removed.returncode == 0, removed.stderr
    assert len(json.loads(removed.stdout)["namespaces_removed"]) == 4
    assert namespaces_with_prefix(f"{name}-") == []
    gone = lab_cli("status", *where, "-o", "json")
    assert gone.returncode == 1
    assert json.loads(gone.stdout)["running"] is False
