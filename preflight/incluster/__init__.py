"""preflight.incluster: the same plan, run from inside the cluster on every node pool.

    launcher   creates a namespace, a service account (token only when needed), a Role
               limited to the router's discovery, a ConfigMap with the config, and one
               Job per node pool (or per node); watches the pods, reads their logs,
               deletes the namespace afterwards, also on Ctrl-C and SIGTERM
    probe      what `aksflight probe` runs in the pod: `run_plan` plus the pod-network
               checks (peer), printing one observation document (wire)
    results    each pod's observations judged by `rules.evaluate`; a pod that could not
               start or report is a `cluster:probe-pod:<target>` finding

Exceptions:

    PreflightError
    └── InClusterError
        └── ProbeOutputError
"""

from preflight.incluster.client import api_client
from preflight.incluster.errors import InClusterError, ProbeOutputError
from preflight.incluster.launcher import InClusterRun, Launcher, TargetOutcome
from preflight.incluster.manifests import LaunchSpec, ProbeTarget, all_manifests
from preflight.incluster.plan import in_cluster_plan
from preflight.incluster.results import TargetResult, judge_outcome, pod_problem, verdict
from preflight.incluster.setup import RunRequest, launch_spec, list_targets
from preflight.incluster.wire import ProbeReport, dump_report, parse_report

__all__ = [
    "InClusterError",
    "InClusterRun",
    "LaunchSpec",
    "Launcher",
    "ProbeOutputError",
    "ProbeReport",
    "ProbeTarget",
    "RunRequest",
    "TargetOutcome",
    "TargetResult",
    "all_manifests",
    "api_client",
    "dump_report",
    "in_cluster_plan",
    "judge_outcome",
    "launch_spec",
    "list_targets",
    "parse_report",
    "pod_problem",
    "verdict",
]
