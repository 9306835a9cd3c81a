"""Server bootstrap: a sync gRPC server with health checking, reflection, the interceptor,
UNIMPLEMENTED answers that say what is not built, and a graceful stop."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared.grpc.interceptors import ServerInterceptor

log = logging.getLogger("tenure.server")


def fill_unimplemented(servicer: object, service_descriptor, base_cls: type) -> object:
    """Make every RPC the servicer does not override answer UNIMPLEMENTED with a clear message."""
    for method in service_descriptor.methods:
        if getattr(type(servicer), method.name, None) is getattr(base_cls, method.name, None):
            full = f"{service_descriptor.full_name}/{method.name}"

            def not_built(request, context, _full=full):
                context.abort(
                    grpc.StatusCode.UNIMPLEMENTED, f"{_full} is not implemented yet in this release"
                )

            setattr(servicer, method.name, not_built)
    return servicer


class GrpcServer:
    def __init__(self, service: str, addr: str, workers: int = 16) -> None:
        self.service = service
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{service}-rpc"),
            interceptors=[ServerInterceptor(service)],
            options=[("grpc.so_reuseport", 1), ("grpc.max_receive_message_length", 32 * 1024 * 1024)],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names: list[str] = [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        self.addr = addr
        self.port = 0

    def add(self, add_fn, servicer, service_full_name: str) -> None:
        add_fn(servicer, self.server)
        self.service_names.append(service_full_name)

    def start(self) -> int:
        reflection.enable_server_reflection([*self.service_names, reflection.SERVICE_NAME], self.server)
        self.port = self.server.add_insecure_port(self.addr)
        if self.port == 0:
            raise RuntimeError(f"could not bind {self.addr}")
        self.server.start()
        for name in ["", *self.service_names]:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    def stop(self, grace: float) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
