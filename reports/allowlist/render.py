"""One entry point for every format: `render_allowlist(fmt, allowlist, options)`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from reports.allowlist import azure, cilium, iac, nftables, squid, tabular
from reports.allowlist.errors import UnsupportedError
from reports.allowlist.options import RenderOptions
from reports.allowlist.ruleset import Allowlist


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    warnings: tuple[str, ...]


def _json(document: object) -> str:
    """Indented JSON; orjson because the standard library's indenting encoder is pure Python."""
    return (
        orjson.dumps(document, option=orjson.OPT_INDENT_2, default=_model_mapping).decode() + "\n"
    )


def _model_mapping(value: object) -> dict[str, object]:
    """An azure-mgmt-network model (a mapping over its REST payload) as that payload.

    Writing the model itself is what `as_dict()` returns, without building the copy first
    (a third of the format's time for 10,000 rules); tests/allowlist compare the two."""
    if isinstance(value, Mapping):
        return dict(value.items())
    raise TypeError(f"{type(value).__name__} is not JSON")


def _azure_firewall(allowlist: Allowlist, options: RenderOptions) -> tuple[str, list[str]]:
    group, warnings = azure.firewall_group(allowlist, options)
    return _json(group), warnings


def _azure_iac(
    render: Callable[[dict[str, object], str, list[str]], str],
) -> Callable[[Allowlist, RenderOptions], tuple[str, list[str]]]:
    def renderer(allowlist: Allowlist, options: RenderOptions) -> tuple[str, list[str]]:
        group, warnings = azure.rest_group(allowlist, options)
        all_warnings = [*allowlist.warnings, *warnings]
        return render(group, allowlist.title, all_warnings), warnings

    return renderer


def _nsg(allowlist: Allowlist, options: RenderOptions) -> tuple[str, list[str]]:
    group, warnings = azure.network_security_group(allowlist, options)
    return _json(group), warnings


def _csv(allowlist: Allowlist, options: RenderOptions) -> tuple[str, list[str]]:
    return tabular.render_csv(allowlist), []


def _txt(allowlist: Allowlist, options: RenderOptions) -> tuple[str, list[str]]:
    return tabular.render_txt(allowlist), []


RENDERERS: dict[str, Callable[[Allowlist, RenderOptions], tuple[str, list[str]]]] = {
    "azure-firewall": _azure_firewall,
    "bicep": _azure_iac(iac.render_bicep),
    "terraform": _azure_iac(iac.render_terraform),
    "az-cli": _azure_iac(iac.render_az_cli),
    "nsg": _nsg,
    "squid": squid.render_squid,
    "nftables": nftables.render_nftables,
    "cilium": cilium.render_cilium,
    "csv": _csv,
    "txt": _txt,
}
FORMATS = tuple(RENDERERS)


def render_allowlist(
    fmt: str, allowlist: Allowlist, options: RenderOptions | None = None
) -> Rendered:
    """The file for `fmt` and the warnings to show the admin (left-out rules, caveats)."""
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise UnsupportedError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    text, warnings = renderer(allowlist, options or RenderOptions())
    return Rendered(text, tuple(dict.fromkeys([*allowlist.warnings, *warnings])))
