"""The error model: one table from domain exceptions to gRPC status codes.

Each error carries a `google.rpc.ErrorInfo` (reason `ERROR_REASON_<X>` of the
service's ErrorReason enum, domain `<service>.tenure`) and, for bad input, a
`google.rpc.BadRequest` with the field violations. Anything unexpected becomes
INTERNAL without internals in the message.
"""

from __future__ import annotations

from typing import cast

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared import errors

STATUS_OF: dict[type[errors.DomainError], grpc.StatusCode] = {
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.RuleViolation: grpc.StatusCode.FAILED_PRECONDITION,
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.Conflict: grpc.StatusCode.ABORTED,
    errors.PeerUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.LimitReached: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.NotAllowed: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}
EXCEPTION_OF: dict[grpc.StatusCode, type[errors.DomainError]] = {v: k for k, v in STATUS_OF.items()}


def status_code_of(exc: errors.DomainError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return grpc.StatusCode.INTERNAL


def reason_name(reason: str) -> str:
    return reason if reason.startswith("ERROR_REASON_") else f"ERROR_REASON_{reason}"


def to_status(exc: errors.DomainError, domain: str) -> grpc.Status:
    code = status_code_of(exc)
    info = error_details_pb2.ErrorInfo(reason=reason_name(exc.reason), domain=domain, metadata=exc.metadata)
    details = [info]
    if exc.field_violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in exc.field_violations
                ]
            )
        )
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        packed.append(a)
    st = status_pb2.Status(code=getattr(code_pb2, code.name), message=exc.message, details=packed)
    return rpc_status.to_status(st)


def internal_status(request_id: str) -> grpc.Status:
    st = status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error; quote request id {request_id} to support"
    )
    return rpc_status.to_status(st)


def from_rpc_error(err: grpc.RpcError) -> errors.DomainError:
    """Turn another service's error back into the domain exception it came from."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = err.details() if hasattr(err, "details") else str(err)
    reason, field_violations, metadata = None, [], {}
    try:
        st = rpc_status.from_call(cast(grpc.Call, err))  # a call's RpcError is also the call
    except Exception:  # pragma: no cover - malformed trailers
        st = None
    if st is not None:
        for d in st.details:
            if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                d.Unpack(info)
                reason = info.reason.removeprefix("ERROR_REASON_")
                metadata = dict(info.metadata)
            elif d.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                d.Unpack(br)
                field_violations = [(v.field, v.description) for v in br.field_violations]
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return errors.PeerUnavailable(f"peer unavailable: {message}", reason=reason or "PEER_UNAVAILABLE")
    cls = EXCEPTION_OF.get(code, errors.DomainError)
    return cls(message or code.name, reason=reason, field_violations=field_violations, metadata=metadata)
