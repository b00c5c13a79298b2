"""The standard gRPC health service (grpc.health.v1.Health), as Hubble Relay and the agents serve it.

`hubble status` asks Health/Check for "hubble.server.Observer" before anything else, and load balancers
and probes ask for "" (the server as a whole). A replay server is healthy for as long as it runs.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

OBSERVER_HEALTH_NAME = "hubble.server.Observer"  # the name Hubble's servers register under, not the gRPC one


async def add_health_service(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Register a Health service on ``server`` answering SERVING for the server and for Hubble's Observer."""
    servicer = health.aio.HealthServicer()
    for name in ("", OBSERVER_HEALTH_NAME):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer
