"""A jsonpb line (as a dict) back into a GetFlowsResponse, ten times faster than json_format.ParseDict.

Serving a recording means turning every line into protobuf once. json_format walks descriptors and checks
types field by field in Python (about 4,000 flows/s here): a 100,000-line incident would take half a
minute to load. This builds, once per message type, a table from JSON key (proto name and lowerCamelCase)
to what to do, then fills messages straight from it. Anything it does not handle itself (maps, bytes, Any
and the other well-known types, values of an unexpected shape) goes through json_format for that field or
message, which keeps its semantics and its error messages. Tests hold the two equal on real samples.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from hubbletui.flows.timefmt import parse_rfc3339_ns
from hubbletui.proto.observer import observer_pb2

_SCALAR, _MESSAGE, _ENUM, _TIMESTAMP, _WRAPPER, _GENERIC = range(6)
_WRAPPERS = {f"google.protobuf.{name}Value" for name in ("Bool", "Int32", "UInt32", "Int64", "UInt64", "String",
                                                         "Double", "Float")}
_INTEGERS = {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT32,
             FieldDescriptor.CPPTYPE_UINT64}
_FLOATS = {FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT}
_plans: dict[str, dict] = {}


def _plan(desc: Descriptor) -> dict:
    plan = _plans.get(desc.full_name)
    if plan is not None:
        return plan
    plan = _plans[desc.full_name] = {}
    for field in desc.fields:
        sub = None
        message = field.message_type
        if message is not None:
            if message.GetOptions().map_entry:
                kind = _GENERIC
            elif message.full_name == "google.protobuf.Timestamp":
                kind = _TIMESTAMP
            elif message.full_name in _WRAPPERS:
                kind = _WRAPPER
            elif message.full_name.startswith("google.protobuf."):
                kind = _GENERIC
            else:
                kind, sub = _MESSAGE, _plan(message)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            kind, sub = _ENUM, {value.name: value.number for value in field.enum_type.values}
        elif field.type == FieldDescriptor.TYPE_BYTES:
            kind = _GENERIC
        else:
            # 64-bit integers arrive as strings in proto3 JSON; floats may be "NaN" or "Infinity"
            kind = _SCALAR
            sub = int if field.cpp_type in _INTEGERS else float if field.cpp_type in _FLOATS else None
        entry = (field.name, kind, sub, field.is_repeated)
        plan[field.name] = plan[field.json_name] = entry
    return plan


def _fill(message, obj: dict, plan: dict) -> None:
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None or value is None:
            continue  # unknown fields are skipped, as Hubble's reader does; null means "not set"
        name, kind, sub, repeated = entry
        if kind == _SCALAR:
            if repeated:
                getattr(message, name).extend(value if sub is None else [sub(v) for v in value])
            else:
                setattr(message, name, value if sub is None or type(value) is sub else sub(value))
        elif kind == _MESSAGE:
            if repeated:
                container = getattr(message, name)
                for item in value:
                    _fill(container.add(), item, sub)
            else:
                child = getattr(message, name)
                child.SetInParent()  # `"source": {}` is a present, empty endpoint
                _fill(child, value, sub)
        elif kind == _ENUM:
            if repeated:
                getattr(message, name).extend(sub[v] if type(v) is str else v for v in value)
            else:
                setattr(message, name, sub[value] if type(value) is str else value)
        elif kind == _TIMESTAMP and not repeated:
            getattr(message, name).FromNanoseconds(parse_rfc3339_ns(value))
        elif kind == _WRAPPER and not repeated:
            getattr(message, name).value = value
        else:
            json_format.ParseDict({key: value}, message, ignore_unknown_fields=True)


_RESPONSE_PLAN = _plan(observer_pb2.GetFlowsResponse.DESCRIPTOR)


def response_from_dict(obj: dict) -> observer_pb2.GetFlowsResponse:
    """Raises json_format.ParseError (with json_format's message) for what cannot be a GetFlowsResponse."""
    message = observer_pb2.GetFlowsResponse()
    try:
        _fill(message, obj, _RESPONSE_PLAN)
    except (TypeError, ValueError, KeyError, AttributeError):
        # a value of an unexpected shape or an enum name we do not know: json_format decides
        message = json_format.ParseDict(obj, observer_pb2.GetFlowsResponse(), ignore_unknown_fields=True)
    return message
