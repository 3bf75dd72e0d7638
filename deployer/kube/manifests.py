"""The Kubernetes objects a deploy creates, as plain dicts (no I/O).

Router, once per cluster (namespace `azureml` by default, as v1's azureml-fe):
    ServiceAccount, Role + RoleBinding (pods, for peers; in the router's namespace),
    Role + RoleBinding (EndpointSlices and deployments/scale; in the services' namespace),
    Secret (the router's configuration, holding the services' keys), Deployment (3 pods),
    Service (LoadBalancer, port 80).
Per service (in its namespace):
    Secret `<name>-keys` (keys or the token signing key), ConfigMap `<name>-app` (the
    source directory) and `<name>-models` (small local models), Deployment `<name>` (init
    container fetching the models, the model server with probes and resources from the
    configuration), Service `<name>` (the router discovers its EndpointSlices by name).
Everything carries `app.kubernetes.io/*` labels and, in `aksflight.io/applied-hash`, a hash
of what was applied, so an unchanged object is never written again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from deployer.kube.fetch import FETCH_SCRIPT
from deployer.package import Package
from deployer.request import DeployRequest

Obj = dict[str, Any]

FIELD_MANAGER = "aksflight"
HASH_ANNOTATION = "aksflight.io/applied-hash"
REQUEST_ANNOTATION = "aksflight.io/request"
RELEASE_ANNOTATION = "aksflight.io/release"
ROUTER_NAME = "aksflight-router"
ROUTER_SIZE = {"cpu": "500m", "memory": "512Mi"}  # router.scaling_config.DEFAULT_SIZES[0]
ROUTER_GRACE_SECONDS = 75
ROUTER_NAMESPACE = "azureml"
ROUTER_PORT = 8080
ROUTER_REPLICAS = 3
ROUTER_CONFIG_KEY = "router.json"
DEFAULT_ROUTER_IMAGE = "aksflight:0.1.0"  # the repository's Dockerfile; push it to your ACR
DEFAULT_MODEL_IMAGE = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
MODEL_PORT = 5001
APP_ROOT = "/var/azureml-app"
MAX_CONFIGMAP_BYTES = 900 * 1024  # the API limit is 1 MiB for the whole object
_KEY = re.compile(r"[^-._a-zA-Z0-9]")


@dataclass(frozen=True)
class RouterSettings:
    namespace: str = ROUTER_NAMESPACE
    services_namespace: str = "default"
    image: str = DEFAULT_ROUTER_IMAGE
    replicas: int = ROUTER_REPLICAS
    cluster_purpose: str = "FastProd"


@dataclass(frozen=True)
class Credentials:
    """What the service's Secret holds: the keys, or the token signing key pair."""

    keys: tuple[str, str] | None = None
    signing_private: str | None = None
    signing_public: str | None = None


@dataclass(frozen=True)
class ServiceManifests:
    objects: list[Obj]
    credentials: Credentials
    extra: dict[str, Any] = field(default_factory=dict)


def labels(name: str, instance: str, component: str, version: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "aksflight",
        "app.kubernetes.io/managed-by": "aksflight",
    }
    if version:
        out["app.kubernetes.io/version"] = version
    return out


def model_selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": name, "app.kubernetes.io/component": "model"}


ROUTER_SELECTOR = {
    "app.kubernetes.io/instance": ROUTER_NAME,
    "app.kubernetes.io/component": "router",
}


