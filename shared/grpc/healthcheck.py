"""`python -m shared.grpc.healthcheck HOST:PORT [SERVICE]`: exit 0 when the server answers SERVING
(used by container health checks, where grpcurl is not installed)."""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    addr = argv[1] if len(argv) > 1 else "127.0.0.1:50051"
    service = argv[2] if len(argv) > 2 else ""
    try:
        with grpc.insecure_channel(addr) as ch:
            # the typing stubs declare HealthStub without its methods
            resp = health_pb2_grpc.HealthStub(ch).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=service), timeout=3
            )
    except grpc.RpcError as err:
        print(f"{addr}: {err.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    print(f"{addr}: {status}")
    return 0 if resp.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
