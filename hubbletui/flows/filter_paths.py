"""Which flow fields a FlowFilter reads, as field-mask paths.

A field-masked request gets flows trimmed to the mask, and the client checks the server's filtering again
on what arrives (see sources/grpc_client.py): the mask must then keep what the filters read, or the check
would refuse flows the server rightly sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from hubbletui.proto.flow import flow_pb2

_SIDES = ("source", "destination")
_PATHS = {
    "source_ip": ("IP",), "destination_ip": ("IP",), "source_ip_xlated": ("IP",), "ip_version": ("IP",),
    "encrypted": ("IP",), "protocol": ("l4", "l7"), "source_port": ("l4",), "destination_port": ("l4",),
    "tcp_flags": ("l4",), "reply": ("is_reply",), "source_fqdn": ("source_names",),
    "destination_fqdn": ("destination_names",), "trace_id": ("trace_context",), "interface": ("interface",),
    "node_name": ("node_name",), "node_labels": ("node_labels",), "uuid": ("uuid",),
    "ip_trace_id": ("ip_trace_id",), "verdict": ("verdict",), "drop_reason_desc": ("drop_reason_desc",),
    "traffic_direction": ("traffic_direction",), "event_type": ("event_type",),
    "source_service": ("source_service",), "destination_service": ("destination_service",),
}


def filter_paths(filters: Iterable[flow_pb2.FlowFilter]) -> tuple[str, ...]:
    paths: list[str] = []
    for flt in filters:
        for field, _ in flt.ListFields():
            name = field.name
            if name in _PATHS:
                wanted = _PATHS[name]
            elif name.startswith("http_") or name == "dns_query":
                wanted = ("l7",)
            else:  # pods, labels, identities, workloads, clusters: the endpoint of that side
                wanted = tuple(side for side in _SIDES if name.startswith(side))
            paths.extend(p for p in wanted if p not in paths)
    return tuple(paths)
