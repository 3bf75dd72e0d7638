"""The in-cluster router's configuration (router's own schema), kept in a Secret and
changed by read-modify-write with the Secret's resourceVersion, so two deploys running
at once cannot lose each other's service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.config import DeploymentConfiguration
from deployer.credentials import TOKEN_ISSUER
from deployer.errors import KubeApiError, TargetError
from deployer.kube.manifests import (
    HASH_ANNOTATION,
    ROUTER_CONFIG_KEY,
    ROUTER_NAME,
    ROUTER_PORT,
    ROUTER_SELECTOR,
    Credentials,
    RouterSettings,
    labels,
    secret_data,
    secret_values,
    stamp,
)
from router.config import (
    AccessLogConfig,
    AutoscaleConfig,
    DataCollectionConfig,
    DiscoveryConfig,
    KeyAuth,
    KubernetesDiscoveryConfig,
    KubernetesTarget,
    ListenConfig,
    NoAuth,
    PeersConfig,
    RouterConfig,
    ScalerConfig,
    ServiceConfig,
    TokenAuth,
    parse_config,
)
from router.errors import ConfigError as RouterConfigError
from router.scaling_config import SelfScalingConfig

if TYPE_CHECKING:
    from deployer.kube.api import KubeApi, Obj

SECRET_NAME = f"{ROUTER_NAME}-config"
COLLECTED_DIR = Path("/var/lib/aksflight/collected")  # an emptyDir in the router's pods
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (the router listens on the pod's address)
Mutation = Callable[[list[ServiceConfig]], list[ServiceConfig]]


def service_entry(
    name: str, namespace: str, config: DeploymentConfiguration, credentials: Credentials
) -> ServiceConfig:
    auth: KeyAuth | TokenAuth | NoAuth
    if credentials.keys is not None:
        auth = KeyAuth(primary_key=credentials.keys[0], secondary_key=credentials.keys[1])
    elif credentials.signing_public is not None:
        auth = TokenAuth(issuer=TOKEN_ISSUER, public_keys=[credentials.signing_public])
    else:
        auth = NoAuth()
    return ServiceConfig(
        name=name,
        auth=auth,
        replica_max_concurrent_requests=config.replica_max_concurrent_requests,
        max_request_wait_time=config.max_request_wait_time,
        scoring_timeout_ms=config.scoring_timeout_ms,
        autoscale=AutoscaleConfig(
            enabled=config.autoscale,
            min_replicas=config.min_replicas,
            max_replicas=config.max_replicas,
            refresh_seconds=float(config.refresh_seconds),
            target_utilization=config.target_utilization,
        ),
        kubernetes=KubernetesTarget(namespace=namespace, deployment=name),
        data_collection=DataCollectionConfig(
            enabled=config.collect_model_data,
            directory=COLLECTED_DIR if config.collect_model_data else None,
        ),
    )


def router_config(settings: RouterSettings, services: list[ServiceConfig]) -> RouterConfig:
    selector = ",".join(f"{k}={v}" for k, v in ROUTER_SELECTOR.items())
    return RouterConfig(
        listen=ListenConfig(host=ALL_INTERFACES, port=ROUTER_PORT),
        cluster_purpose=settings.cluster_purpose,  # type: ignore[arg-type]
        access_log=AccessLogConfig(enabled=True),
        discovery=DiscoveryConfig(
            kind="kubernetes",
            kubernetes=KubernetesDiscoveryConfig(
                namespace=settings.services_namespace, in_cluster=True
            ),
        ),
        peers=PeersConfig(
            kind="kubernetes",
            namespace=settings.namespace,
            label_selector=selector,
            port=ROUTER_PORT,
        ),
        scaler=ScalerConfig(kind="kubernetes"),
        # The router sizes itself (off by its own rule on DevTest clusters).
        self_scaling=SelfScalingConfig(target="kubernetes", namespace=settings.namespace),
        services=sorted(services, key=lambda s: s.name),
    )


def config_json(config: RouterConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True)


def secret_object(settings: RouterSettings, config: RouterConfig) -> Obj:
    return stamp(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": SECRET_NAME,
                "namespace": settings.namespace,
                "labels": labels("aksflight-router", ROUTER_NAME, "router"),
            },
            "type": "Opaque",
            "data": secret_data({ROUTER_CONFIG_KEY: config_json(config)}),
        }
    )


def read(api: KubeApi, settings: RouterSettings) -> tuple[Obj | None, RouterConfig | None]:
    secret = api.get("v1", "Secret", SECRET_NAME, settings.namespace)
    text = secret_values(secret).get(ROUTER_CONFIG_KEY)
    if not text:
        return secret, None
    try:
        return secret, parse_config(json.loads(text), f"Secret {settings.namespace}/{SECRET_NAME}")
    except (ValueError, RouterConfigError) as exc:
        raise TargetError(
            f"the router's configuration in the cluster is unreadable: {exc}"
        ) from exc


def update(api: KubeApi, settings: RouterSettings, mutate: Mutation, attempts: int = 8) -> bool:
    """Apply `mutate` to the services in the cluster's router configuration; True if it
    wrote. A concurrent writer makes the PUT answer 409: read again and redo."""
    for attempt in range(attempts):
        secret, current = read(api, settings)
        services = list(current.services) if current else []
        wanted = secret_object(settings, router_config(settings, mutate(services)))
        live_hash = (
            ((secret or {}).get("metadata") or {}).get("annotations", {}).get(HASH_ANNOTATION)
        )
        if live_hash == wanted["metadata"]["annotations"][HASH_ANNOTATION]:
            return False
        try:
            if secret is None:
                api.request("POST", _collection(settings), body=wanted, conflict_retry=False)
            else:
                wanted["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                api.request("PUT", _item(settings), body=wanted, conflict_retry=False)
            return True
        except KubeApiError as exc:
            if exc.status != 409 or attempt + 1 == attempts:
                raise
            api.sleep(api.retry.delay(attempt, None))
    return False


def _collection(settings: RouterSettings) -> str:
    return f"/api/v1/namespaces/{settings.namespace}/secrets"


def _item(settings: RouterSettings) -> str:
    return f"{_collection(settings)}/{SECRET_NAME}"


def upsert(entry: ServiceConfig) -> Mutation:
    return lambda services: [*(s for s in services if s.name != entry.name), entry]


def remove(name: str) -> Mutation:
    return lambda services: [s for s in services if s.name != name]
