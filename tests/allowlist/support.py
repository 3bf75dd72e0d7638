"""Shared builders for allowlist tests: configs, allowlists, and readers for the outputs."""

from __future__ import annotations

import re
import shutil
from typing import Any

from reports.allowlist import Allowlist, RenderOptions, Target, build_allowlist
from rules.catalogue import requirements_for
from rules.config import EnvironmentConfig, parse_config
from tests.conftest import example_config

FULL_CONFIG = "token-auth-private-endpoints.yaml"


def config_with(**overrides: Any) -> EnvironmentConfig:
    data: dict[str, Any] = {
        "region": "westeurope",
        "cluster": {"name": "ml-weu", "api_server_fqdn": "ml-weu-1.hcp.westeurope.azmk8s.io"},
        "registry": "mlweuacr",
        "storage_account": "mlweustorage",
        "network": {"source_cidrs": ["10.1.16.0/20"]},
    }
    data.update(overrides)
    return parse_config(data)


def full_allowlist(*, fqdn_tag: bool = True) -> Allowlist:
    config = example_config(FULL_CONFIG)
    return build_allowlist(
        requirements_for(config),
        config.network.source_cidrs,
        dns_servers=config.network.nameservers,
        fqdn_tag=fqdn_tag,
    )


def fake_resolution(allowlist: Allowlist) -> dict[str, tuple[str, ...]]:
    """Documentation addresses (RFC 5737 / 3849) for every concrete name, one v4 and one v6."""
    out = {}
    hosts = [r.destination.value for r in allowlist.rules if r.destination.kind is Target.FQDN]
    for index, host in enumerate(dict.fromkeys(hosts), start=1):
        out[host] = (f"192.0.2.{index}", f"2001:db8::{index:x}")
    return out


def resolved_options(allowlist: Allowlist) -> RenderOptions:
    return RenderOptions(resolved=fake_resolution(allowlist), resolved_at="2026-01-01 00:00 UTC")


def have(program: str) -> bool:
    return shutil.which(program) is not None


# -- a reader for the Bicep subset the renderer writes (no Bicep compiler offline) ----------

_TOKEN = re.compile(
    r"\s*(?:(//[^\n]*)|('(?:[^'\\]|\\.)*')|([A-Za-z_][A-Za-z0-9_]*)\s*:|(-?\d+)|(true|false)"
    r"|([{}\[\]]))"
)


def bicep_literal(text: str) -> Any:
    """Parse a Bicep object/array literal (strings, ints, bools, nested) into Python data."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"unexpected Bicep text at {text[position : position + 40]!r}")
        position = match.end()
        comment, string, key, number, boolean, punct = match.groups()
        if comment:
            continue
        if string:
            body = string[1:-1]
            tokens.append(("str", re.sub(r"\\(.)", r"\1", body)))
        elif key:
            tokens.append(("key", key))
        elif number:
            tokens.append(("int", number))
        elif boolean:
            tokens.append(("bool", boolean))
        else:
            tokens.append(("punct", punct))

    def value(index: int) -> tuple[Any, int]:
        kind, token = tokens[index]
        if kind == "str":
            return token, index + 1
        if kind == "int":
            return int(token), index + 1
        if kind == "bool":
            return token == "true", index + 1
        if token == "{":
            out: dict[str, Any] = {}
            index += 1
            while tokens[index] != ("punct", "}"):
                key_kind, key = tokens[index]
                assert key_kind == "key", tokens[index]
                out[key], index = value(index + 1)
            return out, index + 1
        if token == "[":
            items = []
            index += 1
            while tokens[index] != ("punct", "]"):
                item, index = value(index)
                items.append(item)
            return items, index + 1
        raise ValueError(f"unexpected token {token!r}")

    result, end = value(0)
    assert end == len(tokens), "trailing Bicep tokens"
    return result


def bicep_properties(text: str) -> Any:
    """The `properties:` literal of the rule collection group resource."""
    start = text.index("  properties: ") + len("  properties: ")
    end = text.rindex("\n}")
    return bicep_literal(text[start:end])
