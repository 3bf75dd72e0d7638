"""What a Kubernetes deploy costs in API calls and time, against the fake API server.

    python bench/deployer_kube.py [--rounds 20]

Per round, on a fresh fake cluster: the first deploy (router install + service), an
unchanged re-deploy (reads only), an update (one ConfigMap and the Deployment), and
`--dry-run` rendering. The baseline is one GET of a Secret through the same client in the
same run, so the ratios say how many round trips' worth each operation is.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "support")]

from fakekube import FakeKube  # noqa: E402

from deployer.config import deploy_configuration  # noqa: E402
from deployer.inference import Environment, InferenceConfig, Model  # noqa: E402
from deployer.kube.api import KubeApi  # noqa: E402
from deployer.kube.target import KubernetesTarget  # noqa: E402
from deployer.request import DeployRequest  # noqa: E402

EXAMPLE = REPO / "aksflight" / "examples" / "sklearn"


def _request(model: Path, timeout_ms: int = 60_000) -> DeployRequest:
    return DeployRequest(
        "iris",
        (Model(path=model, name="iris"),),
        InferenceConfig("score.py", EXAMPLE, Environment(image="labacr01.azurecr.io/iris:1")),
        deploy_configuration(scoring_timeout_ms=timeout_ms),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deployer-kube-bench-"))
    model = work / "model.joblib"
    model.write_bytes(b"\x80\x04" + b"w" * 2048)
    times: dict[str, list[float]] = {
        k: [] for k in ("baseline GET", "first deploy", "unchanged", "update", "dry-run")
    }
    calls: dict[str, int] = {}
    for _ in range(args.rounds):
        with FakeKube() as fake:
            api = KubeApi(fake.api_client())
            target = KubernetesTarget(api=api, poll_seconds=0.0, router_image="aksflight:0.1.0")
            started = time.perf_counter()
            for _ in range(20):
                api.get("v1", "Secret", "absent", "default")
            times["baseline GET"].append((time.perf_counter() - started) / 20)
            for name, request in (
                ("first deploy", _request(model)),
                ("unchanged", _request(model)),
                ("update", _request(model, 1000)),
            ):
                fake.requests.clear()
                started = time.perf_counter()
                target.deploy(request)
                times[name].append(time.perf_counter() - started)
                records = fake.requests.records
                calls[name] = len(records)
                calls[name + " writes"] = len(fake.requests.writes())
            started = time.perf_counter()
            target.render(_request(model), "yaml")
            times["dry-run"].append(time.perf_counter() - started)
    base = statistics.median(times["baseline GET"])
    print(f"kubernetes target against the fake API server, {args.rounds} rounds")
    print(f"{'operation':<14} {'median ms':>10} {'x GET':>7} {'requests':>9} {'writes':>7}")
    for name, values in times.items():
        median = statistics.median(values)
        requests = calls.get(name, 0)
        writes = calls.get(name + " writes", 0)
        print(f"{name:<14} {median * 1000:>10.1f} {median / base:>7.1f} {requests:>9} {writes:>7}")


if __name__ == "__main__":
    main()
