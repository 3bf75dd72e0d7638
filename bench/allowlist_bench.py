"""Allowlist generation for 10,000 requirements (every format) and an audit of 5,000 rules.

Prints, per step, the median wall time and the median CPU time of this process over several
runs, and the wall time's ratio to a baseline measured in the same run (a JSON round trip of
10,000 plain rule dicts), since the machine is shared and noisy. Targets: each format under
1 s for 10,000 requirements (the allowlist built, then rendered: what one `aksflight
allowlist -f FORMAT` does after start-up); an audit of 5,000 rules against them under 1 s.
The imports a command pays once (the allowlist package, and the SDK models only
azure-firewall, nsg and the audit need) are timed in a fresh interpreter.

    .venv/bin/python bench/allowlist_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reports.allowlist import FORMATS, RenderOptions, Target, build_allowlist, render_allowlist
from reports.audit import audit_policy, load_policy
from rules.catalogue import requirements_for
from rules.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = 10_000
POLICY_RULES = 5_000
PROTOCOLS = ("https", "https", "https", "tcp", "udp", "http")


def config_data() -> dict[str, Any]:
    return {
        "region": "westeurope",
        "cluster": {"name": "bench", "api_server_fqdn": "bench-1.hcp.westeurope.azmk8s.io"},
        "registry": "benchacr",
        "storage_account": "benchstorage",
        "service": {"auth": "token"},
        "catalogues": ["aks-base", "azureml-workspace"],
        "network": {"source_cidrs": ["10.1.16.0/20", "10.1.32.0/20"], "nameservers": ["10.1.0.4"]},
        "extra_dependencies": [
            {
                "host": f"svc{i}.team{i % 97}.example.com",
                "port": 443 if i % 3 else 1024 + i % 5000,
                "protocol": PROTOCOLS[i % len(PROTOCOLS)],
                "purpose": f"dependency {i}",
            }
            for i in range(REQUIREMENTS)
        ],
    }


def policy_document() -> dict[str, Any]:
    """5,000 rules: exact names, wildcards, network rules to names and tags, a deny collection."""
    nodes = ["10.1.16.0/20"]
    app = [
        {
            "ruleType": "ApplicationRule",
            "name": f"app{i}",
            "sourceAddresses": nodes,
            "protocols": [{"protocolType": "Https", "port": 443}],
            "targetFqdns": [f"svc{i * 2}.team{(i * 2) % 97}.example.com"],
        }
        for i in range(3_000)
    ]
    app += [
        {
            "ruleType": "ApplicationRule",
            "name": f"wild{t}",
            "sourceAddresses": ["10.1.0.0/16"],
            "protocols": [{"protocolType": "Https", "port": 443}],
            "targetFqdns": [f"*.team{t}.example.com"],
        }
        for t in range(0, 97, 2)
    ]
    net = [
        {
            "ruleType": "NetworkRule",
            "name": f"net{i}",
            "ipProtocols": ["TCP", "UDP"],
            "sourceAddresses": nodes,
            "destinationFqdns": [f"svc{i * 3}.team{(i * 3) % 97}.example.com"],
            "destinationPorts": ["1024-6024"],
        }
        for i in range(POLICY_RULES - len(app) - 200)
    ]
    deny = [
        {
            "ruleType": "NetworkRule",
            "name": f"deny{i}",
            "ipProtocols": ["TCP"],
            "sourceAddresses": ["*"],
            "destinationAddresses": [f"203.0.113.{i % 250}"],
            "destinationPorts": ["443"],
        }
        for i in range(200)
    ]

    def collection(
        name: str, priority: int, action: str, rules: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": name,
            "priority": priority,
            "action": {"type": action},
            "rules": rules,
        }

    return {
        "value": [
            {
                "name": "deny",
                "properties": {
                    "priority": 100,
                    "ruleCollections": [collection("d", 100, "Deny", deny)],
                },
            },
            {
                "name": "allow",
                "properties": {
                    "priority": 200,
                    "ruleCollections": [
                        collection("net", 100, "Allow", net),
                        collection("web", 200, "Allow", app),
                    ],
                },
            },
        ]
    }


CPU: dict[str, float] = {}


def median_time(step: Callable[[], object], runs: int, label: str = "") -> float:
    """Median wall time; the median CPU time goes to CPU[label]."""
    walls, cpus = [], []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    CPU[label] = statistics.median(cpus)
    return statistics.median(walls)


def import_time(statement: str, runs: int, label: str) -> float:
    """Median wall time of `statement` in a fresh interpreter (what one command pays once)."""
    code = (
        "import time; w, c = time.perf_counter(), time.process_time(); "
        f"{statement}; print(time.perf_counter() - w, time.process_time() - c)"
    )
    walls, cpus = [], []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        wall, cpu = done.stdout.split()
        walls.append(float(wall))
        cpus.append(float(cpu))
    CPU[label] = statistics.median(cpus)
    return statistics.median(walls)


def report(name: str, seconds: float, baseline: float, note: str | None = None) -> None:
    cpu = CPU.get(name, 0.0)
    flag = ("" if seconds < 1 else "  (over 1 s)") if note is None else f"  ({note})"
    ratio = seconds / baseline
    print(f"{name:>18}: {seconds * 1e3:8.1f} ms wall {cpu * 1e3:8.1f} ms cpu {ratio:6.1f}x{flag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    config = parse_config(config_data())
    requirements = requirements_for(config)
    plain = [
        {"name": f"r{i}", "targetFqdns": [f"h{i}.example.com"], "port": 443}
        for i in range(REQUIREMENTS)
    ]
    baseline = median_time(lambda: json.loads(json.dumps(plain)), runs, "baseline")
    print(f"requirements: {len(requirements)}; runs per step: {runs}")
    print(
        f"baseline (JSON round trip of {REQUIREMENTS} plain rule dicts): {baseline * 1000:.1f} ms"
    )

    def build() -> Any:
        return build_allowlist(
            requirements, config.network.source_cidrs, dns_servers=config.network.nameservers
        )

    allowlist = build()
    resolved = {
        r.destination.value: (f"198.51.100.{i % 250}",)
        for i, r in enumerate(allowlist.rules)
        if r.destination.kind is Target.FQDN
    }
    rows = [("build_allowlist", median_time(build, runs, "build_allowlist"))]
    total = rows[0][1]
    for fmt in FORMATS:
        options = RenderOptions(resolved=resolved) if fmt == "nftables" else RenderOptions()
        if fmt == "nsg":
            options = RenderOptions(nsg_priority=100)
        try:
            seconds = median_time(
                lambda fmt=fmt, options=options: render_allowlist(fmt, allowlist, options),
                runs,
                fmt,
            )
        except Exception as exc:  # an NSG holds at most 1,000 rules: report, do not stop
            print(f"{fmt:>16}: {type(exc).__name__}: {exc}")
            continue
        rows.append((fmt, seconds))
        total += seconds
    for name, seconds in rows:
        report(name, seconds, baseline)
    # What one `aksflight allowlist -f FORMAT` does after start-up: build, then render.
    slowest, render_s = max(rows[1:], key=lambda row: row[1])
    generation = rows[0][1] + render_s
    CPU["slowest format, built"] = CPU["build_allowlist"] + CPU[slowest]
    goal = "goal < 1 s per format: " + ("met" if generation < 1 else "NOT met")
    report("slowest format, built", generation, baseline, f"{slowest}; {goal}")
    CPU["every format"] = sum(CPU[name] for name, _ in rows)
    report("every format", total, baseline, "all in a row, for reference")

    document = policy_document()
    load = median_time(lambda: load_policy(document), runs, "load (SDK models)")
    policy = load_policy(document)
    evaluate = median_time(lambda: audit_policy(policy, allowlist), runs, "evaluate")
    CPU["audit total"] = CPU["load (SDK models)"] + CPU["evaluate"]
    result = audit_policy(policy, allowlist)
    counts: dict[str, int] = {}
    for verdict in result.verdicts:
        counts[verdict.verdict.value] = counts.get(verdict.verdict.value, 0) + 1
    print(
        f"audit: {len(policy.rules)} rules x {len(result.verdicts)} requirement verdicts {counts}"
    )
    for name, seconds in (
        ("load (SDK models)", load),
        ("evaluate", evaluate),
        ("audit total", load + evaluate),
    ):
        report(name, seconds, baseline)

    print("imports, once per command (fresh interpreter):")
    for name, statement in (
        ("reports.allowlist", "import reports.allowlist"),
        ("SDK models", "from azure.mgmt.network import models"),
    ):
        report(name, import_time(statement, runs, name), baseline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
