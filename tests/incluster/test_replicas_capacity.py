"""`aksflight replicas` as a capacity plan against the fake cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aksflight.cli import main


def _replicas(capsys: Any, *extra: str) -> tuple[int, Any]:
    code = main(["replicas", "--rps", "10", "--request-time", "0.5", "-o", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_the_free_capacity_holds_the_replicas(fakekube: Any, capsys: Any) -> None:
    code, document = _replicas(
        capsys,
        "--cpu-cores",
        "0.5",
        "--memory-gb",
        "1",
        "--kubeconfig",
        str(fakekube.kubeconfig_path),
    )
    assert code == 0
    assert document["replicas"] == 8
    assert document["needs"] == {"cpu_cores": 4.0, "memory_gb": 8.0}
    assert [(c["id"], c["status"]) for c in document["capacity"]] == [("cluster:capacity", "pass")]


def test_too_little_room_fails_naming_what_is_short(fakekube: Any, capsys: Any) -> None:
    code, document = _replicas(
        capsys,
        "--cpu-cores",
        "1",
        "--memory-gb",
        "1",
        "--purpose",
        "DevTest",
        "--kubeconfig",
        str(fakekube.kubeconfig_path),
    )
    assert code == 1
    statuses = {c["id"]: c["status"] for c in document["capacity"]}
    assert statuses == {"cluster:capacity": "fail", "cluster:devtest": "warn"}
    capacity = next(c for c in document["capacity"] if c["id"] == "cluster:capacity")
    assert capacity["reason"].startswith("CPU 8 cores needed, 4 free")


def test_half_the_resources_is_bad_input(capsys: Any) -> None:
    assert main(["replicas", "--rps", "1", "--request-time", "1", "--cpu-cores", "1"]) == 2
    assert "--cpu-cores and --memory-gb go together" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--kubeconfig", "--context"])
def test_a_cluster_without_resources_is_bad_input(capsys: Any, flag: str) -> None:
    assert main(["replicas", "--rps", "1", "--request-time", "1", flag, "x"]) == 2
    assert "need --cpu-cores and --memory-gb" in capsys.readouterr().err
