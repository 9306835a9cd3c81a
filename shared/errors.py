"""Domain exceptions: pure Python, raised by domain code and handlers.

`shared.grpc.errors` maps each class to a gRPC status code (one table), adds a
`google.rpc.ErrorInfo` whose reason is `reason` and, for `InvalidInput`, a
`google.rpc.BadRequest` with the field violations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class DomainError(Exception):
    """Base class. `reason` is an UPPER_SNAKE value of the service's ErrorReason enum
    (without the `ERROR_REASON_` prefix)."""

    default_reason = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field_violations: Iterable[tuple[str, str]] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.field_violations = list(field_violations)
        self.metadata = dict(metadata or {})


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class RuleViolation(DomainError):
    """A business rule refuses the request (FAILED_PRECONDITION)."""

    default_reason = "RULE_VIOLATION"


class InvalidInput(DomainError):
    """Bad input (INVALID_ARGUMENT); carries field violations."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        if field is not None:
            kwargs.setdefault("field_violations", [(field, message)])
        super().__init__(message, **kwargs)


class Conflict(DomainError):
    """Optimistic-concurrency conflict (ABORTED): retry with a fresh read."""

    default_reason = "CONCURRENT_MODIFICATION"


class PeerUnavailable(DomainError):
    """Another service could not be reached (UNAVAILABLE)."""

    default_reason = "PEER_UNAVAILABLE"


class LimitReached(DomainError):
    """A numeric limit is reached, such as the sixth payer (RESOURCE_EXHAUSTED)."""

    default_reason = "LIMIT_REACHED"


class NotAllowed(DomainError):
    """The actor may not do this (PERMISSION_DENIED)."""

    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """The call carries no valid identity: no token, an expired one, or one not signed by a trusted key
    (UNAUTHENTICATED)."""

    default_reason = "UNAUTHENTICATED"
