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


def measure(run: Callable[[], object], repeat: int) -> tuple[float, float, float]:
    """Median wall time, best wall time and median CPU time of the process, in seconds."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=7500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--formats", default="json,markdown,mermaid,dot")
    args = parser.parse_args()
    plan = large_plan(args.hosts)
    print(f"plan: {len(plan.checks)} checks, {len(plan.requirements)} requirements")
    document = plan_document(plan)
    results = {"baseline": measure(lambda: json.dumps(document), args.repeat)}
    for name in args.formats.split(","):
        render = PLAN_FORMATS[name]
        results[name] = measure(lambda render=render: render(plan), args.repeat)  # type: ignore[misc]
    base = results["baseline"][0]
    print("baseline = json.dumps(plan document), compact, C encoder")
    for name, (median, best, cpu) in results.items():
        label = "baseline" if name == "baseline" else f"plan -o {name}"
        print(
            f"{label:<16} median {median * 1000:7.1f} ms  best {best * 1000:7.1f} ms"
            f"  cpu {cpu * 1000:7.1f} ms  ratio {median / base:5.2f}"
        )


if __name__ == "__main__":
    main()
