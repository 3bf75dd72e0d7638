"""A synchronous Kubernetes client for the launcher, from the same kubeconfig rules the
Kubernetes checks use (an explicit file and context, else KUBECONFIG, else
~/.kube/config, else the pod's service account)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from preflight._net import describe
from preflight.incluster.errors import InClusterError
from preflight.kube import KUBECONFIG_LOADER_ERRORS, _kubeconfig_path
from preflight.options import ProbeOptions


def api_client(kubeconfig: str | Path | None = None, context: str | None = None) -> Any:
    """A `kubernetes.client.ApiClient`; `InClusterError` when no credentials work."""
    options = ProbeOptions(kubeconfig=kubeconfig, context=context)
    configuration = k8s.Configuration()
    path = _kubeconfig_path(options)
    try:
        if path is not None:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except KUBECONFIG_LOADER_ERRORS as exc:
        where = path or "the in-cluster service account"
        raise InClusterError(f"kubeconfig: {where}: {describe(exc)}") from exc
    configuration.retries = None
    return k8s.ApiClient(configuration)
