"""Environment images: a cold build, a warm rebuild (no change), a forced rebuild, and a
shared-registry hit (streamed from another registry, and mounted within one), for a
realistic requirement set (the model server, scikit-learn, joblib).

Two docker-registry processes on 127.0.0.1; the wheels are fetched once into a temporary
folder (pip's cache makes later runs quick) and every build then installs offline from it.
Prints the median time and the bytes uploaded of each case, and each case's time as a
ratio of the cold build measured in the same run.

    .venv/bin/python bench/images_build.py [--repeat 3] [--requirements six idna]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from deployer.images import (
    EnsureResult,
    ImageEnvironment,
    ImageReference,
    RegistryLocation,
    RegistryTransport,
    ensure_image,
)
from deployer.images.build import pip_download_command
from deployer.images.spec import DEFAULT_MODEL_SERVER
from tests.images.registries import make_base_image, push_base, start_registry

REALISTIC = ("scikit-learn>=1.4", "joblib", "numpy")


def fetch_wheels(folder: Path, requirements: tuple[str, ...]) -> None:
    command = pip_download_command(folder, requirements)
    subprocess.run(command, check=True, capture_output=True)


def timed(action: Callable[[], EnsureResult]) -> tuple[float, EnsureResult]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def one_round(
    folder: Path, env_requirements: tuple[str, ...], model_server: str, pip_args: list[str]
) -> dict[str, tuple[float, int, str]]:
    first = start_registry(folder / "workspace")
    second = start_registry(folder / "other")
    try:
        with httpx.Client() as client:
            push_base(client, first.url(""), "base/tiny", "1", make_base_image())
        env = ImageEnvironment(
            ImageReference.parse(f"{first.host}/base/tiny:1"),
            env_requirements,
            model_server=model_server,
        )
        shared = RegistryLocation(first.host, "shared/envs")
        cases: dict[str, tuple[float, int, str]] = {}

        def run(
            name: str,
            workspace: RegistryLocation,
            shared_at: RegistryLocation | None,
            force: bool = False,
        ) -> None:
            with RegistryTransport() as transport:
                seconds, result = timed(
                    lambda: ensure_image(
                        env,
                        workspace,
                        shared_at,
                        transport=transport,
                        pip_args=pip_args,
                        force_build=force,
                    )
                )
            cases[name] = (seconds, result.stats.uploaded_bytes, result.source)

        run("cold build", shared, None)
        run("warm rebuild (no change)", shared, None)
        run("forced rebuild (same inputs)", shared, None, force=True)
        run("shared hit, other registry (stream)", RegistryLocation(second.host, "ws/envs"), shared)
        run("shared hit, same registry (mount)", RegistryLocation(first.host, "ws/envs"), shared)
        return cases
    finally:
        first.stop()
        second.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--requirements", nargs="*", default=list(REALISTIC))
    parser.add_argument("--model-server", default=DEFAULT_MODEL_SERVER)
    args = parser.parse_args()
    if shutil.which("docker-registry") is None:
        print("needs docker-registry (Debian package)")
        return 0
    requirements = tuple(args.requirements)
    installs = requirements + (() if args.model_server == "bundled" else (args.model_server,))
    with tempfile.TemporaryDirectory(prefix="images-bench-") as tmp:
        wheels = Path(tmp) / "wheels"
        fetch_wheels(wheels, installs)
        size = sum(p.stat().st_size for p in wheels.iterdir())
        print(
            f"requirements: {' '.join(installs)} ({len(list(wheels.iterdir()))} wheels, "
            f"{size / 1e6:.1f} MB)"
        )
        pip_args = ["--no-index", "--find-links", str(wheels)]
        rounds = [
            one_round(Path(tmp) / f"round{i}", requirements, args.model_server, pip_args)
            for i in range(args.repeat)
        ]
    names = list(rounds[0])
    cold = statistics.median(r["cold build"][0] for r in rounds)
    print(f"{'case':40} {'median s':>9} {'x cold':>7} {'uploaded bytes':>15}  source")
    for name in names:
        seconds = statistics.median(r[name][0] for r in rounds)
        uploaded = int(statistics.median(r[name][1] for r in rounds))
        print(
            f"{name:40} {seconds:9.3f} {seconds / cold:7.3f} {uploaded:15,d}  {rounds[0][name][2]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
