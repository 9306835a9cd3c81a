"""Server bootstrap: a sync gRPC server with health checking, reflection, the interceptor,
UNIMPLEMENTED answers that say what is not built, and a graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared.grpc.auth import Auth, Permissions
from shared.grpc.interceptors import ServerInterceptor
from shared.grpc.limits import MAX_MESSAGE_BYTES
from shared.grpc.tls import server_credentials
from shared.telemetry.metrics import ServiceMetrics

log = logging.getLogger("tenure.server")


def fill_unimplemented(servicer: object, service_descriptor: ServiceDescriptor, base_cls: type) -> object:
    """Make every RPC the servicer does not override answer UNIMPLEMENTED with a clear message."""
    for method in service_descriptor.methods:
        if getattr(type(servicer), method.name, None) is getattr(base_cls, method.name, None):
            full = f"{service_descriptor.full_name}/{method.name}"

            def not_built(request: object, context: grpc.ServicerContext, _full: str = full) -> None:
                context.abort(
                    grpc.StatusCode.UNIMPLEMENTED, f"{_full} is not implemented yet in this release"
                )

            setattr(servicer, method.name, not_built)
    return servicer


class PortInUseError(RuntimeError):
    """The server's port is taken (by another copy of the service, or by anything else)."""


class GrpcServer:
    def __init__(
        self,
        service: str,
        addr: str,
        workers: int = 16,
        auth: Auth | None = None,
        reuse_port: bool = False,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        """`reuse_port` (setting `reuse_port`) lets other processes bind the same port with SO_REUSEPORT;
        off, the port is this server's alone and a second copy on it fails to start."""
        self.service = service
        self.auth = auth
        #: full proto service name → its permission table (filled as servicers are added)
        self.permissions: dict[str, Permissions] = {}
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{service}-rpc"),
            interceptors=[ServerInterceptor(service, auth, self.permissions, metrics)],
            # a request is at most 8 MiB (shared/grpc/limits.py); anything larger is refused by gRPC with
            # RESOURCE_EXHAUSTED before it is read
            options=[
                ("grpc.so_reuseport", 1 if reuse_port else 0),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self.addr = addr
        self.reuse_port = reuse_port
        self.port = 0

    def add(
        self,
        add_fn: Callable[[Any, grpc.Server], None],
        servicer: object,
        service_full_name: str,
        permissions: Permissions,
    ) -> None:
        if permissions.service != service_full_name:
            raise ValueError(f"permissions of {permissions.service} given for {service_full_name}")
        add_fn(servicer, self.server)
        self.permissions[service_full_name] = permissions
        self.service_names.append(service_full_name)

    def start(self) -> int:
        reflection.enable_server_reflection([*self.service_names, reflection.SERVICE_NAME], self.server)
        tls = self.auth.tls if self.auth is not None else None
        try:
            if tls is not None and tls.enabled:
                self.port = self.server.add_secure_port(self.addr, server_credentials(tls))
            else:
                self.port = self.server.add_insecure_port(self.addr)
        except RuntimeError:  # grpcio raises "Failed to bind"; older versions answer port 0
            self.port = 0
        if self.port == 0:
            raise PortInUseError(
                f"{self.service} could not listen on {self.addr}: the address is in use (is another copy "
                f"of {self.service} running, e.g. an earlier `make run`?) or not this machine's; stop the "
                f"other process, choose another TENURE_{self.service.upper()}_ADDR, or set "
                f"TENURE_{self.service.upper()}_REUSE_PORT=true to share the port on purpose"
            )
        self.server.start()
        for name in ["", *self.service_names]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    def stop(self, grace: float) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
