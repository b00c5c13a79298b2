"""Decoding Hubble's messages into Flow / NodeStatus / LostEvents.

Two entry points on the hot path: `event_from_json` (one parsed JSON line, as `hubble observe -o jsonpb`, the
exporter and legacy `-o json` write them) and `event_from_proto` (a GetFlowsResponse off the wire). Both read
only what the tool reasons about and keep the original in `raw`.
"""

from __future__ import annotations

import re

import orjson

from google.protobuf.message import DecodeError as ProtoDecodeError

from hubbletui.flows.go_order import go_order
from hubbletui.flows.enums import (DIRECTION_NAME, DROP_REASON_CODE, DROP_REASON_NAME, FLOW_TYPE_NAME,
                                   L7_TYPE_NAME, LOST_SOURCE_NAME, NODE_STATE_NAME, TCP_FLAG_ORDER,
                                   TRACE_POINT_NAME, VERDICT_NAME)
from hubbletui.flows.model import NO_POLICIES, L7, Endpoint, Flow, LostEvents, NodeStatus, PolicyRef
from hubbletui.flows.timefmt import parse_rfc3339_ns
from hubbletui.proto.digest import digest_pb2
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
_CAMEL_KEYS = frozenset(CAMEL_TO_PROTO)


def needs_renaming(obj: dict) -> bool:
    """True when a parsed line uses lowerCamelCase field names (protojson's default; Hubble writes proto names).

    A writer uses one style throughout, and every camel-styled flow line has such keys on the levels checked
    here (nodeName, trafficDirection, eventType, isReply, podName, ...), so key-set checks in C suffice.
    """
    flow = obj.get("flow")
    if type(flow) is dict and ("node_name" in flow or "traffic_direction" in flow):
        return False  # a proto-style name: writers use one style throughout
    if not _CAMEL_KEYS.isdisjoint(obj):
        return True
    for key in ("flow", "node_status", "lost_events"):
        inner = obj.get(key)
        if type(inner) is dict:
            if not _CAMEL_KEYS.isdisjoint(inner):
                return True
            for side in ("source", "destination"):
                ep = inner.get(side)
                if type(ep) is dict and not _CAMEL_KEYS.isdisjoint(ep):
                    return True
    return False


MAX_DEPTH = 32  # Hubble's deepest object is a few levels down (flow.l7.http.headers[i]); more is not a flow


