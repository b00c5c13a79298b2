"""Enum name <-> number tables, read from our generated descriptors so they cannot drift from the protos.

JSON lines may carry enums as names or as numbers; each *_NAME table maps both forms to the name.
"""

from __future__ import annotations

from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.relay import relay_pb2


def _names(enum, unknown_as_empty: bool = False) -> dict[int | str, str]:
    table: dict[int | str, str] = {}
    for value in enum.DESCRIPTOR.values:
        name = "" if unknown_as_empty and value.number == 0 else value.name
        table[value.number] = name
        table[value.name] = name
    return table


VERDICT_NAME = _names(flow_pb2.Verdict)
DROP_REASON_NAME = _names(flow_pb2.DropReason)
DROP_REASON_CODE = {v.name: v.number for v in flow_pb2.DropReason.DESCRIPTOR.values}
DIRECTION_NAME = _names(flow_pb2.TrafficDirection, unknown_as_empty=True)
FLOW_TYPE_NAME = _names(flow_pb2.FlowType, unknown_as_empty=True)
TRACE_POINT_NAME = _names(flow_pb2.TraceObservationPoint, unknown_as_empty=True)
L7_TYPE_NAME = _names(flow_pb2.L7FlowType)
NODE_STATE_NAME = _names(relay_pb2.NodeState)
LOST_SOURCE_NAME = _names(flow_pb2.LostEventSource)

VERDICTS = tuple(v.name for v in flow_pb2.Verdict.DESCRIPTOR.values if v.number)
TCP_FLAG_ORDER = tuple(f.name for f in flow_pb2.TCPFlags.DESCRIPTOR.fields)

# monitor event types (pkg/monitor/api/types.go), as `hubble observe --type` names them
EVENT_TYPES = {"drop": 1, "debug": 2, "capture": 3, "trace": 4, "policy-verdict": 5, "trace-sock": 7,
               "l7": 129, "agent": 130}
EVENT_TYPE_NAME = {number: name for name, number in EVENT_TYPES.items()}
# trace sub-types are the monitor's numbers, which differ from the proto TraceObservationPoint for to-endpoint
TRACE_SUB_TYPES = {"to-endpoint": 0, "to-proxy": 1, "to-host": 2, "to-stack": 3, "to-overlay": 4,
                   "from-endpoint": 5, "from-proxy": 6, "from-host": 7, "from-stack": 8, "from-overlay": 9,
                   "from-network": 10, "to-network": 11, "from-crypto": 12, "to-crypto": 13}
