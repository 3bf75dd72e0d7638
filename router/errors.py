"""The router's exception tree; third-party errors are translated into it at the boundary.

RouterError
├── ConfigError        bad or unreadable configuration (the CLI exits 2)
├── AuthError          credentials missing or wrong (always answered with one 401)
├── DispatchError      a request could not be placed on a replica
│   ├── QueueTimeout   waited longer than max_request_wait_time (503)
│   ├── NoReplicas     the service has no replica in rotation (503)
│   └── ReplicaFailed  the replica refused or died before answering (retried)
├── BodyTooLarge       the request body passed the size limit (413)
├── DiscoveryError     the Kubernetes API could not be read
└── ScalerError        a scale request was refused
    └── ResizeUnsupported  the cluster has no in-place pod resize (pods/resize)
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class ConfigError(RouterError):
    """The configuration file is missing, unreadable or invalid."""


class AuthError(RouterError):
    """The request carries no valid credential; the reason is logged, never returned."""


class DispatchError(RouterError):
    """A request could not be placed on a replica."""


class QueueTimeout(DispatchError):
    """No replica slot became free within max_request_wait_time."""


class NoReplicas(DispatchError):
    """The service has no replica in rotation."""


class ReplicaFailed(DispatchError):
    """The replica refused the connection or closed it before sending a byte."""


class BodyTooLarge(RouterError):
    """The request body is larger than the configured limit."""


class DiscoveryError(RouterError):
    """Replicas or peers could not be listed or watched."""


class ScalerError(RouterError):
    """The replica count could not be read or changed."""


class ResizeUnsupported(ScalerError):
    """The API server has no `pods/resize` subresource: resize by a rolling restart instead."""
