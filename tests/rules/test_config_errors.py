"""Bad config files: every field wrong or missing gives exit 2 and one line naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from aksflight.cli import main

VALID: dict[str, Any] = {
    "cloud": "public",
    "region": "eastus",
    "cluster": {
        "name": "myaks",
        "api_server_fqdn": "myaks-1a2b3c4d.hcp.eastus.azmk8s.io",
        "network_plugin": "azure",
        "purpose": "FastProd",
    },
    "workspace": {"region": "eastus"},
    "registry": "myacr01",
    "storage_account": "mystorage",
    "service": {"auth": "key", "domain": "auto", "leaf_domain_label": "scoring"},
    "extra_dependencies": [
        {
            "host": "mydb.postgres.database.azure.com",
            "port": 5432,
            "protocol": "tcp",
            "purpose": "feature store",
        }
    ],
    "network": {"nameservers": [], "source_cidrs": ["10.240.0.0/16"]},
    "catalogues": ["azureml-aks"],
}

_DELETE = object()

# (path, bad value or _DELETE, text the message must contain)
CASES: list[tuple[str, Any, str]] = [
    ("cloud", "moon", "cloud"),
    ("cloud", 3, "cloud"),
    ("region", "mars-east", "region"),
    ("region", _DELETE, "region: required"),
    ("region", ["eastus"], "region"),
    ("cluster", _DELETE, "cluster: required"),
    ("cluster", "myaks", "cluster"),
    ("cluster.name", "-bad-", "cluster"),
    ("cluster.name", "a" * 64, "cluster"),
    ("cluster.name", _DELETE, "cluster.name: required"),
    ("cluster.api_server_fqdn", "bad_host!.example.com", "cluster.api_server_fqdn"),
    ("cluster.api_server_fqdn", "nodots", "cluster.api_server_fqdn"),
    ("cluster.api_server_fqdn", "x" * 64 + ".example.com", "cluster.api_server_fqdn"),
    ("cluster.api_server_fqdn", "myaks.hcp.eastus.azmk8s.io\n", "cluster.api_server_fqdn"),
    ("cluster.network_plugin", "calico", "cluster.network_plugin"),
    ("cluster.purpose", "Prod", "cluster.purpose"),
    ("cluster.colour", "blue", "cluster.colour: unknown key"),
    ("workspace.region", "atlantis", "workspace.region"),
    ("workspace.region", 5, "workspace.region"),
    ("registry", "acr", "registry"),
    ("registry", "my-acr-01", "registry"),
    ("registry", "a" * 51, "registry"),
    ("registry", _DELETE, "registry: required"),
    ("registry", 12345, "registry"),
    ("storage_account", "My_Storage", "storage_account"),
    ("storage_account", "ab", "storage_account"),
    ("storage_account", "a" * 25, "storage_account"),
    ("storage_account", _DELETE, "storage_account: required"),
    ("service.auth", "keys", "service.auth"),
    ("service.domain", "automatic", "service.domain"),
    ("service.leaf_domain_label", "Bad Label", "service.leaf_domain_label"),
    ("service.leaf_domain_label", _DELETE, "leaf_domain_label is required"),
    ("service.leaf_domain_label", "a" * 60, "service"),
    ("extra_dependencies", "mydb", "extra_dependencies"),
    ("extra_dependencies.0.host", "db.example.com; rm -rf /", "extra_dependencies[0].host"),
    ("extra_dependencies.0.host", "dь.example.com", "extra_dependencies[0].host"),
    ("extra_dependencies.0.host", _DELETE, "extra_dependencies[0].host: required"),
    ("extra_dependencies.0.port", 0, "extra_dependencies[0].port"),
    ("extra_dependencies.0.port", 70000, "extra_dependencies[0].port"),
    ("extra_dependencies.0.port", "5432", "extra_dependencies[0].port"),
    ("extra_dependencies.0.port", True, "extra_dependencies[0].port"),
    ("extra_dependencies.0.protocol", "icmp", "extra_dependencies[0].protocol"),
    ("extra_dependencies.0.purpose", "line\nbreak", "extra_dependencies[0].purpose"),
    ("extra_dependencies.0.extra", 1, "extra_dependencies[0].extra: unknown key"),
    ("network.nameservers", ["10.0.0.300"], "network.nameservers[0]"),
    ("network.nameservers", "10.0.0.1", "network.nameservers"),
    ("network.nameservers", ["fe80::1%eth0"], "network.nameservers[0]"),
    ("network.source_cidrs", ["10.240.0.4/16"], "network.source_cidrs[0]"),
    ("network.source_cidrs", ["10.240.0.0/33"], "network.source_cidrs[0]"),
    ("network.source_cidrs", ["0.0.0.0/0 "], "network.source_cidrs[0]"),
    ("network.private_endpoints", ["database"], "network.private_endpoints[0]"),
    ("network.proxy", "http://p", "network.proxy: unknown key"),
    ("catalogues", ["everything"], "catalogues[0]"),
    ("catalogues", "aks-base", "catalogues"),
    ("unexpected", 1, "unexpected: unknown key"),
]


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    key: Any = int(last) if last.isdigit() else last
    if value is _DELETE:
        del node[key]
    else:
        node[key] = value
    return data


def _run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    code = main(["plan", "-c", str(path), "-o", "json"])
    captured = capsys.readouterr()
    return code, captured.err


def test_valid_config_is_accepted(tmp_path: Path) -> None:
    from aksflight.config_file import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert load_config(path).registry.name == "myacr01"


@pytest.mark.parametrize(
    ("path", "value", "expected"), CASES, ids=[f"{c[0]}={c[1]!r}"[:60] for c in CASES]
)
def test_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str, value: Any, expected: str
) -> None:
    code, err = _run(tmp_path, yaml.safe_dump(_mutate(path, value), allow_unicode=True), capsys)
    assert code == 2
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    assert expected in err, err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "config is empty"),
        ("# only a comment\n", "config is empty"),
        ("cloud: [unclosed\n", "not valid YAML at line"),
        ("\tcloud: public\n", "not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("just a string\n", "must be a mapping"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("cloud: public\n---\ncloud: china\n", "one YAML document"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    code, err = _run(tmp_path, text, capsys)
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_binary_missing_directory_and_huge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["plan", "-c", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["plan", "-c", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["plan", "-c", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)
    assert main(["plan", "-c", str(huge)]) == 2
    assert "at most" in capsys.readouterr().err


def test_too_many_extra_dependencies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = copy.deepcopy(VALID)
    del data["extra_dependencies"]
    lines = "".join("  - {host: a.example.com, port: 1}\n" for _ in range(100_001))
    code, err = _run(tmp_path, yaml.safe_dump(data) + "extra_dependencies:\n" + lines, capsys)
    assert code == 2 and "extra_dependencies" in err


def test_bad_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(VALID))
    for argv in (
        ["plan"],
        ["plan", "-c", str(path), "-o", "pdf"],
        ["plan", "-c", str(path), "--phase", "launch"],
        ["nope"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_a_config_nested_too_deeply_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    path = tmp_path / f"deep.{suffix}"
    nested = "[" * 100_000 + "]" * 100_000
    path.write_text('{"a": ' + nested + "}" if suffix == "json" else f"a: {nested}\n")
    assert main(["plan", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("nested too deeply" in err or "nesting depth" in err)
