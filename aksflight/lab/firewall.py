"""Loading a generated nftables allowlist into a lab's firewall, and taking it out again.

The contract (docs/lab.md): an allowlist adds rules (and, if it likes, named sets) to the
regular chain `allowlist` of `table inet aksflight`. The lab's base chain `forward` jumps
there after its own drop/reject rules, replies and DNS, so an `accept` in the allowlist
really lets a packet through; under default deny everything else meets the policy drop.
Base chains of its own would not work (an accept in one base chain does not override another
base chain's drop), so an allowlist that defines one, or another table, is refused.

Loading is atomic: the lab's own ruleset (which starts with `flush ruleset`) and the
allowlist go to `nft` in one transaction, so a bad allowlist leaves the old rules in place
and applying twice never duplicates rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aksflight.lab import render, system
from aksflight.lab.errors import LabCommandError, LabSpecError
from aksflight.lab.lifecycle import LabState


def _nft_in_fw(state: LabState, tools: system.Tools, *args: str, what: str) -> str:
    return system.run([tools.ip, "netns", "exec", state.namespaces["fw"], tools.nft, *args], what)


def _unexpected_objects(ruleset: dict[str, Any]) -> list[str]:
    """Tables and base chains the contract does not allow an allowlist to add."""
    problems: list[str] = []
    for item in ruleset.get("nftables", []):
        table = item.get("table")
        if table and (table.get("family"), table.get("name")) != ("inet", render.FIREWALL_TABLE):
            problems.append(f"table {table.get('family')} {table.get('name')}")
        chain = item.get("chain")
        if chain and "hook" in chain and chain.get("name") != render.FIREWALL_BASE_CHAIN:
            problems.append(f"base chain {chain.get('name')} (hook {chain.get('hook')})")
    return problems


def apply_firewall(state: LabState, ruleset_text: str) -> Path:
    """Replace the lab's allowlist with `ruleset_text`; returns the file that was loaded.

    Raises `LabSpecError` when the text breaks the contract and `LabCommandError` when nft
    rejects it (the message quotes nft's first error line); either way the previous rules stay.
    """
    if not ruleset_text.strip():
        raise LabSpecError("the allowlist is empty; use flush_firewall_allowlist to remove one")
    tools = system.find_tools()
    directory = Path(state.state_dir)
    allowlist = directory / "allowlist.nft"
    transaction = directory / "firewall-apply.nft"
    base = (directory / "fw.nft").read_text(encoding="utf-8")
    allowlist.write_text(ruleset_text if ruleset_text.endswith("\n") else ruleset_text + "\n")
    transaction.write_text(f'{base}include "{allowlist}"\n', encoding="utf-8")
    try:
        _nft_in_fw(state, tools, "-f", str(transaction), what="nft rejected the allowlist")
    except LabCommandError:
        allowlist.unlink(missing_ok=True)
        raise
    listing = json.loads(_nft_in_fw(state, tools, "-j", "list", "ruleset", what="nft list"))
    problems = _unexpected_objects(listing)
    if problems:
        flush_firewall_allowlist(state)
        raise LabSpecError(
            f"the allowlist must only fill chain {render.ALLOWLIST_CHAIN} of table inet "
            f"{render.FIREWALL_TABLE}; it defined {', '.join(problems)}"
        )
    return allowlist


def flush_firewall_allowlist(state: LabState) -> None:
    """Back to the lab's own rules (default deny stays deny); a no-op without an allowlist."""
    tools = system.find_tools()
    directory = Path(state.state_dir)
    _nft_in_fw(state, tools, "-f", str(directory / "fw.nft"), what="nft reload")
    (directory / "allowlist.nft").unlink(missing_ok=True)


def firewall_listing(state: LabState) -> str:
    """The fw namespace's current ruleset as text (for humans and for debugging tests)."""
    tools = system.find_tools()
    return _nft_in_fw(state, tools, "list", "ruleset", what="nft list")
