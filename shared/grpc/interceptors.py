"""Server interceptor: the bearer token, the permission check, the request id, domain-error mapping, and
what an operator sees of each RPC: a server span (continuing the caller's `traceparent`), the RPC
metrics, and one structured log line naming the principal and the account (never the token)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from opentelemetry.trace import SpanKind, StatusCode

from shared import errors
from shared.auth.principal import Access, acting, current
from shared.db import is_unavailable
from shared.grpc.auth import PUBLIC_PREFIXES, Auth, Permissions
from shared.grpc.clients import REQUEST_ID
from shared.grpc.errors import internal_status, status_code_of, to_status
from shared.grpc.limits import violations
from shared.telemetry import tracing
from shared.telemetry.context import request_id_of
from shared.telemetry.metrics import ServiceMetrics

log = logging.getLogger("tenure.rpc")
#: The longest request_id a caller may send (services derive longer ones from it for their own calls).
MAX_REQUEST_ID = 128

#: codes that mean the server failed (a server span is marked as an error); the others are the caller's
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def require_operator(context: grpc.ServicerContext, what: str) -> None:
    """Refuse `what` (PERMISSION_DENIED) unless the verified caller is an operator or a service."""
    access = current()
    if access is None or access.principal.is_person:
        raise errors.NotAllowed(f"{what} is an operator action", reason="PERMISSION_DENIED")


def metadata_value(context: grpc.ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v.decode() if isinstance(v, bytes) else v
    return ""


def _traceparent(context: grpc.ServicerContext, request: Any) -> str:
    """The caller's trace context: the call's metadata, or for an event delivery the event's own."""
    return metadata_value(context, tracing.TRACEPARENT) or getattr(
        getattr(request, "event", None), "traceparent", ""
    )


def _check_limits(request: Any) -> None:
    """Refuse a request that breaks a field limit (shared/grpc/limits.py) before any work."""
    bad = violations(request) if isinstance(request, Message) else []
    if bad:
        first = f"{bad[0][0]}: {bad[0][1]}"
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise errors.InvalidInput(f"invalid request field {first}{more}", field_violations=bad)


def _check_request_id(request: Any, access: Access) -> None:
    rid = getattr(request, "request_id", None)
    if rid and len(rid) > MAX_REQUEST_ID and not access.principal.is_service:
        raise errors.InvalidInput(
            f"request_id is {len(rid)} characters long; at most {MAX_REQUEST_ID} are allowed",
            field="request_id",
            reason="REQUEST_ID_TOO_LONG",
        )


