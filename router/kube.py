"""The router's seam to the Kubernetes API: a small protocol over plain dicts.

`ClusterApi` is what discovery, peers and the scaler need; `KubernetesApi` implements it with
the official client (blocking calls, run in threads by the callers). Unit tests pass a fake.
Client exceptions are translated here into DiscoveryError / ScalerError.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from router.errors import DiscoveryError, ResizeUnsupported, ScalerError

Object = dict[str, Any]


class WatchExpired(DiscoveryError):
    """The resourceVersion is too old (HTTP 410): list again, then watch from the new one."""


class ClusterApi(Protocol):
    def list_endpoint_slices(self, namespace: str, label_selector: str) -> tuple[list[Object], str]:
        """(items, resourceVersion of the list)."""
        ...

    def watch_endpoint_slices(
        self, namespace: str, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Object]]:
        """(event type, object) pairs until the server closes the watch."""
        ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Object]: ...

    def read_scale(self, namespace: str, deployment: str) -> int: ...

    def patch_scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    def stop(self) -> None:
        """Ask a running watch to return soon."""
        ...


class KubernetesApi:
    """ClusterApi over the official `kubernetes` client (in-cluster or from a kubeconfig)."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self._client = api_client
        # Typed as Any: raw (`_preload_content=False`) calls return urllib3 responses.
        self._core: Any = client.CoreV1Api(api_client)
        self._discovery: Any = client.DiscoveryV1Api(api_client)
        self._apps: Any = client.AppsV1Api(api_client)
        self._watches: list[Any] = []

    @classmethod
    def connect(
        cls, in_cluster: bool, kubeconfig: Path | None, context: str | None = None
    ) -> KubernetesApi:
        from kubernetes import client
        from kubernetes import config as loader

        config: Any = loader
        try:
            if in_cluster:
                config.load_incluster_config()
                return cls(client.ApiClient())
            configuration = client.Configuration()
            config.load_kube_config(
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
            )
            return cls(client.ApiClient(configuration))
        except (config.ConfigException, OSError) as exc:
            raise DiscoveryError(f"cannot configure the Kubernetes client: {exc}") from exc

    @staticmethod
    def _failure(action: str, exc: Exception, kind: type[Exception]) -> Exception:
        status = getattr(exc, "status", None)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if status == 410:
            return WatchExpired(f"{action}: resource version expired")
        return kind(f"{action}: {status or ''} {reason}".strip())

    def list_endpoint_slices(self, namespace: str, label_selector: str) -> tuple[list[Object], str]:
        try:
            response = self._discovery.list_namespaced_endpoint_slice(
                namespace, label_selector=label_selector, _preload_content=False
            )
            body = json.loads(response.data)
        except Exception as exc:
            raise self._failure("list EndpointSlices", exc, DiscoveryError) from exc
        return list(body.get("items") or []), str(body["metadata"].get("resourceVersion", ""))

    def watch_endpoint_slices(
        self, namespace: str, label_selector: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Object]]:
        from kubernetes import watch

        watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
        self._watches.append(watcher)
        try:
            for event in watcher.stream(
                self._discovery.list_namespaced_endpoint_slice,
                namespace,
                label_selector=label_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_watch_bookmarks=True,
                deserialize=False,
            ):
                if event.get("type") == "ERROR":
                    code = (event.get("object") or {}).get("code")
                    if code == 410:
                        raise WatchExpired("watch EndpointSlices: resource version expired")
                    raise DiscoveryError(f"watch EndpointSlices: error event {code}")
                yield str(event["type"]), event["object"]
        except DiscoveryError:
            raise
        except Exception as exc:
            raise self._failure("watch EndpointSlices", exc, DiscoveryError) from exc
        finally:
            self._watches.remove(watcher)

    def list_pods(self, namespace: str, label_selector: str) -> list[Object]:
        try:
            response = self._core.list_namespaced_pod(
                namespace, label_selector=label_selector, _preload_content=False
            )
            return list(json.loads(response.data).get("items") or [])
        except Exception as exc:
            raise self._failure("list Pods", exc, DiscoveryError) from exc

    def read_scale(self, namespace: str, deployment: str) -> int:
        try:
            response = self._apps.read_namespaced_deployment_scale(
                deployment, namespace, _preload_content=False
            )
            return int(json.loads(response.data).get("spec", {}).get("replicas") or 0)
        except Exception as exc:
            raise self._failure(f"read scale of {deployment}", exc, ScalerError) from exc

    def patch_scale(self, namespace: str, deployment: str, replicas: int) -> None:
        try:
            self._apps.patch_namespaced_deployment_scale(
                deployment, namespace, {"spec": {"replicas": replicas}}, _preload_content=False
            )
        except Exception as exc:
            raise self._failure(f"scale {deployment}", exc, ScalerError) from exc

    def stop(self) -> None:
        for watcher in list(self._watches):
            watcher.stop()

    # -- what the router's own scaling needs (router.selfscale_kube) ------------------------

    def _raw(self, action: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            response = call(*args, _preload_content=False, **kwargs)
            return json.loads(response.data) if response.data else {}
        except Exception as exc:
            raise self._failure(action, exc, ScalerError) from exc

    def server_version(self) -> tuple[int, int]:
        from kubernetes import client

        body = self._raw("read the server version", client.VersionApi(self._client).get_code)
        try:
            return int(body["major"]), int(str(body["minor"]).rstrip("+"))
        except (KeyError, ValueError) as exc:
            raise ScalerError(f"unreadable server version {body!r}") from exc

    def read_deployment(self, namespace: str, name: str) -> Object:
        return dict(
            self._raw(
                f"read Deployment {name}", self._apps.read_namespaced_deployment, name, namespace
            )
        )

    def patch_deployment(self, namespace: str, name: str, patch: Object) -> None:
        call = self._apps.patch_namespaced_deployment
        self._raw(f"patch Deployment {name}", call, name, namespace, patch)

    def list_nodes(self) -> list[Object]:
        return list(self._raw("list Nodes", self._core.list_node).get("items") or [])

    def list_all_pods(self) -> list[Object]:
        body = self._raw("list Pods", self._core.list_pod_for_all_namespaces)
        return list(body.get("items") or [])

    def resize_pod(self, namespace: str, name: str, patch: Object) -> None:
        try:
            self._core.patch_namespaced_pod_resize(name, namespace, patch, _preload_content=False)
        except Exception as exc:
            status = getattr(exc, "status", None)
            pod_gone = f'pods "{name}" not found' in str(getattr(exc, "body", "") or "")
            if status == 405 or (status == 404 and not pod_gone):
                raise ResizeUnsupported(f"resize Pod {name}: no pods/resize on the server") from exc
            raise self._failure(f"resize Pod {name}", exc, ScalerError) from exc

    def read_pod_disruption_budget(self, namespace: str, name: str) -> Object | None:
        from kubernetes import client

        policy: Any = client.PolicyV1Api(self._client)
        try:
            response = policy.read_namespaced_pod_disruption_budget(
                name, namespace, _preload_content=False
            )
            return dict(json.loads(response.data))
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise self._failure(f"read PodDisruptionBudget {name}", exc, ScalerError) from exc

    def write_pod_disruption_budget(self, namespace: str, body: Object, exists: bool) -> None:
        from kubernetes import client

        policy: Any = client.PolicyV1Api(self._client)
        name = body["metadata"]["name"]
        if exists:
            self._raw(
                f"patch PodDisruptionBudget {name}",
                policy.patch_namespaced_pod_disruption_budget,
                name,
                namespace,
                {"spec": body["spec"]},
            )
        else:
            self._raw(
                f"create PodDisruptionBudget {name}",
                policy.create_namespaced_pod_disruption_budget,
                namespace,
                body,
            )


def ready_addresses(endpoint_slice: Object, port_name: str | None) -> list[str]:
    """`http://ip:port` of each ready endpoint in an EndpointSlice."""
    ports = endpoint_slice.get("ports") or []
    chosen = next(
        (p for p in ports if port_name is None or p.get("name") == port_name),
        None,
    )
    if chosen is None or chosen.get("port") is None:
        return []
    port = chosen["port"]
    urls = []
    for endpoint in endpoint_slice.get("endpoints") or []:
        conditions = endpoint.get("conditions") or {}
        if conditions.get("ready") is False or conditions.get("terminating") is True:
            continue
        for address in endpoint.get("addresses") or []:
            host = f"[{address}]" if ":" in address else address
            urls.append(f"http://{host}:{port}")
    return urls


def pod_is_ready(pod: Object) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
