"""Decoding Hubble's messages into Flow / NodeStatus / LostEvents.

Two entry points on the hot path: `event_from_json` (one parsed JSON line, as `hubble observe -o jsonpb`, the
exporter and legacy `-o json` write them) and `event_from_proto` (a GetFlowsResponse off the wire). Both read
only what the tool reasons about and keep the original in `raw`.
"""

from __future__ import annotations

import re

from google.protobuf.message import DecodeError as ProtoDecodeError

from hubbletui.flows.enums import (DIRECTION_NAME, DROP_REASON_CODE, DROP_REASON_NAME, FLOW_TYPE_NAME,
                                   L7_TYPE_NAME, LOST_SOURCE_NAME, NODE_STATE_NAME, TCP_FLAG_ORDER,
                                   TRACE_POINT_NAME, VERDICT_NAME)
from hubbletui.flows.model import NO_POLICIES, L7, Endpoint, Flow, LostEvents, NodeStatus, PolicyRef
from hubbletui.flows.timefmt import parse_rfc3339_ns
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2
from hubbletui.proto.relay import relay_pb2


class DecodeError(ValueError):
    """The line is JSON but not a Hubble event we can read."""


# ---------------------------------------------------------------------------------------------------------
# lowerCamelCase JSON names -> proto names (protojson accepts both; Hubble writes proto names)


def _camel_map() -> dict[str, str]:
    out: dict[str, str] = {}
    pending = [observer_pb2.GetFlowsResponse.DESCRIPTOR, flow_pb2.Flow.DESCRIPTOR]
    seen = set()
    while pending:
        desc = pending.pop()
        if desc.full_name in seen:
            continue
        seen.add(desc.full_name)
        for field in desc.fields:
            if field.json_name != field.name:
                out[field.json_name] = field.name
            if field.message_type is not None:
                pending.append(field.message_type)
    return out


CAMEL_TO_PROTO = _camel_map()
_CAMEL_KEY = re.compile(("\"(?:" + "|".join(sorted(map(re.escape, CAMEL_TO_PROTO))) + ")\":").encode())


def needs_renaming(line: bytes) -> bool:
    """True when the line uses lowerCamelCase field names anywhere (rare; checked on bytes, in C)."""
    return _CAMEL_KEY.search(line) is not None