def _meta(name: str, namespace: str | None, label_set: dict[str, str], **extra: Any) -> Obj:
    meta: Obj = {"name": name, "labels": dict(label_set)}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def cpu_quantity(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def memory_quantity(gigabytes: float) -> str:
    return f"{round(gigabytes * 1024)}Mi"


def secret_data(values: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}


def secret_values(secret: Obj | None) -> dict[str, str]:
    """A Secret's values as text (what the API returns is base64 in `data`)."""
    if not secret:
        return {}
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def applied_hash(obj: Obj, *, volatile_replicas: bool = False) -> str:
    """A hash of the object as applied, without the hash annotation itself; the replica
    count is left out when the router's autoscaler owns it."""
    copy = json.loads(json.dumps(obj))
    (copy.get("metadata") or {}).get("annotations", {}).pop(HASH_ANNOTATION, None)
    if volatile_replicas:
        (copy.get("spec") or {}).pop("replicas", None)
    return hashlib.sha256(json.dumps(copy, sort_keys=True).encode()).hexdigest()[:32]


def stamp(obj: Obj, *, volatile_replicas: bool = False) -> Obj:
    """The object with its applied-hash annotation (what makes re-deploys write nothing)."""
    annotations = obj["metadata"].setdefault("annotations", {})
    annotations[HASH_ANNOTATION] = applied_hash(obj, volatile_replicas=volatile_replicas)
    return obj


# --- the router ------------------------------------------------------------------------------


def router_objects(settings: RouterSettings) -> list[Obj]:
    """Everything of the router but its configuration Secret (see `routerconf`)."""
    ns, services_ns = settings.namespace, settings.services_namespace
    base = labels("aksflight-router", ROUTER_NAME, "router")
    objects: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(ROUTER_NAME, ns, base),
            "automountServiceAccountToken": True,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(f"{ROUTER_NAME}-peers", ns, base),
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
            ],
        },
        _binding(f"{ROUTER_NAME}-peers", ns, ns, base),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(f"{ROUTER_NAME}-discovery", services_ns, base),
            "rules": [
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["apps"],
                    "resources": ["deployments/scale"],
                    "verbs": ["get", "patch", "update"],
                },
            ],
        },
        _binding(f"{ROUTER_NAME}-discovery", services_ns, ns, base),
        {
            # The router's own scaling: resize its pods in place or roll its template,
            # scale its Deployment, keep its PodDisruptionBudget (router/selfscale_kube.py).
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(f"{ROUTER_NAME}-self-scaling", ns, base),
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]},
                {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]},
                {"apiGroups": [""], "resources": ["pods/resize"], "verbs": ["patch"]},
                {
                    "apiGroups": ["policy"],
                    "resources": ["poddisruptionbudgets"],
                    "verbs": ["get", "create", "patch"],
                },
            ],
        },
        _binding(f"{ROUTER_NAME}-self-scaling", ns, ns, base),
        {
            # Room on the nodes (allocatable minus requested) before the router grows.
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(f"{ROUTER_NAME}-room", None, base),
            "rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(f"{ROUTER_NAME}-room", None, base),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": f"{ROUTER_NAME}-room",
            },
            "subjects": [{"kind": "ServiceAccount", "name": ROUTER_NAME, "namespace": ns}],
        },
        _router_deployment(settings, base),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(ROUTER_NAME, ns, base),
            "spec": {
                "type": "LoadBalancer",
                "selector": dict(ROUTER_SELECTOR),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]
    return [stamp(o) for o in objects]


def _binding(role: str, namespace: str, sa_namespace: str, base: dict[str, str]) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(role, namespace, base),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": ROUTER_NAME, "namespace": sa_namespace}],
    }


def _router_deployment(settings: RouterSettings, base: dict[str, str]) -> Obj:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(ROUTER_NAME, settings.namespace, base),
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": dict(ROUTER_SELECTOR)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": dict(base)},
                "spec": {
                    # Drain: readiness off, a drain delay, then in-flight requests up to the
                    # longest scoring timeout (60 s by default).
                    "terminationGracePeriodSeconds": ROUTER_GRACE_SECONDS,
                    "serviceAccountName": ROUTER_NAME,
                    "containers": [
                        {
                            "name": "router",
                            "image": settings.image,
                            "command": ["python", "-m", "router"],
                            "args": ["--config", f"/etc/aksflight/{ROUTER_CONFIG_KEY}"],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": ROUTER_PORT}],
                            "readinessProbe": {
                                **probe,
                                "httpGet": {"path": "/readyz", "port": "http"},
                            },
                            "livenessProbe": probe,
                            # Requests equal limits at the first of the router's size
                            # steps, which its self-scaling moves up and down.
                            "resources": {
                                "requests": dict(ROUTER_SIZE),
                                "limits": dict(ROUTER_SIZE),
                            },
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/aksflight", "readOnly": True},
                                {"name": "collected", "mountPath": "/var/lib/aksflight"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "secret": {"secretName": f"{ROUTER_NAME}-config"}},
                        {"name": "collected", "emptyDir": {}},  # collect_model_data
                    ],
                },
            },
        },
    }


