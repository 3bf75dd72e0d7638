"""The image builder's exceptions.

    ImageError (a DeployerError)
    ├── ImageConfigError       bad input: an environment file, a field, an image reference
    │                          (also a DeployConfigError, so callers that map bad input to
    │                          exit code 2 need nothing new)
    ├── RegistryError          a registry answered an error or could not be reached
    │   │                      (`status`, `code` from the OCI error body, `temporary`)
    │   ├── RegistryAuthError  credentials were refused, or the token endpoint failed
    │   ├── ImageNotFound      no manifest for that reference (e.g. the base image)
    │   └── UploadFailed       a blob upload did not complete after its retries
    └── ImageBuildError        installing the requirements or packing a layer failed

Each message is one line. httpx and OS errors are translated where they are caught.
"""

from __future__ import annotations

from deployer.errors import DeployConfigError, DeployerError


class ImageError(DeployerError):
    """Base of every error of the image builder."""


class ImageConfigError(ImageError, DeployConfigError):
    """A setting of an environment, or an image reference, is wrong; `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        DeployConfigError.__init__(self, field, problem)


class RegistryError(ImageError):
    """The registry said no, or could not be reached; `temporary` ones were retried."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str = "", temporary: bool = False
    ) -> None:
        self.status = status
        self.code = code
        self.temporary = temporary
        super().__init__(message)


class RegistryAuthError(RegistryError):
    """Credentials refused (401/403) or no token could be had."""


class ImageNotFound(RegistryError):
    """No manifest (or blob) at that reference."""


class UploadFailed(RegistryError):
    """A blob upload failed for good; nothing was tagged, so nothing is half-written."""


class ImageBuildError(ImageError):
    """pip or packing failed; `log` holds pip's output."""

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        super().__init__(message)
