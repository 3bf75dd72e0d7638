"""The Kubernetes API probes: `/version` proves the API server answers the router's
queries; SelfSubjectAccessReviews prove the credentials may do the router's discovery.

Credentials come from an explicit kubeconfig (and context), else `KUBECONFIG` or
`~/.kube/config`, else the pod's service account; with none the checks are skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from kubernetes.aio import client as k8s
from kubernetes.aio import config as k8s_config
from kubernetes.aio.client.exceptions import ApiException

from preflight._net import describe, network_status
from preflight.context import ProbeContext
from preflight.errors import OptionsError
from preflight.options import ProbeOptions
from rules.model import Check, Observation, ProbeStatus

# What the router lists and watches to find its peers and the models it serves.
DISCOVERY_ACCESS: tuple[tuple[str, str, str], ...] = tuple(
    (verb, resource, group)
    for resource, group in (
        ("pods", ""),
        ("services", ""),
        ("endpoints", ""),
        ("endpointslices", "discovery.k8s.io"),
    )
    for verb in ("list", "watch")
)
# What the kubeconfig loaders raise for a file they cannot use: their own ConfigException,
# malformed YAML, missing keys, unreadable certificate files.
KUBECONFIG_LOADER_ERRORS: tuple[type[Exception], ...] = (
    k8s_config.ConfigException,
    yaml.YAMLError,
    OSError,
    KeyError,
    ValueError,
    TypeError,
)
_SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
NO_CREDENTIALS = (
    "no Kubernetes credentials: no --kubeconfig, KUBECONFIG or ~/.kube/config, "
    "and not running inside a cluster"
)


def _kubeconfig_path(options: ProbeOptions) -> str | None:
    if options.kubeconfig is not None:
        return str(options.kubeconfig)
    for entry in options.env.get("KUBECONFIG", "").split(os.pathsep):
        if entry and Path(entry).expanduser().is_file():
            return str(Path(entry).expanduser())
    default = Path(options.env.get("HOME", str(Path.home()))) / ".kube" / "config"
    return str(default) if default.is_file() else None


async def load_client(options: ProbeOptions) -> tuple[Any, str]:
    """An `ApiClient` from the first credentials found, or (None, why not).

    A kubeconfig the user named explicitly that cannot be used is bad input
    (`OptionsError`); one found implicitly that cannot be used skips the checks.
    """
    configuration = k8s.Configuration()
    path = _kubeconfig_path(options)
    explicit = options.kubeconfig is not None or options.context is not None
    try:
        if path is not None:
            await k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=options.context,
                client_configuration=configuration,
                persist_config=False,
            )
        elif options.env.get("KUBERNETES_SERVICE_HOST") and _SERVICE_ACCOUNT_TOKEN.is_file():
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        else:
            return None, NO_CREDENTIALS
    except KUBECONFIG_LOADER_ERRORS as exc:
        if explicit:
            raise OptionsError("kubeconfig", f"{path}: {describe(exc)}") from exc
        return None, f"the kubeconfig {path} cannot be used: {describe(exc)}"
    configuration.retries = None
    return k8s.ApiClient(configuration), ""


def _failure(exc: Exception) -> tuple[ProbeStatus, dict[str, Any]]:
    if isinstance(exc, ApiException):
        code = exc.status
        evidence = {"http_status": code}
        if code == 401:
            return ProbeStatus.UNAUTHORIZED, evidence
        if code == 403:
            return ProbeStatus.FORBIDDEN, evidence
        return ProbeStatus.ERROR, evidence
    return network_status(exc), {}


async def _version(api: Any, timeout: float) -> dict[str, Any]:
    info = await k8s.VersionApi(api).get_code(_request_timeout=timeout)
    return {"git_version": info.git_version, "platform": info.platform}


async def _review(api: Any, namespace: str, access: tuple[str, str, str], timeout: float) -> bool:
    verb, resource, group = access
    body = k8s.V1SelfSubjectAccessReview(
        spec=k8s.V1SelfSubjectAccessReviewSpec(
            resource_attributes=k8s.V1ResourceAttributes(
                namespace=namespace, verb=verb, resource=resource, group=group
            )
        )
    )
    review = await k8s.AuthorizationV1Api(api).create_self_subject_access_review(
        body=body, _request_timeout=timeout
    )
    return bool(review.status and review.status.allowed)


async def _discovery(api: Any, namespace: str, timeout: float) -> dict[str, Any]:
    answers = await asyncio.gather(
        *(_review(api, namespace, access, timeout) for access in DISCOVERY_ACCESS)
    )
    allowed = {
        f"{verb} {resource}": answer
        for (verb, resource, _), answer in zip(DISCOVERY_ACCESS, answers, strict=True)
    }
    return {"namespace": namespace, "allowed": allowed}


async def probe_kube(
    check: Check, context: ProbeContext, addresses: Sequence[str] = ()
) -> Observation:
    """`k8s:version` or `k8s:discovery-rbac`, with the run's shared API client."""
    started = context.clock()
    api = await context.kube_client()
    if api is None:
        return Observation(check.id, ProbeStatus.SKIPPED, 0.0, context.kube_skip_reason, {})
    evidence: dict[str, Any] = {"server": api.configuration.host}
    status, detail = ProbeStatus.OK, ""
    try:
        async with asyncio.timeout(context.timeout):
            if check.target == "version":
                evidence.update(await _version(api, context.timeout))
            elif check.target == "discovery-rbac":
                evidence.update(await _discovery(api, context.options.namespace, context.timeout))
                denied = [k for k, ok in evidence["allowed"].items() if not ok]
                if denied:
                    status, detail = ProbeStatus.FORBIDDEN, "not allowed: " + ", ".join(denied)
            else:
                status, detail = ProbeStatus.SKIPPED, f"no probe for k8s:{check.target}"
    except TimeoutError:
        status, detail = ProbeStatus.TIMEOUT, f"no answer within {context.timeout:g} s"
    except Exception as exc:  # the client raises aiohttp, ssl and its own errors
        status, more = _failure(exc)
        evidence.update(more)
        detail = describe(exc)
    duration_ms = (context.clock() - started) * 1000
    return Observation(check.id, status, duration_ms, detail, evidence)