class ServerInterceptor(grpc.ServerInterceptor):
    """`permissions` maps a full proto service name to its table; a service without one refuses
    every call (nothing is let through by default)."""

    def __init__(
        self,
        service: str,
        auth: Auth | None,
        permissions: dict[str, Permissions],
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.service = service
        self.domain = f"{service}.tenure"
        self.auth = auth
        self.permissions = permissions
        self.metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[_Req, _Resp] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Req, _Resp] | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        svc_name, _, rpc = method.lstrip("/").partition("/")
        if method.startswith(PUBLIC_PREFIXES):
            return self._public(handler, method, svc_name, rpc)
        inner = handler.unary_unary
        domain = self.domain
        service = self.service
        auth = self.auth
        permissions = self.permissions
        metrics = self.metrics

        def wrapper(request: _Req, context: grpc.ServicerContext) -> _Resp:
            request_id = (
                metadata_value(context, REQUEST_ID)
                or getattr(request, "request_id", "")
                or getattr(getattr(request, "event", None), "request_id", "")
                or uuid.uuid4().hex
            )[:MAX_REQUEST_ID]
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            access: Access | None = None
            who = ""
            span_cm = tracing.tracer().start_as_current_span(
                f"{svc_name}/{rpc}",
                context=tracing.context_from(_traceparent(context, request)),
                kind=SpanKind.SERVER,
                attributes={
                    "rpc.system": "grpc",
                    "rpc.service": svc_name,
                    "rpc.method": rpc,
                    "tenure.service": service,
                    "tenure.request_id": request_id,
                },
                record_exception=False,
                set_status_on_exception=False,
            )
            span = span_cm.__enter__()
            try:
                table = permissions.get(svc_name)
                if auth is None or table is None:
                    raise errors.NotAllowed(f"{method} has no permission table", reason="PERMISSION_DENIED")
                principal = auth.authenticate(context.invocation_metadata())
                who = principal.label if principal is not None else "anonymous"
                _check_limits(request)
                access = table.check(rpc, request, principal)
                _check_request_id(request, access)
                with acting(access), request_id_of(request_id):
                    return inner(request, context)
            except errors.DomainError as exc:
                code = status_code_of(exc)
                context.abort_with_status(to_status(exc, domain))
            except Exception as exc:
                # context.abort raises a plain Exception after setting the code.
                set_code = context.code() if hasattr(context, "code") else None
                if set_code not in (None, grpc.StatusCode.OK):
                    code = set_code
                    raise
                if is_unavailable(exc):  # the database, for a moment: the caller may retry
                    log.warning("database unavailable in %s (request %s): %s", method, request_id, exc)
                    unavailable = errors.PeerUnavailable(
                        "the service's database is unavailable for a moment; retry with the same request_id",
                        reason="PEER_UNAVAILABLE",
                        metadata={"peer": "database"},
                    )
                    code = grpc.StatusCode.UNAVAILABLE
                    context.abort_with_status(to_status(unavailable, domain))
                code = grpc.StatusCode.INTERNAL
                span.record_exception(exc)
                log.exception("unhandled error in %s (request %s)", method, request_id)
                context.abort_with_status(internal_status(request_id))
                raise AssertionError("unreachable") from exc
            finally:
                seconds = time.perf_counter() - start
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code in SERVER_FAULTS:
                    span.set_status(StatusCode.ERROR, code.name)
                trace_id = tracing.trace_id_of(span)
                span_cm.__exit__(None, None, None)
                if metrics is not None:
                    metrics.rpc_requests.labels(svc_name, rpc, code.name).inc()
                    metrics.rpc_duration.labels(svc_name, rpc).observe(seconds)
                if log.isEnabledFor(logging.INFO):
                    account = (access.account_id if access else "") or str(getattr(request, "account_id", ""))
                    log.info(
                        "%s %s",
                        method,
                        code.name,
                        extra={
                            "service": service,
                            "method": method,
                            "code": code.name,
                            "duration_ms": round(seconds * 1000, 2),
                            "request_id": request_id,
                            "trace_id": trace_id,
                            "principal": who,
                            "account": account[:80],
                        },
                    )

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _public(
        self, handler: grpc.RpcMethodHandler[_Req, _Resp], method: str, svc_name: str, rpc: str
    ) -> grpc.RpcMethodHandler[_Req, _Resp]:
        """Health checks (and reflection) need no token: counted, and logged at DEBUG only (a probe every
        few seconds would drown the log)."""
        inner = handler.unary_unary
        if inner is None:
            return handler
        metrics, service = self.metrics, self.service

        def wrapper(request: _Req, context: grpc.ServicerContext) -> _Resp:
            start = time.perf_counter()
            code = "OK"
            try:
                return inner(request, context)
            except Exception:
                set_code = context.code() if hasattr(context, "code") else None
                code = set_code.name if isinstance(set_code, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                seconds = time.perf_counter() - start
                if metrics is not None:
                    metrics.rpc_requests.labels(svc_name, rpc, code).inc()
                    metrics.rpc_duration.labels(svc_name, rpc).observe(seconds)
                log.debug(
                    "%s %s",
                    method,
                    code,
                    extra={
                        "service": service,
                        "method": method,
                        "code": code,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
