"""How long the local target takes to make the scikit-learn example Healthy.

    python bench/deployer_local.py [--rounds 3]

Needs the model server's virtualenv (AKSFLIGHT_MODELSERVER_VENV, else .venv-modelserver).
Everything runs under a temporary state directory. Per round:

- baseline: the bare model server (`python -m azureml_inference_server_http`) with the same
  entry script and model, from process start to its health route answering 200;
- cold: the environment cached, nothing running: `LocalTarget.deploy` until Healthy
  (supervisor, router and one replica started);
- cli cold: the same through `aksflight deploy` in a new process (CLI start-up included);
- warm: the router already running another service: deploy a new one until Healthy;
- unchanged: deploying the same service again (no writes);
- env lookup: resolving a cached environment; seed check: the first resolve with a fresh
  cache (pip checks the seed offline).

Medians are printed with their ratio to the baseline measured in the same run, since the
machine is shared and absolute times move with its load.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deployer.config import deploy_configuration  # noqa: E402
from deployer.inference import Environment, InferenceConfig, Model, read_requirements  # noqa: E402
from deployer.local.envcache import EnvironmentCache  # noqa: E402
from deployer.local.layout import Layout  # noqa: E402
from deployer.local.target import LocalTarget  # noqa: E402
from deployer.request import DeployRequest  # noqa: E402

EXAMPLE = REPO / "aksflight" / "examples" / "sklearn"


def _venv() -> Path:
    venv = Path(os.environ.get("AKSFLIGHT_MODELSERVER_VENV") or REPO / ".venv-modelserver")
    if not (venv / "bin" / "azmlinfsrv").exists():
        print(f"skipped: no model server virtualenv at {venv} (make modelserver)")
        sys.exit(0)
    return venv


def _request(model: Path, name: str) -> DeployRequest:
    environment = Environment(pip_requirements=read_requirements(EXAMPLE / "requirements.txt"))
    return DeployRequest(
        name,
        (Model(path=model, name="iris"),),
        InferenceConfig("score.py", EXAMPLE, environment),
        deploy_configuration(),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def baseline(python: Path, model_dir: Path, home: Path) -> float:
    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "AZUREML_MODEL_DIR": str(model_dir),
        "AML_APP_ROOT": str(EXAMPLE),
        "AZUREML_ENTRY_SCRIPT": "score.py",
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            str(python),
            "-m",
            "azureml_inference_server_http",
            "--entry_script",
            "score.py",
            "--port",
            str(port),
        ],
        cwd=EXAMPLE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
    finally:
        os.killpg(process.pid, 15)
        process.wait()


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    venv = _venv()
    work = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    os.environ["HOME"] = str(work / "home")
    (work / "home").mkdir()
    subprocess.run(
        [str(venv / "bin" / "python"), str(EXAMPLE / "train.py"), str(work / "model")],
        check=True,
        capture_output=True,
    )
    model = work / "model" / "model.joblib"
    cache_root = work / "envs"
    environment = _request(model, "seed").inference.environment
    with Stopwatch() as seed_check:
        EnvironmentCache(cache_root, seeds=[venv]).resolve(environment)
    results: dict[str, list[float]] = {
        k: [] for k in ("baseline", "cold", "cli cold", "warm", "unchanged", "env lookup")
    }
    for round_number in range(args.rounds):
        state = work / f"state-{round_number}"
        target = LocalTarget(Layout(state / "local"), EnvironmentCache(cache_root, seeds=[venv]))
        results["baseline"].append(baseline(venv / "bin" / "python", model.parent, work / "home"))
        with Stopwatch() as lookup:
            target.cache.resolve(environment)
        results["env lookup"].append(lookup.seconds)
        try:
            for measure, name in (("cold", "iris"), ("warm", "other"), ("unchanged", "iris")):
                with Stopwatch() as deploy:
                    target.deploy(_request(model, name), timeout=120)
                results[measure].append(deploy.seconds)
        finally:
            target.stop()
        cli_state = work / f"cli-{round_number}"
        env = {**os.environ, "AKSFLIGHT_STATE_DIR": str(cli_state)}
        (cli_state / "local").mkdir(parents=True)
        os.symlink(cache_root, cli_state / "local" / "envs")
        command = [
            sys.executable, "-m", "aksflight", "deploy", "iris", "--model", str(model),
            "--entry-script", "score.py", "--source-directory", str(EXAMPLE),
            "--requirements", str(EXAMPLE / "requirements.txt"), "-o", "json",
        ]  # fmt: skip
        with Stopwatch() as cli:
            subprocess.run(command, env=env, check=True, capture_output=True)
        results["cli cold"].append(cli.seconds)
        stop = [sys.executable, "-m", "aksflight", "local", "stop"]
        subprocess.run(stop, env=env, check=True, capture_output=True)
    base = statistics.median(results["baseline"])
    print(f"local target, {args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"seed check (first resolve, fresh cache): {seed_check.seconds:.2f} s")
    print(f"{'measure':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'x baseline':>11}")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"{name:<12} {median:>9.3f} {min(values):>7.3f} {max(values):>7.3f} "
            f"{median / base:>11.2f}"
        )
    cold = statistics.median(results["cli cold"])
    print(
        f"Healthy in under 5 s with a cached environment (cli cold median): "
        f"{'yes' if cold < 5 else 'no'} ({cold:.2f} s)"
    )


if __name__ == "__main__":
    main()
