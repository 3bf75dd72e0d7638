"""The observation document a probe pod prints and the launcher reads back from its log.

One JSON object on one line, the last such line of the log wins (anything else the
container printed, warnings or tracebacks, is ignored). Observations travel as the same
fields `rules.model.Observation` has, so the launcher judges them with the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from preflight.incluster.errors import ProbeOutputError
from rules.model import Observation, ProbeStatus

SCHEMA = "aksflight-probe/1"


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one probe pod saw, and where it ran."""

    pool: str
    node: str
    pod: str
    observations: Mapping[str, Observation]
    duration_s: float = 0.0
    address: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def observation_record(obs: Observation) -> dict[str, Any]:
    return {
        "check_id": obs.check_id,
        "status": obs.status.value,
        "duration_ms": round(obs.duration_ms, 3),
        "detail": obs.detail,
        "evidence": dict(obs.evidence),
    }


def dump_report(report: ProbeReport) -> str:
    """The report as one line of JSON (what the probe prints last)."""
    document = {
        "schema": SCHEMA,
        "pool": report.pool,
        "node": report.node,
        "pod": report.pod,
        "address": report.address,
        "duration_s": round(report.duration_s, 3),
        "observations": [observation_record(o) for o in report.observations.values()],
    }
    return json.dumps(document, separators=(",", ":"), default=str)


def _observation(record: Any) -> Observation:
    if not isinstance(record, dict):
        raise ProbeOutputError("an observation is not a JSON object")
    try:
        status = ProbeStatus(record["status"])
        check_id = str(record["check_id"])
        duration = float(record.get("duration_ms", 0.0))
    except (KeyError, ValueError, TypeError) as exc:
        raise ProbeOutputError(f"an observation has a bad field: {exc}") from exc
    evidence = record.get("evidence") or {}
    if not isinstance(evidence, dict):
        raise ProbeOutputError(f"{check_id}: evidence is not a JSON object")
    return Observation(check_id, status, duration, str(record.get("detail", "")), evidence)


def parse_report(log: str) -> ProbeReport:
    """The last observation document in a pod's log; `ProbeOutputError` when there is none."""
    for line in reversed(log.splitlines()):
        text = line.strip()
        if not text.startswith("{"):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            continue
        records = document.get("observations")
        if not isinstance(records, list):
            raise ProbeOutputError("the document has no list of observations")
        observations = {o.check_id: o for o in map(_observation, records)}
        return ProbeReport(
            pool=str(document.get("pool", "")),
            node=str(document.get("node", "")),
            pod=str(document.get("pod", "")),
            observations=observations,
            duration_s=float(document.get("duration_s", 0.0)),
            address=str(document.get("address", "")),
        )
    last = next((line.strip() for line in reversed(log.splitlines()) if line.strip()), "")
    hint = f" (last line: {last[:200]})" if last else " (the log is empty)"
    raise ProbeOutputError(f"no {SCHEMA} document in the log{hint}")
