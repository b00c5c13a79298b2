from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FlowDigest(_message.Message):
    __slots__ = ("time", "verdict", "drop_reason", "IP", "l4", "source", "destination", "Type", "node_name", "l7", "reply", "event_type", "traffic_direction", "policy_match_type", "trace_observation_point", "drop_reason_desc", "is_reply", "egress_allowed_by", "ingress_allowed_by", "egress_denied_by", "ingress_denied_by")
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DROP_REASON_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    L4_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    L7_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_DIRECTION_FIELD_NUMBER: _ClassVar[int]
    POLICY_MATCH_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRACE_OBSERVATION_POINT_FIELD_NUMBER: _ClassVar[int]
    DROP_REASON_DESC_FIELD_NUMBER: _ClassVar[int]
    IS_REPLY_FIELD_NUMBER: _ClassVar[int]
    EGRESS_ALLOWED_BY_FIELD_NUMBER: _ClassVar[int]
    INGRESS_ALLOWED_BY_FIELD_NUMBER: _ClassVar[int]
    EGRESS_DENIED_BY_FIELD_NUMBER: _ClassVar[int]
    INGRESS_DENIED_BY_FIELD_NUMBER: _ClassVar[int]
    time: bytes
    verdict: int
    drop_reason: int
    IP: bytes
    l4: bytes
    source: bytes
    destination: bytes
    Type: int
    node_name: str
    l7: bytes
    reply: bool
    event_type: bytes
    traffic_direction: int
    policy_match_type: int
    trace_observation_point: int
    drop_reason_desc: int
    is_reply: bytes
    egress_allowed_by: _containers.RepeatedScalarFieldContainer[bytes]
    ingress_allowed_by: _containers.RepeatedScalarFieldContainer[bytes]
    egress_denied_by: _containers.RepeatedScalarFieldContainer[bytes]
    ingress_denied_by: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, time: _Optional[bytes] = ..., verdict: _Optional[int] = ..., drop_reason: _Optional[int] = ..., IP: _Optional[bytes] = ..., l4: _Optional[bytes] = ..., source: _Optional[bytes] = ..., destination: _Optional[bytes] = ..., Type: _Optional[int] = ..., node_name: _Optional[str] = ..., l7: _Optional[bytes] = ..., reply: _Optional[bool] = ..., event_type: _Optional[bytes] = ..., traffic_direction: _Optional[int] = ..., policy_match_type: _Optional[int] = ..., trace_observation_point: _Optional[int] = ..., drop_reason_desc: _Optional[int] = ..., is_reply: _Optional[bytes] = ..., egress_allowed_by: _Optional[_Iterable[bytes]] = ..., ingress_allowed_by: _Optional[_Iterable[bytes]] = ..., egress_denied_by: _Optional[_Iterable[bytes]] = ..., ingress_denied_by: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ResponseDigest(_message.Message):
    __slots__ = ("flow", "node_status", "lost_events", "node_name")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    NODE_STATUS_FIELD_NUMBER: _ClassVar[int]
    LOST_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    flow: FlowDigest
    node_status: bytes
    lost_events: bytes
    node_name: str
    def __init__(self, flow: _Optional[_Union[FlowDigest, _Mapping]] = ..., node_status: _Optional[bytes] = ..., lost_events: _Optional[bytes] = ..., node_name: _Optional[str] = ...) -> None: ...
