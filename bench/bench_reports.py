"""How fast the report renderers are on a large plan, against plain `json.dumps`.

Builds a plan of about 30,000 checks (7,500 HTTPS dependencies on top of an example
config), then times each renderer. The baseline is `json.dumps` of the plan document
with no indentation: the floor for any JSON output of the same data. The machine is
shared and noisy, so every figure is a median of several runs and a ratio to a baseline
measured in the same run.

    python bench/bench_reports.py [--hosts N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from reports import PLAN_FORMATS
from reports.plan_json import plan_document
from rules.catalogue import requirements_for
from rules.config import parse_config
from rules.plan import Plan, build_plan

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "key-auth-auto-domain.yaml"


def large_plan(hosts: int) -> Plan:
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["extra_dependencies"] = [
        {"host": f"dep{i}.example.com", "port": 443, "protocol": "https", "purpose": f"dep {i}"}
        for i in range(hosts)
    ]
    plan = build_plan(requirements_for(parse_config(raw)))
    plan.order()  # the plan caches its order; every renderer needs it
    return plan


def median_s(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=7500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--formats", default="json,markdown,mermaid,dot")
    args = parser.parse_args()
    plan = large_plan(args.hosts)
    print(f"plan: {len(plan.checks)} checks, {len(plan.requirements)} requirements")
    document = plan_document(plan)
    baseline = median_s(lambda: json.dumps(document), args.repeat)
    print(f"baseline json.dumps(document): median {baseline * 1000:.1f} ms")
    for name in args.formats.split(","):
        render = PLAN_FORMATS[name]
        seconds = median_s(lambda render=render: render(plan), args.repeat)  # type: ignore[misc]
        print(
            f"plan -o {name:<8} median {seconds * 1000:7.1f} ms"
            f"  ratio to baseline {seconds / baseline:5.2f}"
        )


if __name__ == "__main__":
    main()