# --- a service -------------------------------------------------------------------------------


def _config_map(
    name: str, namespace: str, base: dict[str, str], files: Any
) -> tuple[Obj, list[Obj]]:
    """A ConfigMap of files (text in `data`, the rest in `binaryData`) and its volume items."""
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    items: list[Obj] = []
    total = 0
    for index, packaged in enumerate(files):
        key = f"f{index:04d}-{_KEY.sub('_', packaged.target.rsplit('/', 1)[-1])}"[:253]
        content = packaged.source.read_bytes()
        total += len(content)
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
        items.append({"key": key, "path": packaged.target})
    obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, base)}
    if data:
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    obj["metadata"].setdefault("annotations", {})["aksflight.io/bytes"] = str(total)
    return obj, items


def service_objects(
    request: DeployRequest,
    built: Package,
    *,
    namespace: str,
    credentials: Credentials,
    replicas: int,
    image: str,
) -> list[Obj]:
    """The service's Secret, ConfigMaps, Deployment and Service."""
    name = request.name
    base = labels("aksflight-webservice", name, "model")
    values: dict[str, str] = {}
    if credentials.keys is not None:
        values = {"primary_key": credentials.keys[0], "secondary_key": credentials.keys[1]}
    elif credentials.signing_private is not None and credentials.signing_public is not None:
        values = {
            "signing_key.pem": credentials.signing_private,
            "public_key.pem": credentials.signing_public,
        }
    secret: Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(f"{name}-keys", namespace, base),
        "type": "Opaque",
        "data": secret_data(values),
    }
    app, app_items = _config_map(f"{name}-app", namespace, base, built.app_files)
    models, model_items = _config_map(f"{name}-models", namespace, base, built.model_files)
    deployment = _model_deployment(
        request,
        built,
        namespace=namespace,
        replicas=replicas,
        image=image,
        app_items=app_items,
        model_items=model_items,
    )
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, namespace, base),
        "spec": {
            "type": "ClusterIP",
            "selector": model_selector(name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    stamp(deployment, volatile_replicas=request.config.autoscale)
    return [*(stamp(o) for o in (secret, app, models)), deployment, stamp(service)]


def _resources(request: DeployRequest) -> Obj:
    config = request.config
    requests = {"cpu": cpu_quantity(config.cpu_cores), "memory": memory_quantity(config.memory_gb)}
    limits: dict[str, str] = {}
    if config.cpu_cores_limit is not None:
        limits["cpu"] = cpu_quantity(config.cpu_cores_limit)
    if config.memory_gb_limit is not None:
        limits["memory"] = memory_quantity(config.memory_gb_limit)
    if config.gpu_cores:
        limits["nvidia.com/gpu"] = str(config.gpu_cores)
    out: Obj = {"requests": requests}
    if limits:
        out["limits"] = limits
    return out


def _model_deployment(
    request: DeployRequest,
    built: Package,
    *,
    namespace: str,
    replicas: int,
    image: str,
    app_items: list[Obj],
    model_items: list[Obj],
) -> Obj:
    from deployer.inference import model_dir_env

    name, config = request.name, request.config
    base = labels("aksflight-webservice", name, "model", built.digest)
    app_dir = f"{APP_ROOT}/app"
    http_get = {"path": "/", "port": "http", "scheme": "HTTP"}
    liveness = {
        "httpGet": http_get,
        "periodSeconds": config.period_seconds,
        "initialDelaySeconds": config.initial_delay_seconds,
        "timeoutSeconds": config.timeout_seconds,
        "successThreshold": config.success_threshold,
        "failureThreshold": config.failure_threshold,
    }
    readiness = {
        "httpGet": http_get,
        "periodSeconds": min(config.period_seconds, 5),
        "timeoutSeconds": config.timeout_seconds,
        "successThreshold": config.success_threshold,
        "failureThreshold": config.failure_threshold,
    }
    uris = [
        {"uri": m.uri, "path": f"{m.relative_dir}/{m.file_name}"}
        for m in request.models
        if m.uri is not None
    ]
    fetch = {
        "name": "fetch-model",
        "image": image,
        "command": ["python", "-c", FETCH_SCRIPT],
        "env": [
            {"name": "AKSFLIGHT_MODEL_URIS", "value": json.dumps(uris, sort_keys=True)},
            {"name": "AKSFLIGHT_MODEL_ROOT", "value": f"{APP_ROOT}/azureml-models"},
            {"name": "AKSFLIGHT_EMBEDDED", "value": "/var/aksflight/embedded"},
        ],
        "volumeMounts": [
            {"name": "models", "mountPath": f"{APP_ROOT}/azureml-models"},
            {"name": "embedded-models", "mountPath": "/var/aksflight/embedded", "readOnly": True},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
    }
    server = {
        "name": "model",
        "image": image,
        "command": ["azmlinfsrv", "--entry_script", f"{app_dir}/{built.entry_script}"],
        "args": ["--port", str(MODEL_PORT)],
        "env": [
            {"name": "AZUREML_MODEL_DIR", "value": model_dir_env(request.models, APP_ROOT)},
            {"name": "AZUREML_ENTRY_SCRIPT", "value": built.entry_script},
            {"name": "AZUREML_SOURCE_DIRECTORY", "value": app_dir},
            {"name": "AML_APP_ROOT", "value": app_dir},
            {"name": "SCORING_TIMEOUT_MS", "value": str(config.scoring_timeout_ms)},
            {"name": "WORKER_COUNT", "value": str(config.replica_max_concurrent_requests)},
        ],
        "ports": [{"name": "http", "containerPort": MODEL_PORT}],
        "livenessProbe": liveness,
        "readinessProbe": readiness,
        "resources": _resources(request),
        "volumeMounts": [
            {"name": "app", "mountPath": app_dir, "readOnly": True},
            {"name": "models", "mountPath": f"{APP_ROOT}/azureml-models", "readOnly": True},
        ],
    }
    annotations = {
        RELEASE_ANNOTATION: built.digest,
        REQUEST_ANNOTATION: json.dumps(_request_record(request), sort_keys=True),
    }
    if config.description:
        annotations["aksflight.io/description"] = config.description[:1000]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, base, annotations=annotations),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": model_selector(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": base, "annotations": {RELEASE_ANNOTATION: built.digest}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [fetch],
                    "containers": [server],
                    "volumes": [
                        {"name": "app", "configMap": {"name": f"{name}-app", "items": app_items}},
                        {
                            "name": "embedded-models",
                            "configMap": {"name": f"{name}-models", "items": model_items},
                        },
                        {"name": "models", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _request_record(request: DeployRequest) -> Obj:
    """What `update` needs to rebuild the request from the cluster."""
    return {
        "config": request.config.given(),
        "entry_script": request.inference.entry_name,
        "image": request.inference.environment.image,
        "requirements": list(request.inference.environment.pip_requirements),
        "models": [
            {"name": m.name, "version": m.version, "file": m.file_name, "uri": m.uri}
            for m in request.models
        ],
    }


def to_yaml_stream(objects: list[Obj]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(o, sort_keys=False) for o in objects)
