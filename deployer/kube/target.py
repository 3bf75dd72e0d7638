"""The `kubernetes` target: any cluster through a kubeconfig context (AKS included).

A deploy refuses an HPA on the model deployment, reuses the service's keys, renders the
objects (`manifests`), writes only those whose applied hash differs from the live one
(server-side apply; so an unchanged re-deploy writes nothing), adds the service to the
router's configuration (read-modify-write), installs the router when it is missing, and
waits for the rollout, diagnosing failures from pod status, events and logs. Every step is
idempotent: a deploy killed half-way and run again converges.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.credentials import SigningKey, issue_token, new_key, new_signing_key, regenerate
from deployer.errors import (
    DeployConfigError,
    DeploymentFailed,
    HpaConflict,
    ServiceNotFound,
    TargetError,
)
from deployer.kube import routerconf
from deployer.kube.api import KubeApi, Obj, describe
from deployer.kube.manifests import (
    DEFAULT_MODEL_IMAGE,
    DEFAULT_ROUTER_IMAGE,
    HASH_ANNOTATION,
    MAX_CONFIGMAP_BYTES,
    REQUEST_ANNOTATION,
    ROUTER_NAME,
    ROUTER_NAMESPACE,
    ROUTER_REPLICAS,
    Credentials,
    RouterSettings,
    model_selector,
    router_objects,
    secret_data,
    secret_values,
    service_objects,
    to_yaml_stream,
)
from deployer.kube.rebuild import request_from_cluster
from deployer.kube.status import RolloutStatus, rollout_status
from deployer.package import package
from deployer.request import DeployRequest, check_service_name
from deployer.states import ServiceInfo, ServiceState, scoring_paths

if TYPE_CHECKING:
    from rules.plan import Plan

Say = Callable[[str], None]
OWNED = "app.kubernetes.io/managed-by=aksflight"


def _quiet(_: str) -> None:
    return None


def _owned(obj: Obj | None) -> bool:
    if not obj:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get("app.kubernetes.io/managed-by") == "aksflight")


class KubernetesTarget:
    name = "kubernetes"

    def __init__(
        self,
        context: str | None = None,
        *,
        kubeconfig: str | Path | None = None,
        namespace: str | None = None,
        router_namespace: str = ROUTER_NAMESPACE,
        router_image: str = DEFAULT_ROUTER_IMAGE,
        router_replicas: int = ROUTER_REPLICAS,
        cluster_purpose: str = "FastProd",
        api: KubeApi | None = None,
        poll_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.context = context
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.router_namespace = router_namespace
        self.router_image = router_image
        self.router_replicas = router_replicas
        self.cluster_purpose = cluster_purpose
        self._api = api
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi.connect(self.kubeconfig, self.context)
        return self._api

    def settings(self, services_namespace: str) -> RouterSettings:
        return RouterSettings(
            namespace=self.router_namespace,
            services_namespace=services_namespace,
            image=self.router_image,
            replicas=self.router_replicas,
            cluster_purpose=self.cluster_purpose,
        )

    # --- namespaces --------------------------------------------------------------------------

    def services_namespace(self, config_namespace: str | None = None) -> str:
        """The deploy's namespace; the installed router discovers services in one only."""
        _, current = routerconf.read(self.api, self.settings("default"))
        installed = current.discovery.kubernetes.namespace if current else None
        wanted = self.namespace or config_namespace or installed or "default"
        if installed is not None and wanted != installed:
            raise DeployConfigError(
                "namespace",
                f"{wanted!r}: the router in this cluster discovers services in {installed!r} only",
            )
        return wanted

    # --- rendering ---------------------------------------------------------------------------

    def _credentials(self, request: DeployRequest, secret: Obj | None) -> Credentials:
        config = request.config
        values = secret_values(secret)
        if config.auth_mode == "key":
            return Credentials(
                keys=(
                    config.primary_key or values.get("primary_key") or new_key(),
                    config.secondary_key or values.get("secondary_key") or new_key(),
                )
            )
        if config.auth_mode == "token":
            if values.get("signing_key.pem") and values.get("public_key.pem"):
                return Credentials(
                    signing_private=values["signing_key.pem"],
                    signing_public=values["public_key.pem"],
                )
            signer = new_signing_key()
            return Credentials(signing_private=signer.private_pem, signing_public=signer.public_pem)
        return Credentials()

    @staticmethod
    def _replicas(request: DeployRequest, live: Obj | None) -> int:
        """Autoscaled: keep what the router's autoscaler set (within min..max)."""
        config = request.config
        if not config.autoscale or live is None:
            return config.initial_replicas
        current = int((live.get("spec") or {}).get("replicas") or config.min_replicas)
        return max(config.min_replicas, min(config.max_replicas, current))

    def _service_objects(
        self, request: DeployRequest, namespace: str, credentials: Credentials, replicas: int
    ) -> list[Obj]:
        built = package(request.inference, request.models, request.fingerprint())
        for what, files in (("source directory", built.app_files), ("models", built.model_files)):
            size = sum(f.size for f in files)
            if size > MAX_CONFIGMAP_BYTES:
                raise DeployConfigError(
                    "models" if what == "models" else "source_directory",
                    f"the {what} is {size} bytes; the kubernetes target embeds at most "
                    f"{MAX_CONFIGMAP_BYTES} (give large models as an https URI)",
                )
        image = request.inference.environment.image or DEFAULT_MODEL_IMAGE
        return service_objects(
            request,
            built,
            namespace=namespace,
            credentials=credentials,
            replicas=replicas,
            image=image,
        )

    def render(self, request: DeployRequest, output: str = "yaml") -> str:
        """`--dry-run`: every manifest (router and service), without a cluster."""
        namespace = self.namespace or request.config.effective_namespace()
        settings = self.settings(namespace)
        credentials = self._credentials(request, None)
        objects = self._service_objects(
            request, namespace, credentials, request.config.initial_replicas
        )
        entry = routerconf.service_entry(request.name, namespace, request.config, credentials)
        secret = routerconf.secret_object(settings, routerconf.router_config(settings, [entry]))
        namespaces = [
            self._namespace_object(ns) for ns in dict.fromkeys((self.router_namespace, namespace))
        ]
        everything = [*namespaces, *router_objects(settings), secret, *objects]
        if output == "json":
            return json.dumps(everything, indent=2) + "\n"
        if output == "yaml":
            return to_yaml_stream(everything)
        return "".join(f"{describe(o)}\n" for o in everything)

    @staticmethod
    def _namespace_object(name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "aksflight"}},
        }

    # --- writing -----------------------------------------------------------------------------

    def _apply_changed(self, obj: Obj, say: Say) -> bool:
        meta = obj["metadata"]
        live = self.api.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        wanted = (meta.get("annotations") or {}).get(HASH_ANNOTATION)
        if (
            live is not None
            and (live["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) == wanted
        ):
            return False
        self.api.apply(obj)
        say(f"applied {describe(obj)}")
        return True

    def _ensure_namespace(self, name: str, say: Say) -> None:
        if self.api.get("v1", "Namespace", name, None) is None:
            self.api.apply(self._namespace_object(name))
            say(f"created namespace {name}")

    def _refuse_hpa(self, namespace: str, name: str) -> None:
        """v1: never put an HPA on a model deployment (it fights the router's autoscaler)."""
        for hpa in self.api.list("autoscaling/v2", "HorizontalPodAutoscaler", namespace):
            target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if target.get("kind") == "Deployment" and target.get("name") == name:
                raise HpaConflict(
                    f"HorizontalPodAutoscaler {namespace}/{hpa['metadata']['name']} targets the "
                    f"model deployment {name}; it would fight the router's autoscaler; delete "
                    "it (use autoscale_* in the deployment configuration instead)"
                )

    def needs_router_install(self) -> bool:
        return self.api.get("apps/v1", "Deployment", ROUTER_NAME, self.router_namespace) is None

    def deploy(
        self,
        request: DeployRequest,
        *,
        wait: bool = True,
        timeout: float = 600.0,
        say: Say = _quiet,
        plan: Plan | None = None,
    ) -> ServiceInfo:
        namespace = self.services_namespace(request.config.namespace)
        settings = self.settings(namespace)
        self._refuse_hpa(namespace, request.name)
        secret = self.api.get("v1", "Secret", f"{request.name}-keys", namespace)
        credentials = self._credentials(request, secret)
        live = self.api.get("apps/v1", "Deployment", request.name, namespace)
        objects = self._service_objects(
            request, namespace, credentials, self._replicas(request, live)
        )
        installing = self.needs_router_install()
        for ns in dict.fromkeys((self.router_namespace, namespace)):
            self._ensure_namespace(ns, say)
        changed = [obj for obj in objects if self._apply_changed(obj, say)]
        entry = routerconf.service_entry(request.name, namespace, request.config, credentials)
        if routerconf.update(self.api, settings, routerconf.upsert(entry)):
            say("router configuration updated")
        for obj in router_objects(settings):
            self._apply_changed(obj, say)
        if not changed:
            say(f"{request.name} is unchanged")
        if wait:
            if installing:
                self._wait_rollout(
                    ROUTER_NAME, self.router_namespace, timeout, say, plan, router=True
                )
            self._wait_rollout(request.name, namespace, timeout, say, plan)
        return self.info(request.name)

    # --- waiting -----------------------------------------------------------------------------

    def _logs(self, namespace: str) -> Callable[[str, str, bool], str]:
        return lambda pod, container, previous: self.api.pod_log(
            namespace, pod, container, 200, previous
        )

    def rollout(
        self, name: str, namespace: str, plan: Plan | None = None, *, router: bool = False
    ) -> RolloutStatus:
        deployment = self.api.get("apps/v1", "Deployment", name, namespace)
        if deployment is None or not (router or _owned(deployment)):
            raise ServiceNotFound(name, f"namespace {namespace}")
        template = deployment["spec"]["template"]["metadata"].get("labels") or {}
        selector = dict(deployment["spec"]["selector"]["matchLabels"])
        if "app.kubernetes.io/version" in template:
            selector["app.kubernetes.io/version"] = template["app.kubernetes.io/version"]
        pods = self.api.list(
            "v1", "Pod", namespace, ",".join(f"{k}={v}" for k, v in selector.items())
        )
        return rollout_status(deployment, pods, self._logs(namespace), plan, router=router)

    def _wait_rollout(
        self,
        name: str,
        namespace: str,
        timeout: float,
        say: Say,
        plan: Plan | None,
        *,
        router: bool = False,
    ) -> None:
        started = time.monotonic()
        last = ""
        what = "the router" if router else name
        while True:
            status = self.rollout(name, namespace, plan, router=router)
            line = f"{what}: {status.state.value}, {status.detail}"
            if line != last:
                say(line)
                last = line
            if status.state is ServiceState.HEALTHY:
                return
            if status.diagnosis is not None:
                raise DeploymentFailed(
                    f"{what}: {status.diagnosis.cause}: {status.diagnosis.message}",
                    status.state.value,
                    status.diagnosis,
                )
            if time.monotonic() - started > timeout:
                raise DeploymentFailed(
                    f"{what}: still {status.state.value} after {timeout:g} s ({status.detail})",
                    status.state.value,
                )
            self.sleep(self.poll_seconds)

    def wait(
        self, name: str, timeout: float, *, say: Say = _quiet, plan: Plan | None = None
    ) -> None:
        self._wait_rollout(name, self.services_namespace(), timeout, say, plan)

    # --- reading -----------------------------------------------------------------------------

    def base_url(self) -> str:
        service = self.api.get("v1", "Service", ROUTER_NAME, self.router_namespace)
        if service is None:
            return "http://<router not installed>"
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        host = next(
            (i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")),
            None,
        )
        return f"http://{host or (service.get('spec') or {}).get('clusterIP', '<pending>')}"

    def info(self, name: str) -> ServiceInfo:
        check_service_name(name)
        namespace = self.services_namespace()
        status = self.rollout(name, namespace)
        deployment = self.api.get("apps/v1", "Deployment", name, namespace) or {}
        record = json.loads(
            (deployment["metadata"].get("annotations") or {}).get(REQUEST_ANNOTATION, "{}")
        )
        config = record.get("config") or {}
        auth = (
            "token"
            if config.get("token_auth_enabled")
            else ("none" if config.get("auth_enabled") is False else "key")
        )
        scoring, swagger = scoring_paths(self.base_url(), name)
        detail = status.diagnosis.message if status.diagnosis else status.detail
        return ServiceInfo(
            name, status.state, scoring, swagger, auth, self.name, detail, {"namespace": namespace}
        )

    def list(self) -> list[ServiceInfo]:
        namespace = self.services_namespace()
        selector = f"{OWNED},app.kubernetes.io/component=model"
        deployments = self.api.list("apps/v1", "Deployment", namespace, selector)
        return [
            self.info(d["metadata"]["name"])
            for d in sorted(deployments, key=lambda d: d["metadata"]["name"])
        ]

    def _secret(self, name: str) -> tuple[Obj, dict[str, str]]:
        check_service_name(name)
        namespace = self.services_namespace()
        secret = self.api.get("v1", "Secret", f"{name}-keys", namespace)
        if secret is None or not _owned(secret):
            raise ServiceNotFound(name, f"namespace {namespace}")
        return secret, secret_values(secret)

    def keys(self, name: str) -> tuple[str, str]:
        _, values = self._secret(name)
        if "primary_key" not in values:
            raise TargetError(f"{name} does not use key auth")
        return values["primary_key"], values["secondary_key"]

    def token(self, name: str) -> tuple[str, datetime]:
        _, values = self._secret(name)
        if "signing_key.pem" not in values:
            raise TargetError(f"{name} does not use token auth")
        return issue_token(SigningKey(values["signing_key.pem"], values["public_key.pem"]), name)

    def regen_key(self, name: str, which: str, value: str | None = None) -> tuple[str, str]:
        for attempt in range(8):
            secret, values = self._secret(name)
            if "primary_key" not in values:
                raise TargetError(f"{name} does not use key auth")
            keys = regenerate((values["primary_key"], values["secondary_key"]), which, value)
            updated = {
                **secret,
                "data": secret_data({"primary_key": keys[0], "secondary_key": keys[1]}),
            }
            annotations = dict(updated["metadata"].get("annotations") or {})
            annotations.pop(HASH_ANNOTATION, None)  # the next deploy writes it again
            updated["metadata"] = {**updated["metadata"], "annotations": annotations}
            try:
                self.api.request("PUT", _secret_path(secret), body=updated, conflict_retry=False)
                break
            except Exception as exc:
                from deployer.errors import KubeApiError

                if not isinstance(exc, KubeApiError) or exc.status != 409 or attempt == 7:
                    raise
        namespace = self.services_namespace()
        _, current = routerconf.read(self.api, self.settings(namespace))
        entry = current.service(name) if current else None
        if entry is not None:
            from router.config import KeyAuth

            new_entry = entry.model_copy(
                update={"auth": KeyAuth(primary_key=keys[0], secondary_key=keys[1])}
            )
            routerconf.update(self.api, self.settings(namespace), routerconf.upsert(new_entry))
        return keys

    def logs(self, name: str, tail: int = 5000, init: bool = False) -> str:
        namespace = self.services_namespace()
        selector = ",".join(f"{k}={v}" for k, v in model_selector(check_service_name(name)).items())
        pods = self.api.list("v1", "Pod", namespace, selector)
        if not pods and self.api.get("apps/v1", "Deployment", name, namespace) is None:
            raise ServiceNotFound(name, f"namespace {namespace}")
        container = "fetch-model" if init else "model"
        parts = []
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            text = self.api.pod_log(namespace, pod["metadata"]["name"], container, tail)
            parts.append(f"==> {pod['metadata']['name']} ({container}) <==\n{text.rstrip()}")
        return "\n".join(parts)

    def last_request(self, name: str) -> DeployRequest:
        """The deployed request, rebuilt from the cluster (for `update`)."""
        namespace = self.services_namespace()
        deployment = self.api.get("apps/v1", "Deployment", check_service_name(name), namespace)
        if deployment is None or not _owned(deployment):
            raise ServiceNotFound(name, f"namespace {namespace}")
        return request_from_cluster(self.api, deployment)

    # --- deleting ----------------------------------------------------------------------------

    def delete(self, name: str) -> None:
        """The service's objects and its router entry; objects not labelled ours stay."""
        namespace = self.services_namespace()
        check_service_name(name)
        found = False
        routerconf.update(self.api, self.settings(namespace), routerconf.remove(name))
        for api_version, kind, object_name in (
            ("v1", "Service", name),
            ("apps/v1", "Deployment", name),
            ("v1", "ConfigMap", f"{name}-app"),
            ("v1", "ConfigMap", f"{name}-models"),
            ("v1", "Secret", f"{name}-keys"),
        ):
            live = self.api.get(api_version, kind, object_name, namespace)
            if live is not None and _owned(live):
                self.api.delete(api_version, kind, object_name, namespace)
                found = True
        if not found:
            raise ServiceNotFound(name, f"namespace {namespace}")

    def uninstall_router(self) -> None:
        """Remove the router (every object `router_objects` and its configuration made)."""
        settings = self.settings(self.services_namespace())
        for obj in [
            *router_objects(settings),
            routerconf.secret_object(settings, routerconf.router_config(settings, [])),
        ]:
            meta = obj["metadata"]
            live = self.api.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
            if _owned(live):
                self.api.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


def _secret_path(secret: Obj) -> str:
    meta = secret["metadata"]
    return f"/api/v1/namespaces/{meta['namespace']}/secrets/{meta['name']}"
