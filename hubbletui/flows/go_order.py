"""A jsonpb dict with its keys in the order Go's protojson writes them: the fields' order in the .proto.

A line we rewrite (read in lowerCamelCase, renamed to proto names) is then byte for byte what the hubble
CLI prints for the same message, not merely equal as JSON. Keys no field has keep their place after the
known ones.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor

from hubbletui.proto.observer import observer_pb2

_plans: dict[str, dict[str, tuple[int, Descriptor | None]]] = {}


def _plan(desc: Descriptor) -> dict[str, tuple[int, Descriptor | None]]:
    plan = _plans.get(desc.full_name)
    if plan is None:
        plan = _plans[desc.full_name] = {}
        for index, field in enumerate(desc.fields):
            message = field.message_type
            if message is not None and (message.GetOptions().map_entry or message.full_name.startswith("google.")):
                message = None  # maps and well-known types: written as they are
            plan[field.name] = (index, message)
    return plan


def go_order(obj: dict, desc: Descriptor = observer_pb2.GetFlowsResponse.DESCRIPTOR) -> dict:
    plan = _plan(desc)
    last = len(plan)
    out = {}
    for key in sorted(obj, key=lambda k: plan.get(k, (last,))[0]):
        value = obj[key]
        sub = plan.get(key, (0, None))[1]
        if sub is not None:
            if isinstance(value, dict):
                value = go_order(value, sub)
            elif isinstance(value, list):
                value = [go_order(v, sub) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out
