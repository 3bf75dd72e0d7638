"""What `aksflight router status` shows: router pods, their size, their figures, the last
self-scaling decisions; from the Kubernetes API, from a router's URL, or from a local fleet.

In a cluster everything comes from the API server: the pods and their container resources,
and the Deployment's annotations, where the coordinating router records its decisions and the
figures it decided on (router.selfscale_kube). From a URL, the router's own `/-/load` and, on
the coordinating router, `/-/scaling`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from router.errors import DiscoveryError, RouterError
from router.kube import Object, pod_is_ready
from router.selfscale_kube import SIZE_ANNOTATION, STATUS_ANNOTATION, FleetApi

Status = dict[str, Any]


def _resources(pod: Object, container: str) -> dict[str, str]:
    for entry in (pod.get("spec") or {}).get("containers") or []:
        if entry.get("name") == container:
            resources = entry.get("resources") or {}
            requests = resources.get("requests") or {}
            limits = resources.get("limits") or {}
            return {
                "cpu": str(requests.get("cpu", "-")),
                "memory": str(requests.get("memory", "-")),
                "cpu_limit": str(limits.get("cpu", "-")),
                "memory_limit": str(limits.get("memory", "-")),
            }
    return {"cpu": "-", "memory": "-", "cpu_limit": "-", "memory_limit": "-"}


def cluster_status(api: FleetApi, namespace: str, deployment: str, container: str) -> Status:
    """The router Deployment's pods, sizes, recorded figures and decisions."""
    try:
        current = api.read_deployment(namespace, deployment)
        pods = api.list_all_pods()
    except RouterError as exc:
        raise DiscoveryError(f"router status: {exc}") from exc
    metadata = current.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    try:
        recorded = json.loads(annotations.get(STATUS_ANNOTATION) or "{}")
    except ValueError:
        recorded = {}
    figures = recorded.get("figures") or {}
    labels = ((current.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    routers = []
    for pod in pods:
        pod_meta = pod.get("metadata") or {}
        pod_labels = pod_meta.get("labels") or {}
        if pod_meta.get("namespace") != namespace or any(
            pod_labels.get(k) != v for k, v in labels.items()
        ):
            continue
        name = pod_meta.get("name", "")
        routers.append(
            {
                "name": name,
                "node": (pod.get("spec") or {}).get("nodeName") or "-",
                "ready": pod_is_ready(pod),
                **_resources(pod, container),
                "figures": figures.get(name),
            }
        )
    return {
        "source": f"deployment {namespace}/{deployment}",
        "replicas": (current.get("spec") or {}).get("replicas"),
        "size_step": annotations.get(SIZE_ANNOTATION),
        "recorded": recorded.get("time"),
        "routers": sorted(routers, key=lambda r: r["name"]),
        "decisions": recorded.get("decisions") or [],
    }


def url_status(url: str, timeout: float = 5.0) -> Status:
    """One router's figures; the fleet's state and decisions if it is the coordinator."""
    import httpx

    base = url.rstrip("/")
    try:
        load = httpx.get(base + "/-/load", timeout=timeout)
        load.raise_for_status()
        scaling = httpx.get(base + "/-/scaling", timeout=timeout)
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"router status: {base}: {exc}") from exc
    own = load.json()
    status: Status = {
        "source": base,
        "routers": [{"name": own.get("router", base), "figures": own.get("figures")}],
        "decisions": [],
    }
    if scaling.status_code == 200:
        body = scaling.json()
        state = body.get("state") or {}
        status["replicas"] = state.get("replicas")
        status["size_step"] = state.get("step")
        status["decisions"] = body.get("decisions") or []
        names = {r["name"] for r in status["routers"]}
        for name, figures in sorted((body.get("figures") or {}).items()):
            if name not in names:
                status["routers"].append({"name": name, "figures": figures})
    return status


def fleet_status(directory: Path) -> Status:
    """A local fleet (router.selfscale_local): its listed routers and recorded decisions."""
    try:
        endpoints = json.loads((directory / "endpoints.json").read_text())["routers"]
    except (OSError, ValueError, KeyError) as exc:
        raise DiscoveryError(f"router status: no local router fleet in {directory}") from exc
    routers: list[Status] = []
    decisions: list[Status] = []
    for url in endpoints:
        try:
            routers.extend(url_status(url)["routers"][:1])
        except DiscoveryError:
            routers.append({"name": url, "figures": None})
    scaling = directory / "scaling.json"
    if scaling.exists():
        decisions = json.loads(scaling.read_text()).get("decisions") or []
    return {
        "source": str(directory),
        "replicas": len(endpoints),
        "routers": routers,
        "decisions": decisions,
    }


def render(status: Status) -> str:
    """A table of routers, then the last decisions, oldest first."""
    lines = [f"routers of {status['source']}"]
    if status.get("replicas") is not None:
        lines[0] += f": {status['replicas']} wanted, size step {status.get('size_step', '-')}"
    header = f"{'NAME':<34} {'READY':<5} {'NODE':<12} {'CPU':>6} {'MEMORY':>8} "
    lines.append(header + f"{'ROUTING p99':>12} {'CPU USED':>9}")
    for router in status["routers"]:
        figures = router.get("figures") or {}
        routing = (figures.get("routing_ms") or {}).get("p99")
        cores = figures.get("cpu_cores")
        ready = router.get("ready")
        lines.append(
            f"{router['name']:<34} {'-' if ready is None else ('yes' if ready else 'no'):<5} "
            f"{router.get('node', '-'):<12} {router.get('cpu', '-'):>6} "
            f"{router.get('memory', '-'):>8} "
            f"{'-' if routing is None else f'{routing:.2f} ms':>12} "
            f"{'-' if cores is None else f'{cores:.2f}':>9}"
        )
    decisions = status.get("decisions") or []
    lines.append("last decisions:" if decisions else "no self-scaling decision recorded")
    for decision in decisions:
        lines.append(
            f"  {_when(decision.get('time'))} {decision.get('action', '?'):<7} "
            f"size {decision.get('step_from')}->{decision.get('step_to')}, "
            f"routers {decision.get('replicas_from')}->{decision.get('replicas_to')}: "
            f"{decision.get('reason', '')}"
        )
    return "\n".join(lines)


def _when(value: object) -> str:
    from datetime import UTC, datetime

    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)
