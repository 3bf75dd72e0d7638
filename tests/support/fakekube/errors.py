"""The fake API server's errors, each one a Kubernetes ``Status`` the server sends back.

FakeKubeError            anything wrong inside the fake itself (bad test setup)
└── ApiError             an error the API would answer with; carries code and reason
    ├── BadRequest           400
    ├── Forbidden            403
    ├── NotFound             404
    ├── MethodNotAllowed     405
    ├── AlreadyExists        409 reason AlreadyExists
    ├── Conflict             409 reason Conflict
    ├── Gone                 410 reason Expired (a watch from a compacted resourceVersion)
    ├── Invalid              422 with ``causes`` naming each field
    ├── TooManyRequests      429 with Retry-After
    └── InternalError        500
"""

from __future__ import annotations

from typing import Any


class FakeKubeError(Exception):
    """A mistake in how a test set up or drove the fake server."""


class ApiError(FakeKubeError):
    """An answer the API server gives as a ``Status`` body."""

    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        name: str = "",
        group: str = "",
        causes: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = causes or []
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object Kubernetes sends for this error."""
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


ERRORS_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
    500: InternalError,
}


def error_for_code(code: int, message: str, retry_after: int | None = None) -> ApiError:
    """An ApiError for an injected fault: the class for ``code``, or a generic one."""
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        cls = type(f"Status{code}", (ApiError,), {"code": code, "reason": "Unknown"})
    return cls(message, retry_after=retry_after)
