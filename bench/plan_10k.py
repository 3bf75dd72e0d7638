"""Benchmark: `aksflight plan -o json` over a generated config with 10,000 extra dependencies.

Prints medians (of --repeat runs) and ratios against baselines measured in the same run:
the plan of a shipped 14-requirement example (fixed costs), and `json.loads` + `json.dumps`
of the same config (the floor for any tool that reads it and writes a result).
Goal (issue 2): the 10,000-dependency plan, end to end as a command, under 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "aksflight" / "examples" / "key-auth-auto-domain.yaml"
PACKAGES = ("aksflight", "rules", "reports")


def generated_config(n: int) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text())
    data["extra_dependencies"] = [
        {
            "host": f"dep{i}.svc{i % 97}.example.com",
            "port": 1 + (i * 7) % 65535,
            "protocol": ("tcp", "https", "http")[i % 3],
            "purpose": f"dependency {i}",
        }
        for i in range(n)
    ]
    return data


def median_time(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median wall seconds of `fn` (for a subprocess, the child's wall time)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_cpu(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median CPU seconds of `fn` in this process (less sensitive to a busy machine)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def in_process(path: Path) -> None:
    from aksflight.cli import main

    sink = io.StringIO()
    with redirect_stdout(sink):
        code = main(["plan", "-c", str(path), "-o", "json"])
    assert code == 0, code


def as_command(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "aksflight", "plan", "-c", str(path), "-o", "json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("-n", type=int, default=10_000)
    args = parser.parse_args()
    import yaml

    # An installed package has its bytecode compiled at install time; make the checkout
    # match, so no run pays for compiling a module whose source just changed.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *(str(REPO / p) for p in PACKAGES)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = generated_config(args.n)
        big_json = Path(tmp, "big.json")
        big_json.write_text(json.dumps(data))
        big_yaml = Path(tmp, "big.yaml")
        big_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
        text = big_json.read_text()

        floor = median_time(lambda: json.dumps(json.loads(text)), args.repeat)
        small = median_time(lambda: in_process(EXAMPLE), args.repeat)
        big = median_time(lambda: in_process(big_json), args.repeat)
        big_y = median_time(lambda: in_process(big_yaml), max(3, args.repeat // 2))
        big_cpu = median_cpu(lambda: in_process(big_json), args.repeat)
        cmd_small = median_time(lambda: as_command(EXAMPLE), args.repeat)
        cmd_big = median_time(lambda: as_command(big_json), args.repeat)

    checks = args.n + args.n // 3 * 2 + args.n // 3 + args.n  # approx: dns + tcp + tls/http
    print(
        f"plan -o json, {args.n:,} extra dependencies (~{checks:,} checks), median of {args.repeat}"
    )
    print(f"  baseline json load+dump of the config : {floor * 1000:8.1f} ms")
    print(f"  baseline plan of a 14-requirement example (in process): {small * 1000:8.1f} ms")
    print(
        f"  10k plan, JSON config, in process      : {big * 1000:8.1f} ms  "
        f"({big / small:.1f}x the small plan, {big / floor:.0f}x the json floor)"
    )
    print(f"  10k plan, JSON config, CPU in process  : {big_cpu * 1000:8.1f} ms")
    print(
        f"  10k plan, YAML config, in process      : {big_y * 1000:8.1f} ms  "
        f"({big_y / big:.1f}x the JSON config)"
    )
    print(f"  command, small example (incl. start-up): {cmd_small * 1000:8.1f} ms")
    print(
        f"  command, 10k JSON config               : {cmd_big * 1000:8.1f} ms  "
        f"({cmd_big / cmd_small:.1f}x the small command)  goal < 1000 ms: "
        f"{'met' if cmd_big < 1.0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
