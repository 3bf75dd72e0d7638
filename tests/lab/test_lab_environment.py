"""Not root, or a missing binary: one-line `LabEnvironmentError`, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from aksflight.lab import LabEnvironmentError, down, spec_from_hosts, system, up
from aksflight.lab.cli import main


def test_not_root_is_refused_before_anything_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    with pytest.raises(LabEnvironmentError, match="needs root"):
        up(spec_from_hosts([("a.example.com", (443,))], name="t1"), tmp_path / "state")
    with pytest.raises(LabEnvironmentError, match="needs root"):
        down("t1", tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_missing_binary_names_its_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    for binary in ("ip", "nft"):
        (tmp_path / binary).write_text("#!/bin/sh\n")
        (tmp_path / binary).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(system, "_SBIN_DIRS", ())
    with pytest.raises(LabEnvironmentError, match="dnsmasq not found: install the dnsmasq-base"):
        system.find_tools()


def test_cli_reports_environment_errors_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    assert main(["status", "--name", "t1"]) == 2
    assert capsys.readouterr().err == (
        "aksflight lab: the network lab needs root (it creates network namespaces)\n"
    )
