"""A strict fake Kubernetes API server for tests, spoken to by the official client over
plain HTTP on 127.0.0.1.

    with FakeKube() as kube:
        apps = kubernetes.client.AppsV1Api(kube.api_client())
        ...
        kube.store.get("Deployment", "web", "default")

See ``FakeKube`` for the switches, ``hooks`` for the request log, faults and access
policy, and ``Controllers.set_pod_behaviour`` for injected pod failures.
"""

from .errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    FakeKubeError,
    Forbidden,
    Gone,
    InternalError,
    Invalid,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
)
from .fake import FakeKube
from .hooks import AccessPolicy, Fault, Faults, PodLogs, RequestLog, RequestRecord
from .kubelet import MODES as POD_MODES
from .kubelet import PodBehaviour, PodRule
from .store import Store, StoreEvent, WriteRecord

__all__ = [
    "POD_MODES",
    "AccessPolicy",
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "FakeKube",
    "FakeKubeError",
    "Fault",
    "Faults",
    "Forbidden",
    "Gone",
    "InternalError",
    "Invalid",
    "MethodNotAllowed",
    "NotFound",
    "PodBehaviour",
    "PodLogs",
    "PodRule",
    "RequestLog",
    "RequestRecord",
    "Store",
    "StoreEvent",
    "TooManyRequests",
    "WriteRecord",
]