def to_proto_names(value):
    if isinstance(value, dict):
        return {CAMEL_TO_PROTO.get(k, k): to_proto_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_proto_names(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------
# JSON


def _time_ns(value) -> int:
    if not value:
        return 0
    if isinstance(value, str):
        return parse_rfc3339_ns(value)
    raise DecodeError(f"time must be an RFC 3339 string, not {type(value).__name__}")


def _int(value) -> int:
    # 64-bit integers arrive as strings in proto3 JSON; 32-bit ones as numbers (either is legal to read)
    return value if type(value) is int else int(value or 0)


def _policies(entries) -> tuple[PolicyRef, ...]:
    if not entries:
        return NO_POLICIES
    return tuple(PolicyRef(p.get("name", ""), p.get("namespace", ""), p.get("kind", ""),
                           _int(p.get("revision", 0)), tuple(p.get("labels") or ())) for p in entries)


def _endpoint(ep, ip: str) -> Endpoint:
    if not ep:
        return Endpoint("", "", (), 0, (), ip, "")
    wl = ep.get("workloads")
    return Endpoint(ep.get("namespace", ""), ep.get("pod_name", ""), tuple(ep.get("labels") or ()),
                    _int(ep.get("identity", 0)),
                    tuple((w.get("kind", ""), w.get("name", "")) for w in wl) if wl else (),
                    ip, ep.get("cluster_name", ""))


def _l7(rec) -> L7 | None:
    if not rec:
        return None
    kind = L7_TYPE_NAME.get(rec.get("type", 0), str(rec.get("type")))
    latency = _int(rec.get("latency_ns", 0))
    http = rec.get("http")
    if http is not None:
        return L7(kind, "http", http.get("method", ""), http.get("url", ""), _int(http.get("code", 0)), latency)
    dns = rec.get("dns")
    if dns is not None:
        return L7(kind, "dns", ",".join(dns.get("qtypes") or ()), dns.get("query", ""),
                  _int(dns.get("rcode", 0)), latency)
    kafka = rec.get("kafka")
    if kafka is not None:
        return L7(kind, "kafka", kafka.get("api_key", ""), kafka.get("topic", ""),
                  _int(kafka.get("error_code", 0)), latency)
    return L7(kind, "", "", "", 0, latency)


def flow_from_dict(f: dict, node: str = "", time_ns: int = 0, raw=None) -> Flow:
    """A Flow from the `flow` object of a jsonpb line (proto field names)."""
    g = f.get
    ip = g("IP") or {}
    src_port = dst_port = 0
    protocol = ""
    flags: tuple[str, ...] = ()
    l4 = g("l4")
    if l4:
        protocol, body = next(iter(l4.items()))
        if protocol in ("TCP", "UDP", "SCTP"):
            src_port = _int(body.get("source_port", 0))
            dst_port = _int(body.get("destination_port", 0))
            if protocol == "TCP":
                fl = body.get("flags")
                if fl:
                    flags = tuple(k for k in TCP_FLAG_ORDER if fl.get(k))
        elif protocol in ("ICMPv4", "ICMPv6"):
            dst_port = _int(body.get("type", 0))
    reason = g("drop_reason_desc")
    if reason is not None:
        reason_name = DROP_REASON_NAME.get(reason, str(reason))
        reason_code = DROP_REASON_CODE.get(reason_name, 0) if type(reason) is str else int(reason)
    else:
        reason_code = _int(g("drop_reason", 0))
        reason_name = DROP_REASON_NAME.get(reason_code, "") if reason_code else ""
    et = g("event_type") or {}
    is_reply = g("is_reply")
    if is_reply is None and g("reply"):
        is_reply = True
    ftime = g("time")
    return Flow(
        _time_ns(ftime) if ftime else time_ns,
        VERDICT_NAME.get(g("verdict", 0), str(g("verdict"))),
        reason_code,
        reason_name,
        DIRECTION_NAME.get(g("traffic_direction", 0), ""),
        _endpoint(g("source"), ip.get("source", "")),
        _endpoint(g("destination"), ip.get("destination", "")),
        protocol, src_port, dst_port, flags,
        _l7(g("l7")),
        g("node_name") or node,
        is_reply,
        _int(et.get("type", 0)), _int(et.get("sub_type", 0)),
        FLOW_TYPE_NAME.get(g("Type", 0), ""),
        _int(g("policy_match_type", 0)),
        TRACE_POINT_NAME.get(g("trace_observation_point", 0), ""),
        _policies(g("egress_allowed_by")), _policies(g("ingress_allowed_by")),
        _policies(g("egress_denied_by")), _policies(g("ingress_denied_by")),
        raw if raw is not None else f,
    )


def event_from_json(obj) -> Flow | NodeStatus | LostEvents | None:
    """One parsed jsonpb line (GetFlowsResponse) or legacy bare Flow; None for a response of no kind we keep.

    `raw` of the result is always the GetFlowsResponse form, so writing it back yields jsonpb.
    """
    if type(obj) is not dict:
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        flow = obj.get("flow")
        node = obj.get("node_name", "")
        if flow is not None:
            if type(flow) is not dict:
                raise DecodeError("`flow` is not an object")
            return flow_from_dict(flow, node, _time_ns(obj.get("time")), obj)
        status = obj.get("node_status")
        if status is not None:
            return NodeStatus(_time_ns(obj.get("time")),
                              NODE_STATE_NAME.get(status.get("state_change", 0), str(status.get("state_change"))),
                              tuple(status.get("node_names") or ()), status.get("message", ""), node, obj)
        lost = obj.get("lost_events")
        if lost is not None:
            cpu = lost.get("cpu")
            return LostEvents(_time_ns(obj.get("time")),
                              LOST_SOURCE_NAME.get(lost.get("source", 0), str(lost.get("source"))),
                              _int(lost.get("num_events_lost", 0)), None if cpu is None else _int(cpu), node, obj)
        if "verdict" in obj or "source" in obj or "IP" in obj or "l4" in obj:
            # legacy `-o json` (HUBBLE_COMPAT=legacy-json-output): the bare Flow object
            wrapped = {"flow": obj}
            if "node_name" in obj:
                wrapped["node_name"] = obj["node_name"]
            if "time" in obj:
                wrapped["time"] = obj["time"]
            return flow_from_dict(obj, node, 0, wrapped)
        if obj.get("agent_event") is not None or obj.get("debug_event") is not None:
            return None
        raise DecodeError("neither a flow, node_status nor lost_events")
    except (AttributeError, TypeError, StopIteration, KeyError) as exc:
        # a field of the wrong JSON type (a list where an object belongs, ...)
        raise DecodeError(f"malformed field: {exc}") from None


# ---------------------------------------------------------------------------------------------------------
# protobuf

_VERDICT = VERDICT_NAME
_DIRECTION = DIRECTION_NAME
_FLOW_TYPE = FLOW_TYPE_NAME
_TRACE_POINT = TRACE_POINT_NAME
_DROP = {**DROP_REASON_NAME, 0: ""}
_L7_TYPE = L7_TYPE_NAME
_EMPTY_EP = Endpoint("", "", (), 0, (), "", "")


_EP_CACHE: dict[tuple[int, str, str], Endpoint] = {}
_EP_CACHE_MAX = 50_000


def _ep_pb(ep, ip: str) -> Endpoint:
    # Attribute reads on protobuf messages cost ~0.1-0.2 us each, and the same pods appear in flow after flow.
    # Identity is derived from the labels, so (identity, pod, ip) pins the labels, workloads and namespace.
    key = (ep.identity, ep.pod_name, ip)
    cached = _EP_CACHE.get(key)
    if cached is not None:
        return cached
    wl = ep.workloads
    made = Endpoint(ep.namespace, key[1], tuple(ep.labels), key[0],
                    tuple((w.kind, w.name) for w in wl) if wl else (), ip, ep.cluster_name)
    if len(_EP_CACHE) >= _EP_CACHE_MAX:
        _EP_CACHE.clear()
    _EP_CACHE[key] = made
    return made


def _pol_pb(entries) -> tuple[PolicyRef, ...]:
    if not entries:
        return NO_POLICIES
    return tuple(PolicyRef(p.name, p.namespace, p.kind, p.revision, tuple(p.labels)) for p in entries)


def _flags_pb(fl) -> tuple[str, ...]:
    return tuple(d.name for d, _ in fl.ListFields())


def flow_from_proto(f: flow_pb2.Flow, node: str = "", raw=None, data: bytes | None = None) -> Flow:
    """``data``, the serialized message when at hand, lets rarely-set fields be skipped cheaply."""
    ip = f.IP
    src_port = dst_port = 0
    flags: tuple[str, ...] = ()
    l4 = f.l4
    protocol = l4.WhichOneof("protocol") or ""
    if protocol == "TCP":
        tcp = l4.TCP
        src_port, dst_port = tcp.source_port, tcp.destination_port
        flags = _flags_pb(tcp.flags)
    elif protocol == "UDP":
        udp = l4.UDP
        src_port, dst_port = udp.source_port, udp.destination_port
    elif protocol == "SCTP":
        sctp = l4.SCTP
        src_port, dst_port = sctp.source_port, sctp.destination_port
    elif protocol == "ICMPv4":
        dst_port = l4.ICMPv4.type
    elif protocol == "ICMPv6":
        dst_port = l4.ICMPv6.type
    reason = f.drop_reason_desc or f.drop_reason
    l7 = None
    rec = f.l7
    which = rec.WhichOneof("record")
    if which is not None or rec.type:
        kind = _L7_TYPE.get(rec.type, str(rec.type))
        if which == "http":
            http = rec.http
            l7 = L7(kind, "http", http.method, http.url, http.code, rec.latency_ns)
        elif which == "dns":
            dns = rec.dns
            l7 = L7(kind, "dns", ",".join(dns.qtypes), dns.query, dns.rcode, rec.latency_ns)
        elif which == "kafka":
            kafka = rec.kafka
            l7 = L7(kind, "kafka", kafka.api_key, kafka.topic, kafka.error_code, rec.latency_ns)
        else:
            l7 = L7(kind, "", "", "", 0, rec.latency_ns)
    is_reply = f.is_reply.value if f.HasField("is_reply") else (True if f.reply else None)
    t = f.time
    et = f.event_type
    return Flow(
        t.seconds * 1_000_000_000 + t.nanos,
        _VERDICT.get(f.verdict, str(f.verdict)),
        reason, _DROP.get(reason, str(reason)),
        _DIRECTION.get(f.traffic_direction, ""),
        _ep_pb(f.source, ip.source),
        _ep_pb(f.destination, ip.destination),
        protocol, src_port, dst_port, flags, l7,
        f.node_name or node, is_reply,
        et.type, et.sub_type,
        _FLOW_TYPE.get(f.Type, ""), f.policy_match_type, _TRACE_POINT.get(f.trace_observation_point, ""),
        *(_policy_lists(f) if data is None or _POLICY_TAG_TAIL in data else _NO_POLICY_LISTS),
        raw if raw is not None else f,
    )


# The *_allowed_by/*_denied_by fields (21001-21005) are rarely set, yet each read of a repeated field costs
# ~0.3 us. Their tags end in the same two varint bytes; when those bytes occur nowhere in the serialized
# message the fields are certainly empty (a chance occurrence only costs the normal reads).
_POLICY_TAG_TAIL = bytes([0xA0, 0x0A])
_NO_POLICY_LISTS = (NO_POLICIES,) * 4


def _policy_lists(f) -> tuple:
    return (_pol_pb(f.egress_allowed_by), _pol_pb(f.ingress_allowed_by),
            _pol_pb(f.egress_denied_by), _pol_pb(f.ingress_denied_by))


def event_from_proto(resp: observer_pb2.GetFlowsResponse,
                     data: bytes | None = None) -> Flow | NodeStatus | LostEvents | None:
    which = resp.WhichOneof("response_types")
    if which == "flow":
        return flow_from_proto(resp.flow, resp.node_name, resp, data)
    t = resp.time.seconds * 1_000_000_000 + resp.time.nanos
    if which == "node_status":
        st = resp.node_status
        return NodeStatus(t, relay_pb2.NodeState.Name(st.state_change) if st.state_change in NODE_STATE_NAME
                          else str(st.state_change), tuple(st.node_names), st.message, resp.node_name, resp)
    if which == "lost_events":
        lost = resp.lost_events
        return LostEvents(t, LOST_SOURCE_NAME.get(lost.source, str(lost.source)), lost.num_events_lost,
                          lost.cpu.value if lost.HasField("cpu") else None, resp.node_name, resp)
    return None


def event_from_bytes(data: bytes) -> Flow | NodeStatus | LostEvents | None:
    """A serialized GetFlowsResponse (e.g. read from a capture) -> event; DecodeError when truncated or garbage."""
    resp = observer_pb2.GetFlowsResponse()
    try:
        resp.ParseFromString(data)
    except ProtoDecodeError as exc:
        raise DecodeError(f"not a GetFlowsResponse: {exc}") from None
    return event_from_proto(resp, data)


def dns_names(flow: Flow) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(source_names, destination_names): the DNS names Hubble associated with the peers' IPs.

    Read from the original message on demand: only display and FQDN filters need them.
    """
    raw = flow.raw
    if isinstance(raw, dict):
        f = raw.get("flow", raw)
        return tuple(f.get("source_names") or ()), tuple(f.get("destination_names") or ())
    f = raw.flow if isinstance(raw, observer_pb2.GetFlowsResponse) else raw
    return tuple(f.source_names), tuple(f.destination_names)
