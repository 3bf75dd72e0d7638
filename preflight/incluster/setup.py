"""Putting a run together: which targets the cluster has, and the spec the manifests and
the probe command line are rendered from."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from preflight.incluster.errors import InClusterError
from preflight.incluster.manifests import CONFIG_DIR, LaunchSpec, ProbeTarget, run_selector
from preflight.incluster.peer import MODEL_PORT, ROUTER_PORT
from preflight.incluster.plan import needs_api, needs_peers
from preflight.incluster.targets import probe_targets
from rules.plan import Plan

NAMESPACE_PREFIX = "aksflight-preflight"
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the user asked for."""

    image: str
    config_text: str
    catalogue_texts: Sequence[str] = ()
    phases: Sequence[str] = ()
    pools: Sequence[str] = ()
    per_node: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    probe_timeout_s: float = 3.0
    keep_going: bool = False
    proxy: str | None = None
    router_port: int = ROUTER_PORT
    model_port: int = MODEL_PORT
    namespace: str | None = None  # default: aksflight-preflight-<random>


def list_targets(api: Any, pools: Sequence[str], per_node: bool) -> tuple[ProbeTarget, ...]:
    try:
        core: Any = k8s.CoreV1Api(api)
        nodes = core.list_node(_request_timeout=10).items
    except (ApiException, HTTPError, OSError) as exc:
        status = f"HTTP {exc.status}" if isinstance(exc, ApiException) else type(exc).__name__
        raise InClusterError(f"cannot list the nodes: {status}") from exc
    return probe_targets(
        ((n.metadata.name, dict(n.metadata.labels or {})) for n in nodes), pools, per_node=per_node
    )


def _files(request: RunRequest) -> dict[str, str]:
    files = {"config.yaml": request.config_text}
    for index, text in enumerate(request.catalogue_texts):
        files[f"catalogue-{index}.yaml"] = text
    return files


def probe_args(request: RunRequest, spec_namespace: str, selector: str, peers: int) -> list[str]:
    """The `aksflight probe` command line each probe pod runs."""
    args = ["probe", "-c", f"{CONFIG_DIR}/config.yaml"]
    for index in range(len(request.catalogue_texts)):
        args += ["--catalogue", f"{CONFIG_DIR}/catalogue-{index}.yaml"]
    for phase in request.phases:
        args += ["--phase", phase]
    args += ["--timeout", f"{request.probe_timeout_s:g}", "--namespace", spec_namespace]
    if request.keep_going:
        args.append("--keep-going")
    if request.proxy:
        args += ["--proxy", request.proxy]
    args += [
        "--peer-selector",
        selector,
        "--peers",
        str(peers),
        "--router-port",
        str(request.router_port),
        "--model-port",
        str(request.model_port),
    ]
    return args


def launch_spec(
    request: RunRequest,
    plan: Plan,
    targets: tuple[ProbeTarget, ...],
    *,
    run_id: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> LaunchSpec:
    run_id = run_id or secrets.token_hex(4)
    namespace = request.namespace or f"{NAMESPACE_PREFIX}-{run_id}"
    peers = needs_peers(plan)
    draft = LaunchSpec(
        image=request.image,
        namespace=namespace,
        run_id=run_id,
        targets=targets,
        probe_args=(),
        config_files=_files(request),
        timeout_s=request.timeout_s,
        needs_api=needs_api(plan),
        ports=(request.router_port, request.model_port) if peers else (),
        extra_labels=dict(extra_labels or {}),
    )
    args = probe_args(request, namespace, run_selector(draft), len(targets))
    return LaunchSpec(**{**_fields(draft), "probe_args": tuple(args)})


def _fields(spec: LaunchSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in LaunchSpec.__dataclass_fields__}
