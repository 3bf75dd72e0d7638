"""Environment images: content-hashed, looked up in a workspace then a shared registry, and
built without a container engine when neither has them (see docs/images.md).

    from deployer.images import ensure_image, load_environment_file
    result = ensure_image(load_environment_file(path), "myacr.azurecr.io/environments",
                          "shared.azurecr.io/environments")
    result.pinned   # "myacr.azurecr.io/environments@sha256:…", for the pod spec

Errors are drawn in `deployer.images.errors`.
"""

from deployer.images.auth import Credential, Credentials
from deployer.images.ensure import (
    EnsureResult,
    LookupResult,
    copy_image,
    copy_reference,
    ensure_image,
    lookup,
    lookup_environment,
    resolve,
)
from deployer.images.errors import (
    ImageBuildError,
    ImageConfigError,
    ImageError,
    ImageNotFound,
    RegistryAuthError,
    RegistryError,
    UploadFailed,
)
from deployer.images.progress import NULL_PROGRESS, ProgressSink, RichProgress
from deployer.images.reference import ImageReference, RegistryLocation
from deployer.images.registry import Registry, TransferStats
from deployer.images.spec import (
    ImageEnvironment,
    ResolvedEnvironment,
    from_inference_environment,
    load_environment_file,
)
from deployer.images.transport import RegistryTransport, RetryPolicy

__all__ = [
    "NULL_PROGRESS",
    "Credential",
    "Credentials",
    "EnsureResult",
    "ImageBuildError",
    "ImageConfigError",
    "ImageEnvironment",
    "ImageError",
    "ImageNotFound",
    "ImageReference",
    "LookupResult",
    "ProgressSink",
    "Registry",
    "RegistryAuthError",
    "RegistryError",
    "RegistryLocation",
    "RegistryTransport",
    "ResolvedEnvironment",
    "RetryPolicy",
    "RichProgress",
    "TransferStats",
    "UploadFailed",
    "copy_image",
    "copy_reference",
    "ensure_image",
    "from_inference_environment",
    "load_environment_file",
    "lookup",
    "lookup_environment",
    "resolve",
]
