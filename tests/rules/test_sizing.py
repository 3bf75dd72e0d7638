"""`aksflight replicas`: the documented formula and its input rules."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aksflight.cli import main
from rules.errors import SizingError
from rules.sizing import estimate_replicas, normalise_utilization


@pytest.mark.parametrize(
    ("rps", "seconds", "utilization", "concurrent", "expected"),
    [
        (10, 1, 0.7, 1, 15),  # 10 concurrent / 0.7 = 14.3 → 15
        (10, 1, 70, 1, 15),  # 70 reads as 70 %
        (100, 0.2, 1.0, 1, 20),
        (100, 0.2, 0.5, 4, 10),
        (0.1, 3, 0.3, 1, 1),  # exactly 1.0, not 2 from float noise
        (1, 0.001, 0.7, 1, 1),
    ],
)
def test_formula(
    rps: float, seconds: float, utilization: float, concurrent: int, expected: int
) -> None:
    assert estimate_replicas(rps, seconds, utilization, concurrent).replicas == expected


@given(
    rps=st.floats(0.01, 1e5),
    seconds=st.floats(0.001, 100),
    utilization=st.floats(0.05, 1.0),
    concurrent=st.integers(1, 64),
)
def test_replicas_always_cover_the_load(
    rps: float, seconds: float, utilization: float, concurrent: int
) -> None:
    estimate = estimate_replicas(rps, seconds, utilization, concurrent)
    assert estimate.replicas >= 1
    capacity = estimate.replicas * concurrent * utilization
    assert capacity >= rps * seconds * (1 - 1e-9)
    assert (
        estimate.replicas - 1
    ) * concurrent * utilization < rps * seconds or estimate.replicas == 1


@pytest.mark.parametrize("bad", [0, -1, 101, math.nan, math.inf])
def test_bad_utilization(bad: float) -> None:
    with pytest.raises(SizingError):
        normalise_utilization(bad)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "replicas",
                "--rps",
                "10",
                "--request-time",
                "1",
                "--target-utilization",
                "70",
                "-o",
                "json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["replicas"] == 15
    assert main(["replicas", "--rps", "10", "--request-time", "1"]) == 0
    assert capsys.readouterr().out.startswith("15 replicas")


@pytest.mark.parametrize(
    "argv",
    [
        ["--rps", "0", "--request-time", "1"],
        ["--rps", "x", "--request-time", "1"],
        ["--rps", "1", "--request-time", "-2"],
        ["--rps", "1", "--request-time", "1", "--target-utilization", "150"],
        ["--rps", "1", "--request-time", "1", "--max-concurrent", "0"],
        ["--rps", "1", "--request-time", "1", "--max-concurrent", "1.5"],
        ["--rps", "nan", "--request-time", "1"],
        ["--request-time", "1"],
    ],
)
def test_cli_bad_input(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["replicas", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
