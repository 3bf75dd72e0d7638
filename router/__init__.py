"""The scoring router: an Azure ML v1-compatible front end for model-server replicas.

It authenticates (v1 keys or JWTs), routes `/api/v1/service/<name>/score`, queues and limits
requests per replica, retries dead replicas, discovers replicas and peers, and autoscales.
It imports none of the project's other packages: it runs on its own inside a pod.
"""

# ruff: noqa: E402 - the build is chosen before the first compiled module is imported
from router.native import select_build

select_build()  # compiled data plane or its sources: see router.native

from router.auth import TokenIssuer, generate_signing_key
from router.config import RouterConfig, ServiceConfig, dump_config, load_config, parse_config
from router.errors import (
    AuthError,
    BodyTooLarge,
    ConfigError,
    DiscoveryError,
    DispatchError,
    NoReplicas,
    QueueTimeout,
    ReplicaFailed,
    RouterError,
    ScalerError,
)
from router.server import RouterServer, serve, start_process, wait_until_ready

__all__ = [
    "AuthError",
    "BodyTooLarge",
    "ConfigError",
    "DiscoveryError",
    "DispatchError",
    "NoReplicas",
    "QueueTimeout",
    "ReplicaFailed",
    "RouterConfig",
    "RouterError",
    "RouterServer",
    "ScalerError",
    "ServiceConfig",
    "TokenIssuer",
    "dump_config",
    "generate_signing_key",
    "load_config",
    "parse_config",
    "serve",
    "start_process",
    "wait_until_ready",
]
