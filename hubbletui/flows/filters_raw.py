"""FlowFilter fields about parts of a flow our Flow record does not keep: read from the message it came in.

IP version, encryption and SNAT address, uuid, trace ids, interface, node labels and HTTP headers are rare
in filters and never shown in lists, so the record stays small and these read the original message (a jsonpb
dict or a protobuf Flow) when asked. Semantics as Hubble's server evaluates them: a missing part reads as
its zero value (no IP layer is IP_NOT_USED and not encrypted), except an interface or IP trace id, which
must be there to match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hubbletui.flows.decode import raw_flow_dict, raw_message
from hubbletui.flows.labels import Selector, parse_hubble_labels, parse_selector
from hubbletui.flows.model import Flow
from hubbletui.proto.flow import flow_pb2

Predicate = Callable[[Flow], bool]
_IP_VERSION = {v.name: v.number for v in flow_pb2.IPVersion.DESCRIPTOR.values}


class _Body:
    """The flow message of the last flow asked about: several fields of one filter read it once."""

    __slots__ = ("raw", "body")

    def __init__(self) -> None:
        self.raw = self.body = None

    def of(self, flow: Flow):
        if self.raw is not flow.raw or self.body is None:
            body = raw_flow_dict(flow)
            self.body = body if body is not None else raw_message(flow).flow
            self.raw = flow.raw  # held, so its identity cannot pass to another flow's raw
        return self.body


_last = _Body()


def _get(body, *path):
    """The value at ``path`` (proto field names) of a dict or message; None where a part is absent."""
    for key in path:
        if body is None:
            return None
        if isinstance(body, dict):
            body = body.get(key)
        elif body.DESCRIPTOR.fields_by_name[key].message_type is not None and \
                not body.DESCRIPTOR.fields_by_name[key].is_repeated:
            body = getattr(body, key) if body.HasField(key) else None
        else:
            body = getattr(body, key)
    return body


def _ip_version(body) -> int:
    value = _get(body, "IP", "ipVersion")
    if value is None:
        return 0
    return _IP_VERSION.get(value, 0) if isinstance(value, str) else int(value)


def _addresses(values) -> Callable[[str], bool]:
    exact, nets = set(), []
    for value in values:
        try:
            if "/" in value:
                nets.append(ipaddress.ip_network(value, strict=False))
            else:
                exact.add(str(ipaddress.ip_address(value)))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {value!r}") from None

    def match(ip: str) -> bool:
        if not ip:
            return False
        if ip in exact:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in nets)

    return match


def _selectors(values) -> list[Selector]:
    return [parse_selector(v) for v in values]


def _header_pairs(body) -> list[tuple[str, str]]:
    headers = _get(body, "l7", "http", "headers") or ()
    out = []
    for h in headers:
        if isinstance(h, dict):
            out.append((h.get("key") or "", h.get("value") or ""))
        else:
            out.append((h.key, h.value))
    return out


def _interface(body) -> tuple[int, str] | None:
    iface = _get(body, "interface")
    if iface is None:
        return None
    if isinstance(iface, dict):
        return int(iface.get("index") or 0), iface.get("name") or ""
    return iface.index, iface.name


def compile_field(name: str, value) -> Predicate | None:
    """A predicate for FlowFilter field ``name`` with its (repeated) ``value``; None if not one of ours.
    Raises ValueError for a value that cannot be a filter."""
    body = _last.of
    if name == "ip_version":
        versions = set(value)
        return lambda f: _ip_version(body(f)) in versions
    if name == "encrypted":
        wanted = set(value)
        return lambda f: bool(_get(body(f), "IP", "encrypted")) in wanted
    if name == "source_ip_xlated":
        match = _addresses(value)
        return lambda f: match(_get(body(f), "IP", "source_xlated") or "")
    if name == "uuid":
        uuids = set(value)
        return lambda f: (_get(body(f), "uuid") or "") in uuids
    if name == "trace_id":
        ids = set(value)
        return lambda f: (_get(body(f), "trace_context", "parent", "trace_id") or "") in ids
    if name == "ip_trace_id":
        ids = set(value)

        def ip_trace(f: Flow) -> bool:
            traced = _get(body(f), "ip_trace_id")
            if traced is None:
                return False
            tid = traced.get("trace_id") if isinstance(traced, dict) else traced.trace_id
            return int(tid or 0) in ids

        return ip_trace
    if name == "interface":
        wanted = [(i.index, i.name) for i in value]

        def interface(f: Flow) -> bool:
            iface = _interface(body(f))
            return iface is not None and any((not idx or idx == iface[0]) and (not nm or nm == iface[1])
                                             for idx, nm in wanted)

        return interface
    if name == "node_labels":
        selectors = _selectors(value)

        def node_labels(f: Flow) -> bool:
            labels = parse_hubble_labels(tuple(_get(body(f), "node_labels") or ()), bare_source="")
            return any(sel.matches(labels) for sel in selectors)

        return node_labels
    if name == "http_header":
        wanted = [(h.key, h.value) for h in value]
        return lambda f: any((not k or k == key) and (not v or v == val)
                             for key, val in _header_pairs(body(f)) for k, v in wanted)
    if name == "experimental":
        if value.cel_expression:
            raise ValueError("CEL expressions (--cel-expression) are not supported by hubbletui: it has no CEL "
                             "evaluator; use the other filter flags")
        return lambda f: True
    return None
