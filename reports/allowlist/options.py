"""Options that shape the rendered output of one format (names, priorities, resolved names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from reports.allowlist import safety
from reports.allowlist.errors import UnsafeValueError, UnsupportedError
from rules.names import check_label


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Every knob a format reads; the defaults give a usable file for each format."""

    group_name: str = "aksflight"
    group_priority: int = 500
    network_priority: int = 100
    application_priority: int = 200
    nsg_priority: int = 1000
    namespace: str = "azureml"
    nft_table: str = "aksflight"
    nft_chain: str = "allowlist"
    # nftables --resolve: concrete host -> its addresses, looked up when the file is made.
    resolved: Mapping[str, tuple[str, ...]] | None = None
    resolved_at: str = ""

    def __post_init__(self) -> None:
        problem = check_label(self.namespace)
        if problem:
            raise UnsafeValueError("namespace", self.namespace, problem)
        for label, value in (
            ("group name", self.group_name),
            ("nftables table", self.nft_table),
            ("nftables chain", self.nft_chain),
        ):
            safety.name(value, label)
        for label, number, low, high in (
            ("rule collection group priority", self.group_priority, 100, 65000),
            ("network collection priority", self.network_priority, 100, 65000),
            ("application collection priority", self.application_priority, 100, 65000),
            ("NSG priority", self.nsg_priority, 100, 4096),
        ):
            if isinstance(number, bool) or not low <= number <= high:
                raise UnsupportedError(f"{label}: {number} is outside {low}-{high}")
        if self.resolved_at:
            safety.text(self.resolved_at, "resolved at")
