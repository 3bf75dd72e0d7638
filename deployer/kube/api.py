"""The deployer's seam to the Kubernetes API: plain dicts over the official client.

Every call goes through `KubeApi.request`, which uses the client's `ApiClient` (its
kubeconfig, TLS and credentials) for any kind, translates errors into `KubeApiError` keyed
by HTTP status, and retries the temporary ones with exponential backoff:

    409 Conflict (not AlreadyExists), 429 (honouring Retry-After), 500, 502, 503, 504 and
    connection failures: retried;
    400, 401, 403, 404, 422 and the other 4xx: raised at once (a validation error does not
    get better by asking again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from deployer.errors import KubeApiError

Obj = dict[str, Any]

# (apiVersion, kind) -> (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
}
TEMPORARY = frozenset({409, 429, 500, 502, 503, 504})
APPLY_TYPE = "application/apply-patch+yaml"
MERGE_TYPE = "application/merge-patch+json"


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    try:
        plural, namespaced = RESOURCES[(api_version, kind)]
    except KeyError:
        raise KubeApiError(
            f"{kind} ({api_version}) is not a kind the deployer writes", None, False
        ) from None
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise KubeApiError(f"{kind} {name or ''} needs a namespace", None, False)
        root += f"/namespaces/{quote(namespace, safe='')}"
    path = f"{root}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def describe(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), 30.0)
        return float(min(self.max_delay, self.base_delay * 2**attempt))


class KubeApi:
    """Blocking calls; `sleep` is injectable so backoff can be tested without waiting."""

    def __init__(
        self,
        api_client: Any,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.client = api_client
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.timeout = timeout
        self.writes = 0

    @classmethod
    def connect(cls, kubeconfig: str | Path | None = None, context: str | None = None) -> KubeApi:
        """From a kubeconfig (KUBECONFIG or ~/.kube/config by default) and a context."""
        from kubernetes import config as loader

        config: Any = loader
        try:
            client = config.new_client_from_config(
                config_file=str(kubeconfig) if kubeconfig else None, context=context
            )
        except (config.ConfigException, OSError, TypeError, ValueError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise KubeApiError(f"cannot use the kubeconfig: {detail}", None, False) from exc
        return cls(client)

    # --- the one way out -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        what: str = "",
        raw: bool = False,
        conflict_retry: bool = True,
    ) -> Any:
        """One call; temporary errors are retried (409 only with `conflict_retry`: a PUT
        with a stale resourceVersion must be re-read, not re-sent)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        attempt = 0
        while True:
            try:
                status, text, retry_after = self._send(method, path, body, query, headers)
            except KubeApiError as exc:  # the connection failed
                error, retry_after = exc, None
            else:
                if 200 <= status < 300:
                    if method != "GET":
                        self.writes += 1
                    return text if raw else (json.loads(text) if text else {})
                error = _api_error(status, text, what or f"{method} {path}")
            stale = error.status == 409 and not conflict_retry
            if not error.temporary or stale or attempt + 1 >= self.retry.attempts:
                raise error
            self.sleep(self.retry.delay(attempt, retry_after))
            attempt += 1

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        query: list[tuple[str, str]] | None,
        headers: dict[str, str],
    ) -> tuple[int, str, float | None]:
        try:
            params = self.client.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=dict(headers),
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.client.call_api(*params, _request_timeout=self.timeout)
            data = response.read()
        except Exception as exc:  # urllib3 and the client raise many kinds; all mean "no answer"
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise KubeApiError(
                f"{method} {path}: no answer from the API server ({detail})", None, True
            ) from exc
        retry_after = response.headers.get("Retry-After") if response.headers else None
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return int(response.status), (data or b"").decode("utf-8", "replace"), seconds

    # --- verbs -------------------------------------------------------------------------------

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> Obj | None:
        try:
            found: Obj = self.request("GET", resource_path(api_version, kind, namespace, name))
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[Obj]:
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        try:
            answer = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        except KubeApiError as exc:
            if exc.status == 404:
                return []
            raise
        return list(answer.get("items") or [])

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply (field manager `aksflight`, taking over conflicting fields);
        create-or-replace where the server does not support apply (415)."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", "aksflight"), ("force", "true")]
        try:
            applied: Obj = self.request(
                "PATCH",
                path,
                body=obj,
                query=query,
                content_type=APPLY_TYPE,
                what=f"apply {describe(obj)}",
            )
        except KubeApiError as exc:
            if exc.status != 415:
                raise
            return self.create_or_replace(obj)
        return applied

    def create_or_replace(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        live = self.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        if live is None:
            path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
            created: Obj = self.request("POST", path, body=obj, what=f"create {describe(obj)}")
            return created
        body = {**obj, "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}}
        return self.replace(body)

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: Obj
    ) -> Obj:
        path = resource_path(api_version, kind, namespace, name)
        result: Obj = self.request("PATCH", path, body=patch, content_type=MERGE_TYPE)
        return result

    def replace(self, obj: Obj) -> Obj:
        """PUT with the object's resourceVersion: a concurrent change answers 409."""
        meta = obj["metadata"]
        path = resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        result: Obj = self.request("PUT", path, body=obj, what=f"replace {describe(obj)}")
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        """True if it was there; dependents (ReplicaSets, Pods) go in the background."""
        path = resource_path(api_version, kind, namespace, name)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        try:
            self.request("DELETE", path, body=body)
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pod_log(
        self, namespace: str, pod: str, container: str, tail: int, previous: bool = False
    ) -> str:
        path = resource_path("v1", "Pod", namespace, pod) + "/log"
        query = [("container", container), ("tailLines", str(tail))]
        if previous:
            query.append(("previous", "true"))
        try:
            text: str = self.request("GET", path, query=query, raw=True)
        except KubeApiError as exc:
            if exc.status in (400, 404):
                return ""
            raise
        return text


def _api_error(status: int, text: str, what: str) -> KubeApiError:
    """One line from a Status body: reason, message and the first cause."""
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    reason = str(body.get("reason") or "")
    message = " ".join(str(body.get("message") or text or "").split())[:400]
    temporary = status in TEMPORARY and not (status == 409 and reason == "AlreadyExists")
    label = f"{status} {reason}".strip()
    return KubeApiError(
        f"{what}: {label}: {message}" if message else f"{what}: {label}", status, temporary
    )
