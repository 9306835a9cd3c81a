"""Server interceptor: request id, domain-error mapping and one structured log line per RPC."""

from __future__ import annotations

import json
import logging
import time
import uuid

import grpc

from shared import errors
from shared.grpc.errors import internal_status, status_code_of, to_status

log = logging.getLogger("tenure.rpc")
ACTOR_EMAIL = "x-actor-email"
ACTOR_ROLE = "x-actor-role"
REQUEST_ID = "x-request-id"


# Roles that may call operator RPCs: vendor staff, and the services themselves.
TRUSTED_ROLES = ("operator", "service")


def require_operator(context: grpc.ServicerContext, what: str) -> None:
    """Refuse `what` (PERMISSION_DENIED) unless the caller's `x-actor-role` is operator or service."""
    if metadata_value(context, ACTOR_ROLE) not in TRUSTED_ROLES:
        raise errors.NotAllowed(
            f"{what} is an operator action (metadata {ACTOR_ROLE}: operator)", reason="PERMISSION_DENIED"
        )


def metadata_value(context: grpc.ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v
    return ""


class ServerInterceptor(grpc.ServerInterceptor):
    def __init__(self, service: str) -> None:
        self.service = service
        self.domain = f"{service}.tenure"

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        inner = handler.unary_unary
        domain = self.domain
        service = self.service

        def wrapper(request, context):
            request_id = (
                metadata_value(context, REQUEST_ID) or getattr(request, "request_id", "") or uuid.uuid4().hex
            )
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
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
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s (request %s)", method, request_id)
                context.abort_with_status(internal_status(request_id))
                raise AssertionError("unreachable") from exc
            finally:
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        json.dumps(
                            {
                                "service": service,
                                "method": method,
                                "code": code.name,
                                "ms": round((time.perf_counter() - start) * 1000, 2),
                                "request_id": request_id,
                            }
                        )
                    )

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