def to_proto_names(value, depth: int = 0):
    if depth > MAX_DEPTH:
        raise DecodeError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {CAMEL_TO_PROTO.get(k, k): to_proto_names(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [to_proto_names(v, depth + 1) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------------
# JSON


_NO_DICT: dict = {}
# tuple.__new__ on the field values skips the Python-level __new__ a NamedTuple generates (a third of the cost of
# building a Flow); the values are given in field order, as Flow(...) would take them.
_new_flow = tuple.__new__


def _time_ns(value) -> int:
    if not value:
        return 0
    if type(value) is str:
        return parse_rfc3339_ns(value)
    raise DecodeError(f"time must be an RFC 3339 string, not {type(value).__name__}")


# Types are checked here, where a line is decoded, so that nothing downstream (renderers, filters, explain, the
# TUI) meets a number where text belongs. proto3 JSON allows null for any field (it means the default), so
# null is read as the default; any other wrong type makes the line malformed.


def _int(value) -> int:
    # 64-bit integers arrive as strings in proto3 JSON; 32-bit ones as numbers (either is legal to read)
    t = type(value)
    if t is int:
        return value
    if value is None:
        return 0
    if t is str:
        try:
            return int(value)
        except ValueError:
            raise DecodeError(f"not an integer: {value[:40]!r}") from None
    if t is float and value.is_integer():
        return int(value)
    raise DecodeError(f"expected an integer, got {_kind(value)}")


def _text(value, what: str) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    raise DecodeError(f"{what} must be a string, not {_kind(value)}")


def _texts(value, what: str) -> tuple[str, ...]:
    if not value:
        return ()
    if type(value) is not list:
        raise DecodeError(f"{what} must be a list of strings, not {_kind(value)}")
    for item in value:
        if type(item) is not str:
            raise DecodeError(f"{what} must be a list of strings, not of {_kind(item)}")
    return tuple(value)


def _object(value, what: str) -> dict:
    if type(value) is dict:
        return value
    if value is None:
        return _NO_DICT
    raise DecodeError(f"{what} must be an object, not {_kind(value)}")


def _enum(value, what: str):
    # an enum is its name or its number in proto3 JSON
    if type(value) is int or type(value) is str:
        return value
    if value is None:
        return 0
    raise DecodeError(f"{what} must be an enum name or number, not {_kind(value)}")


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _port(value) -> int:
    port = _int(value)
    if not 0 <= port <= 65535:
        raise DecodeError(f"port {port} out of range")
    return port


def _policies(entries) -> tuple[PolicyRef, ...]:
    if not entries:
        return NO_POLICIES
    if type(entries) is not list:
        raise DecodeError(f"a policy list must be a list, not {_kind(entries)}")
    out = []
    for p in entries:
        p = _object(p, "a policy")
        out.append(PolicyRef(_text(p.get("name"), "policy name"), _text(p.get("namespace"), "policy namespace"),
                             _text(p.get("kind"), "policy kind"), _int(p.get("revision", 0)),
                             _texts(p.get("labels"), "policy labels")))
    return tuple(out)


# The same pods appear in flow after flow. Sharing their Endpoint saves building it again and, as important,
# keeps a store of recent flows from holding one more GC-tracked object per side. Identity is derived from the
# labels, so (identity, pod, ip) pins the labels, workloads and namespace.
_EP_CACHE: dict[tuple[int, str, str], Endpoint] = {}
_EP_CACHE_MAX = 50_000


def _remember(key: tuple[int, str, str], endpoint: Endpoint) -> None:
    if not key[0]:
        return  # no identity (hand-made or masked flows): nothing pins the labels, so nothing is shared
    if len(_EP_CACHE) >= _EP_CACHE_MAX:
        _EP_CACHE.clear()
    _EP_CACHE[key] = endpoint


def _endpoint(ep, ip: str) -> Endpoint:
    if type(ip) is not str:
        ip = _text(ip, "IP address")
    if not ep:
        return Endpoint("", "", (), 0, (), ip, "")
    if type(ep) is not dict:
        raise DecodeError(f"an endpoint must be an object, not {_kind(ep)}")
    identity = ep.get("identity", 0)
    if type(identity) is not int:
        identity = _int(identity)
    key = (identity, ep.get("pod_name", ""), ip)
    cached = _EP_CACHE.get(key)
    if cached is not None:
        return cached
    # checked only here, on a miss: a cached endpoint was checked when it was made
    wl = ep.get("workloads")
    if wl and type(wl) is not list:
        raise DecodeError(f"workloads must be a list, not {_kind(wl)}")
    made = Endpoint(_text(ep.get("namespace"), "namespace"), _text(key[1], "pod_name"),
                    _texts(ep.get("labels"), "labels"), identity,
                    tuple((_text(w.get("kind"), "workload kind"), _text(w.get("name"), "workload name"))
                          for w in map(_workload, wl)) if wl else (),
                    ip, _text(ep.get("cluster_name"), "cluster_name"))
    _remember((identity, made.pod, ip), made)
    return made


def _workload(w) -> dict:
    return _object(w, "a workload")


def _l7(rec) -> L7 | None:
    if not rec:
        return None
    rec = _object(rec, "l7")
    l7_type = _enum(rec.get("type", 0), "l7 type")
    kind = L7_TYPE_NAME.get(l7_type, str(l7_type))
    latency = _int(rec.get("latency_ns", 0))
    http = rec.get("http")
    if http is not None:
        http = _object(http, "l7.http")
        return L7(kind, "http", _text(http.get("method"), "http method"), _text(http.get("url"), "http url"),
                  _int(http.get("code", 0)), latency)
    dns = rec.get("dns")
    if dns is not None:
        dns = _object(dns, "l7.dns")
        return L7(kind, "dns", ",".join(_texts(dns.get("qtypes"), "dns qtypes")), _text(dns.get("query"), "dns query"),
                  _int(dns.get("rcode", 0)), latency)
    kafka = rec.get("kafka")
    if kafka is not None:
        kafka = _object(kafka, "l7.kafka")
        return L7(kind, "kafka", _text(kafka.get("api_key"), "kafka api_key"), _text(kafka.get("topic"), "kafka topic"),
                  _int(kafka.get("error_code", 0)), latency)
    return L7(kind, "", "", "", 0, latency)


_JSON_FLAGS: dict[tuple, tuple[str, ...]] = {}
_SHARED: dict = {}


def _shared(value):
    """One object for equal values (node names, repeated L7 records): fewer objects kept alive by a store of
    recent flows, which is what makes the garbage collector's full passes slow."""
    kept = _SHARED.get(value)
    if kept is None:
        kept = _bounded_put(_SHARED, value, value)
    return kept


def _json_flags(fl) -> tuple[str, ...]:
    fl = _object(fl, "TCP flags")
    key = tuple(fl.items())
    flags = _JSON_FLAGS.get(key)
    if flags is None:
        flags = _JSON_FLAGS[key] = tuple(k for k in TCP_FLAG_ORDER if fl.get(k))
    return flags


_LAZY_TEXT_LISTS = ("source_names", "destination_names")
_LAZY_OBJECTS = ("source_service", "destination_service")


def _check_service(value, what: str) -> None:
    svc = _object(value, what)
    _text(svc.get("name"), f"{what}.name")
    _text(svc.get("namespace"), f"{what}.namespace")


def flow_from_dict(f: dict, node: str = "", time_ns: int = 0, raw=None) -> Flow:
    """A Flow from the `flow` object of a jsonpb line (proto field names).

    Hot path: dict reads only where the field can matter, helpers inlined where a call would cost more.
    """
    g = f.get
    ip = g("IP") or _NO_DICT
    if type(ip) is not dict:
        raise DecodeError(f"IP must be an object, not {_kind(ip)}")
    src_port = dst_port = 0
    protocol = ""
    flags: tuple[str, ...] = ()
    l4 = g("l4")
    if l4:
        protocol, body = next(iter(_object(l4, "l4").items()))
        if type(body) is not dict:
            body = _object(body, f"l4.{protocol}")
        if protocol in ("TCP", "UDP", "SCTP"):
            src_port = body.get("source_port", 0)
            dst_port = body.get("destination_port", 0)
            if type(src_port) is not int or type(dst_port) is not int or not 0 <= src_port <= 65535 \
                    or not 0 <= dst_port <= 65535:
                src_port, dst_port = _port(src_port), _port(dst_port)
            if protocol == "TCP":
                fl = body.get("flags")
                if fl:
                    flags = _json_flags(fl)
        elif protocol in ("ICMPv4", "ICMPv6"):
            dst_port = _int(body.get("type", 0))
    reason = g("drop_reason_desc")
    if reason is not None:
        reason = _enum(reason, "drop_reason_desc")
        reason_name = DROP_REASON_NAME.get(reason, str(reason))
        reason_code = DROP_REASON_CODE.get(reason_name, 0) if type(reason) is str else int(reason)
    else:
        reason_code = _int(g("drop_reason", 0))
        reason_name = DROP_REASON_NAME.get(reason_code, "") if reason_code else ""
    et = g("event_type") or _NO_DICT
    if type(et) is not dict:
        et = _object(et, "event_type")
    et_type, et_sub = et.get("type", 0), et.get("sub_type", 0)
    if type(et_type) is not int or type(et_sub) is not int:
        et_type, et_sub = _int(et_type), _int(et_sub)
    is_reply = g("is_reply")
    if is_reply is None and g("reply"):
        is_reply = True
    elif is_reply is not None and type(is_reply) is not bool:
        raise DecodeError(f"is_reply must be true or false, not {_kind(is_reply)}")
    ftime = g("time")
    l7 = g("l7")
    pmt = g("policy_match_type", 0)
    verdict = g("verdict", 0)
    if type(verdict) is not int and type(verdict) is not str:
        verdict = _enum(verdict, "verdict")
    node_name = g("node_name") or node
    if type(node_name) is not str:
        node_name = _text(node_name, "node_name")
    for lazy in _LAZY_TEXT_LISTS:  # read later from ``raw`` (dns_names): checked now all the same
        if lazy in f:
            _texts(f[lazy], lazy)
    for lazy in _LAZY_OBJECTS:
        if lazy in f:
            _check_service(f[lazy], lazy)
    if "uuid" in f:  # resume tells flows apart by it
        _text(f["uuid"], "uuid")
    egress_allowed, ingress_allowed = g("egress_allowed_by"), g("ingress_allowed_by")
    egress_denied, ingress_denied = g("egress_denied_by"), g("ingress_denied_by")
    return _new_flow(Flow, (
        _time_ns(ftime) if ftime else time_ns,
        VERDICT_NAME.get(verdict) or str(verdict),
        reason_code,
        reason_name,
        DIRECTION_NAME.get(g("traffic_direction", 0), ""),
        _endpoint(g("source"), ip.get("source", "")),
        _endpoint(g("destination"), ip.get("destination", "")),
        protocol, src_port, dst_port, flags,
        _shared(_l7(l7)) if l7 else None,
        _shared(node_name),
        is_reply,
        et_type, et_sub,
        FLOW_TYPE_NAME.get(g("Type", 0), ""),
        pmt if type(pmt) is int else _int(pmt),
        TRACE_POINT_NAME.get(g("trace_observation_point", 0), ""),
        _policies(egress_allowed) if egress_allowed else NO_POLICIES,
        _policies(ingress_allowed) if ingress_allowed else NO_POLICIES,
        _policies(egress_denied) if egress_denied else NO_POLICIES,
        _policies(ingress_denied) if ingress_denied else NO_POLICIES,
        raw if raw is not None else f,
    ))


_BOM = b"\xef\xbb\xbf"


def event_from_line(line: bytes) -> Flow | NodeStatus | LostEvents | None:
    """One jsonpb line as read from a recording. ``raw`` keeps the line itself (bytes, not GC-tracked, and
    written back unchanged); a line in lowerCamelCase or legacy form is kept in its jsonpb form instead."""
    line = line.strip()  # raw lines are told from protobuf by their first byte, "{"
    if line[:3] == _BOM:
        line = line[3:].lstrip()
    obj = orjson.loads(line)
    if type(obj) is dict and needs_renaming(obj):
        obj = to_proto_names(obj)
        line = None
    event = event_from_json(obj, line)
    if line is None and event is not None:
        event = event._replace(raw=orjson.dumps(go_order(event.raw)))  # as hubble would write it
    return event


def event_from_json(obj, line: bytes | None = None) -> Flow | NodeStatus | LostEvents | None:
    """One parsed jsonpb line (GetFlowsResponse) or legacy bare Flow; None for a response of no kind we keep.

    `raw` of the result is the GetFlowsResponse form (``line`` when given, else the dict), so writing it back
    yields jsonpb.
    """
    if type(obj) is not dict:
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    try:
        flow = obj.get("flow")
        node = _text(obj.get("node_name"), "node_name")
        if flow is not None:
            if type(flow) is not dict:
                raise DecodeError("`flow` is not an object")
            # the response time is only needed when the flow has none of its own
            return flow_from_dict(flow, node, 0 if flow.get("time") else _time_ns(obj.get("time")),
                                  obj if line is None else line)
        status = obj.get("node_status")
        if status is not None:
            status = _object(status, "node_status")
            state = _enum(status.get("state_change", 0), "state_change")
            return NodeStatus(_time_ns(obj.get("time")), NODE_STATE_NAME.get(state, str(state)),
                              _texts(status.get("node_names"), "node_names"), _text(status.get("message"), "message"),
                              node,
                              obj if line is None else line)
        lost = obj.get("lost_events")
        if lost is not None:
            lost = _object(lost, "lost_events")
            cpu = lost.get("cpu")
            lost_source = _enum(lost.get("source", 0), "lost_events source")
            return LostEvents(_time_ns(obj.get("time")), LOST_SOURCE_NAME.get(lost_source, str(lost_source)),
                              _int(lost.get("num_events_lost", 0)), None if cpu is None else _int(cpu), node,
                              obj if line is None else line)
        if "verdict" in obj or "source" in obj or "IP" in obj or "l4" in obj:
            # legacy `-o json` (HUBBLE_COMPAT=legacy-json-output): the bare Flow object
            wrapped = {"flow": obj}
            if "node_name" in obj:
                wrapped["node_name"] = obj["node_name"]
            if "time" in obj:
                wrapped["time"] = obj["time"]
            event = flow_from_dict(obj, node, 0, wrapped)
            return event if line is None else event._replace(raw=orjson.dumps(wrapped))
        if obj.get("agent_event") is not None or obj.get("debug_event") is not None:
            return None
        raise DecodeError("neither a flow, node_status nor lost_events")
    except (AttributeError, TypeError, StopIteration, KeyError, RecursionError) as exc:
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


def _ep_pb(ep, ip: str) -> Endpoint:
    key = (ep.identity, ep.pod_name, ip)
    cached = _EP_CACHE.get(key)
    if cached is not None:
        return cached
    wl = ep.workloads
    made = Endpoint(ep.namespace, key[1], tuple(ep.labels), key[0],
                    tuple((w.kind, w.name) for w in wl) if wl else (), ip, ep.cluster_name)
    _remember(key, made)
    return made


def _pol_pb(entries) -> tuple[PolicyRef, ...]:
    if not entries:
        return NO_POLICIES
    return tuple(PolicyRef(p.name, p.namespace, p.kind, p.revision, tuple(p.labels)) for p in entries)


def _flags_pb(fl) -> tuple[str, ...]:
    return tuple(d.name for d, _ in fl.ListFields())


def _l7_pb(rec) -> L7:
    kind = _L7_TYPE.get(rec.type, str(rec.type))
    which = rec.WhichOneof("record")
    if which == "http":
        http = rec.http
        return L7(kind, "http", http.method, http.url, http.code, rec.latency_ns)
    if which == "dns":
        dns = rec.dns
        return L7(kind, "dns", ",".join(dns.qtypes), dns.query, dns.rcode, rec.latency_ns)
    if which == "kafka":
        kafka = rec.kafka
        return L7(kind, "kafka", kafka.api_key, kafka.topic, kafka.error_code, rec.latency_ns)
    return L7(kind, "", "", "", 0, rec.latency_ns)


_DROPPING_VERDICTS = frozenset((2, 3, 4))  # DROPPED, ERROR, AUDIT: the only verdicts that carry a reason


def flow_from_proto(f: flow_pb2.Flow, node: str = "", raw=None, data: bytes | None = None) -> Flow:
    """``data``, the serialized message when at hand, lets rarely-set fields be skipped cheaply.

    Every attribute read on a protobuf message costs 0.1-0.3 us, which is most of this function's time:
    fields are read once, and only where the flow can carry them.
    """
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
    verdict = f.verdict
    reason = (f.drop_reason_desc or f.drop_reason) if verdict in _DROPPING_VERDICTS else 0
    l7 = _l7_pb(f.l7) if f.HasField("l7") else None
    is_reply = f.is_reply.value if f.HasField("is_reply") else (True if f.reply else None)
    t = f.time
    et = f.event_type
    return _new_flow(Flow, (
        t.seconds * 1_000_000_000 + t.nanos,
        _VERDICT.get(verdict, str(verdict)),
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
    ))


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
    """``data``: the bytes ``resp`` was parsed from; kept as ``raw`` instead of the message (see raw_message)."""
    which = resp.WhichOneof("response_types")
    if which == "flow":
        return flow_from_proto(resp.flow, resp.node_name, resp if data is None else data, data)
    t = resp.time.seconds * 1_000_000_000 + resp.time.nanos
    raw = resp if data is None else data
    if which == "node_status":
        st = resp.node_status
        return NodeStatus(t, relay_pb2.NodeState.Name(st.state_change) if st.state_change in NODE_STATE_NAME
                          else str(st.state_change), tuple(st.node_names), st.message, resp.node_name, raw)
    if which == "lost_events":
        lost = resp.lost_events
        return LostEvents(t, LOST_SOURCE_NAME.get(lost.source, str(lost.source)), lost.num_events_lost,
                          lost.cpu.value if lost.HasField("cpu") else None, resp.node_name, raw)
    return None


# ---------------------------------------------------------------------------------------------------------
# serialized protobuf (the gRPC hot path)

_ResponseDigest = digest_pb2.ResponseDigest
_CACHE_MAX = 50_000
_PAIR_CACHE: dict[bytes, tuple[bytes, bytes, Endpoint, Endpoint]] = {}
_L4_CACHE: dict[bytes, tuple[str, int, int, tuple[str, ...]]] = {}
_EVENT_TYPE_CACHE: dict[bytes, tuple[int, int]] = {}
_L7_CACHE: dict[bytes, L7] = {}  # requests repeat; responses differ mostly by latency, still worth a lookup


def _bounded_put(cache: dict, key, value):
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _endpoints(ip_bytes: bytes, src: bytes, dst: bytes) -> tuple[Endpoint, Endpoint]:
    ip = flow_pb2.IP.FromString(ip_bytes)
    return (_ep_pb(flow_pb2.Endpoint.FromString(src), ip.source),
            _ep_pb(flow_pb2.Endpoint.FromString(dst), ip.destination))


def _layer4(data: bytes) -> tuple[str, int, int, tuple[str, ...]]:
    l4 = flow_pb2.Layer4.FromString(data)
    protocol = l4.WhichOneof("protocol") or ""
    if protocol == "TCP":
        tcp = l4.TCP
        return protocol, tcp.source_port, tcp.destination_port, _flags_pb(tcp.flags)
    if protocol in ("UDP", "SCTP"):
        body = getattr(l4, protocol)
        return protocol, body.source_port, body.destination_port, ()
    if protocol in ("ICMPv4", "ICMPv6"):
        return protocol, 0, getattr(l4, protocol).type, ()
    return protocol, 0, 0, ()


def _event_type(data: bytes) -> tuple[int, int]:
    et = flow_pb2.CiliumEventType.FromString(data)
    return et.type, et.sub_type


_SECONDS_CACHE: dict[bytes, int] = {}


# google.protobuf.Timestamp's own range, 0001-01-01 to 9999-12-31 (what JSON output can express)
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def _check_time(seconds: int, nanos: int) -> None:
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos <= 999_999_999:
        raise DecodeError(f"time out of range ({seconds} s, {nanos} ns)")


def _timestamp_ns(data: bytes) -> int:
    """A serialized Timestamp -> ns (the general path; _flow_from_digest inlines the common case)."""
    t = flow_pb2.google_dot_protobuf_dot_timestamp__pb2.Timestamp.FromString(data)
    _check_time(t.seconds, t.nanos)
    # remember the seconds only for the shape the fast path reads: a 5-byte seconds varint, then the nanos tag
    if len(data) > 7 and data[0] == 0x08 and all(b >= 0x80 for b in data[1:5]) and data[5] < 0x80 \
            and data[6] == 0x10:
        _bounded_put(_SECONDS_CACHE, data[1:6], t.seconds)
    return t.seconds * 1_000_000_000 + t.nanos


def _policies_bytes(entries) -> tuple[PolicyRef, ...]:
    return _pol_pb([flow_pb2.Policy.FromString(e) for e in entries]) if entries else NO_POLICIES


def _flow_from_digest(f, digest, data: bytes) -> Flow:
    # keyed by the small IP pair; the endpoints' bytes are compared (cheap) rather than hashed (not)
    ip_bytes, src_bytes, dst_bytes = f.IP, f.source, f.destination
    pair = _PAIR_CACHE.get(ip_bytes)
    if pair is None or pair[0] != src_bytes or pair[1] != dst_bytes:
        pair = _bounded_put(_PAIR_CACHE, ip_bytes,
                            (src_bytes, dst_bytes, *_endpoints(ip_bytes, src_bytes, dst_bytes)))
    src, dst = pair[2], pair[3]
    l4_bytes = f.l4
    protocol, src_port, dst_port, flags = _L4_CACHE.get(l4_bytes) or _bounded_put(_L4_CACHE, l4_bytes,
                                                                                 _layer4(l4_bytes))
    et_bytes = f.event_type
    et_type, et_sub = _EVENT_TYPE_CACHE.get(et_bytes) or _bounded_put(_EVENT_TYPE_CACHE, et_bytes,
                                                                      _event_type(et_bytes))
    verdict = f.verdict
    reason = (f.drop_reason_desc or f.drop_reason) if verdict in _DROPPING_VERDICTS else 0
    l7_bytes = f.l7
    l7 = None
    if l7_bytes:
        l7 = _L7_CACHE.get(l7_bytes) or _bounded_put(_L7_CACHE, l7_bytes,
                                                     _l7_pb(flow_pb2.Layer7.FromString(l7_bytes)))
    if _POLICY_TAG_TAIL in data:
        egress_allowed, ingress_allowed = _policies_bytes(f.egress_allowed_by), _policies_bytes(f.ingress_allowed_by)
        egress_denied, ingress_denied = _policies_bytes(f.egress_denied_by), _policies_bytes(f.ingress_denied_by)
    else:
        egress_allowed = ingress_allowed = egress_denied = ingress_denied = NO_POLICIES
    time_bytes = f.time
    # present-day Timestamps have one shape: 08 <5-byte varint seconds> 10 <varint nanos>; the seconds repeat
    # for a whole second of flows and the nanos varint unpacks arithmetically
    secs = _SECONDS_CACHE.get(time_bytes[1:6]) if len(time_bytes) > 7 and time_bytes[6] == 0x10 else None
    if secs is not None and time_bytes[0] == 0x08 and len(time_bytes) <= 12:
        x = int.from_bytes(time_bytes[7:], "little")
        nanos = ((x & 0x7F) | ((x >> 1) & 0x3F80) | ((x >> 2) & 0x1FC000) | ((x >> 3) & 0xFE00000)
                 | ((x >> 4) & 0x7F0000000))
        if nanos > 999_999_999:
            _check_time(secs, nanos)
        time_ns = secs * 1_000_000_000 + nanos
    else:
        time_ns = _timestamp_ns(time_bytes)
    return _new_flow(Flow, (
        time_ns,
        _VERDICT.get(verdict) or str(verdict),
        reason, _DROP[reason] if reason in _DROP else str(reason),
        _DIRECTION.get(f.traffic_direction, ""),
        src, dst, protocol, src_port, dst_port, flags,
        l7, f.node_name or digest.node_name,
        (f.is_reply == b"\x08\x01") if f.HasField("is_reply") else (True if f.reply else None),
        et_type, et_sub,
        _FLOW_TYPE.get(f.Type, ""), f.policy_match_type if et_type == 5 else 0,  # policy-verdict events only
        _TRACE_POINT.get(f.trace_observation_point, ""),
        egress_allowed, ingress_allowed, egress_denied, ingress_denied,
        data,
    ))


def event_from_bytes(data: bytes) -> Flow | NodeStatus | LostEvents | None:
    """A serialized GetFlowsResponse (as gRPC delivers it) -> event; DecodeError when truncated or garbage.

    Flows go through the digest view (hubbletui/proto/digest): the same fields, with the parts decoded whole
    left as bytes. ``raw`` is ``data`` itself: bytes are cheap to keep and invisible to the garbage collector.
    """
    try:
        # A full parse first: it checks what the digest leaves as bytes (UTF-8 of every string field, say),
        # so that a message which passed here is one that JSON output and filters can read later. It costs
        # about a microsecond in C, little beside gRPC's own cost per message.
        resp = _parse_response(data)
        digest = _ResponseDigest.FromString(data)
        # every Timestamp a response can carry is checked: JSON output (record, -o jsonpb) cannot write one
        # out of range
        t = resp.time
        if t.seconds or t.nanos:
            _check_time(t.seconds, t.nanos)
        # a leading 0a is the tag of field 1 (flow): Hubble's responses start with it, and it spares a lookup
        if data[:1] == b"\n" or digest.HasField("flow"):
            return _flow_from_digest(digest.flow, digest, data)
    except ProtoDecodeError as exc:
        raise DecodeError(f"not a GetFlowsResponse: {exc}") from None
    if resp.HasField("lost_events"):
        for t in (resp.lost_events.first, resp.lost_events.last):
            _check_time(t.seconds, t.nanos)
    return event_from_proto(resp, data)


_parse_response = observer_pb2.GetFlowsResponse.FromString


def dns_names(flow: Flow) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(source_names, destination_names): the DNS names Hubble associated with the peers' IPs.

    Read from the original message on demand: only display and FQDN filters need them.
    """
    body = raw_flow_dict(flow)
    if body is not None:
        return tuple(body.get("source_names") or ()), tuple(body.get("destination_names") or ())
    f = raw_message(flow).flow
    return tuple(f.source_names), tuple(f.destination_names)


# ``raw`` of an event is what it was decoded from, in the cheapest form to keep: a jsonpb line (bytes that
# start with "{"), a serialized GetFlowsResponse (bytes; its first byte is a field tag, never "{"), or, when
# built in code, the dict or the message itself. These two functions give it back in a usable form.


def raw_json(event) -> dict | None:
    """The GetFlowsResponse dict an event was decoded from JSON; None when it came off the wire (protobuf)."""
    raw = event.raw
    if type(raw) is bytes:
        return orjson.loads(raw) if raw[:1] == b"{" else None
    return raw if isinstance(raw, dict) else None


def raw_message(event) -> observer_pb2.GetFlowsResponse:
    """The GetFlowsResponse an event was decoded from protobuf (parsed again from its bytes when kept so)."""
    raw = event.raw
    if type(raw) is bytes and raw[:1] != b"{":
        return observer_pb2.GetFlowsResponse.FromString(raw)
    if isinstance(raw, observer_pb2.GetFlowsResponse):
        return raw
    if isinstance(raw, flow_pb2.Flow):
        return observer_pb2.GetFlowsResponse(flow=raw)
    raise TypeError("this event was decoded from JSON: use raw_json")


def raw_flow_dict(flow: Flow) -> dict | None:
    obj = raw_json(flow)
    return None if obj is None else obj.get("flow", obj)
