"""From what a person asks for (observe/record/tui flags) to Hubble's GetFlowsRequest filters.

Mirrors `hubble observe`: a flag without a side (--pod, --namespace, --label, --ip, --port) means "either
side", which Hubble expresses as two whitelist filters: one reading it as the source, one as the destination.
Flags with a side (--from-*, --to-*) and sideless fields (--verdict, --protocol, --type, ...) go into both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf import json_format

from hubbletui.flows.enums import DROP_REASON_CODE, EVENT_TYPES, TRACE_SUB_TYPES, VERDICTS
from hubbletui.flows.filters import FilterError
from hubbletui.flows.labels import parse_selector
from hubbletui.proto.flow import flow_pb2


@dataclass
class FilterSpec:
    verdict: tuple[str, ...] = ()
    namespace: tuple[str, ...] = ()
    pod: tuple[str, ...] = ()
    from_pod: tuple[str, ...] = ()
    to_pod: tuple[str, ...] = ()
    from_namespace: tuple[str, ...] = ()
    to_namespace: tuple[str, ...] = ()
    label: tuple[str, ...] = ()
    from_label: tuple[str, ...] = ()
    to_label: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    from_ip: tuple[str, ...] = ()
    to_ip: tuple[str, ...] = ()
    port: tuple[str, ...] = ()
    from_port: tuple[str, ...] = ()
    to_port: tuple[str, ...] = ()
    protocol: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    traffic_direction: tuple[str, ...] = ()
    drop_reason_desc: tuple[str, ...] = ()
    node_name: tuple[str, ...] = ()
    http_status: tuple[str, ...] = ()
    allowlist: tuple[str, ...] = ()  # raw FlowFilter JSON, as `hubble observe --allowlist`
    denylist: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


def _pod_values(pods, namespaces) -> list[str]:
    # "--pod x" with "-n ns" means ns/x; without a namespace, Hubble assumes "default"
    out = []
    for pod in pods:
        if "/" in pod:
            out.append(pod)
        elif namespaces:
            out.extend(f"{ns}/{pod}" for ns in namespaces)
        else:
            out.append(f"default/{pod}")
    return out


def _event_type(text: str) -> flow_pb2.EventTypeFilter:
    name, _, sub = text.partition(":")
    if name not in EVENT_TYPES:
        raise FilterError(f"unknown event type {name!r} (one of {', '.join(EVENT_TYPES)})")
    flt = flow_pb2.EventTypeFilter(type=EVENT_TYPES[name])
    if sub:
        if name == "trace" and sub in TRACE_SUB_TYPES:
            flt.sub_type = TRACE_SUB_TYPES[sub]
        elif name == "drop" and sub.upper() in DROP_REASON_CODE:
            flt.sub_type = DROP_REASON_CODE[sub.upper()]
        elif sub.isdigit():
            flt.sub_type = int(sub)
        else:
            raise FilterError(f"unknown sub-type {sub!r} for event type {name!r}")
        flt.match_sub_type = True
    return flt


def build_filters(spec: FilterSpec) -> tuple[list[flow_pb2.FlowFilter], list[flow_pb2.FlowFilter]]:
    """(whitelist, blacklist) for a GetFlowsRequest; raises FilterError on a value that makes no sense."""
    left, right = flow_pb2.FlowFilter(), flow_pb2.FlowFilter()
    both = (left, right)
    either_side = False

    def sided(values, src_field, dst_field):
        nonlocal either_side
        if values:
            either_side = True
            getattr(left, src_field).extend(values)
            getattr(right, dst_field).extend(values)

    pods = _pod_values(spec.pod, spec.namespace)
    sided(pods or [f"{ns}/" for ns in spec.namespace], "source_pod", "destination_pod")
    for sel in (*spec.label, *spec.from_label, *spec.to_label):
        try:
            parse_selector(sel)
        except ValueError as exc:
            raise FilterError(str(exc)) from None
    sided(list(spec.label), "source_label", "destination_label")
    sided(list(spec.ip), "source_ip", "destination_ip")
    sided(list(spec.port), "source_port", "destination_port")
    for flt in both:
        flt.source_pod.extend(_pod_values(spec.from_pod, spec.from_namespace)
                              or [f"{ns}/" for ns in spec.from_namespace])
        flt.destination_pod.extend(_pod_values(spec.to_pod, spec.to_namespace)
                                   or [f"{ns}/" for ns in spec.to_namespace])
        flt.source_label.extend(spec.from_label)
        flt.destination_label.extend(spec.to_label)
        flt.source_ip.extend(spec.from_ip)
        flt.destination_ip.extend(spec.to_ip)
        flt.source_port.extend(spec.from_port)
        flt.destination_port.extend(spec.to_port)
        for verdict in spec.verdict:
            if verdict.upper() not in VERDICTS:
                raise FilterError(f"unknown verdict {verdict!r} (one of {', '.join(VERDICTS)})")
            flt.verdict.append(flow_pb2.Verdict.Value(verdict.upper()))
        flt.protocol.extend(p.lower() for p in spec.protocol)
        flt.event_type.extend(_event_type(t) for t in spec.type)
        for direction in spec.traffic_direction:
            if direction.upper() not in ("INGRESS", "EGRESS"):
                raise FilterError(f"unknown traffic direction {direction!r} (ingress or egress)")
            flt.traffic_direction.append(flow_pb2.TrafficDirection.Value(direction.upper()))
        for reason in spec.drop_reason_desc:
            if reason.upper() not in DROP_REASON_CODE:
                raise FilterError(f"unknown drop reason {reason!r} (e.g. POLICY_DENIED, POLICY_DENY)")
            flt.drop_reason_desc.append(DROP_REASON_CODE[reason.upper()])
        flt.node_name.extend(spec.node_name)
        flt.http_status_code.extend(spec.http_status)
    for ports in (spec.port, spec.from_port, spec.to_port):
        for port in ports:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise FilterError(f"not a port number: {port!r}")

    whitelist = [left, right] if either_side else [left]
    whitelist = [f for f in whitelist if f.ListFields()]
    whitelist += [_parse_filter_json(text) for text in spec.allowlist]
    blacklist = [_parse_filter_json(text) for text in spec.denylist]
    return whitelist, blacklist


def _parse_filter_json(text: str) -> flow_pb2.FlowFilter:
    try:
        return json_format.Parse(text, flow_pb2.FlowFilter())
    except json_format.ParseError as exc:
        raise FilterError(f"not a FlowFilter in JSON: {exc}") from None


@dataclass
class FlowQuery:
    """What to ask a flow source for: the GetFlowsRequest fields, independent of where flows come from."""

    whitelist: list = field(default_factory=list)
    blacklist: list = field(default_factory=list)
    since_ns: int | None = None
    until_ns: int | None = None
    number: int | None = None  # None: no count limit
    first: bool = False
    follow: bool = False
    field_mask: tuple[str, ...] = ()
