"""`hubble observe`'s filter flags, in the order given, to the FlowFilters its client sends.

The hubble CLI builds two filters as flags come: a flag without a side (--pod, --ip, --label, ...) puts its
value in the source field of the left filter and the destination field of the right one; a flag with a side
or none (--from-pod, --verdict, ...) goes into both. Namespaces wait until the end and are then joined to
the pod and service values (``-n ns --pod web`` is ``ns/web``; ``-n ns`` alone is ``ns/``; ``-A`` is ``/``).
Two equal filters become one. ``--not`` sends the one flag after it to the denylist instead, built the same
way. Values are sent as typed (``--pod web`` stays ``web``: the server reads it as the default namespace;
``--protocol TCP`` keeps its case). Raw ``--allowlist``/``--denylist`` JSON filters follow the built ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf import json_format

from hubbletui.flows.enums import DROP_REASON_CODE, EVENT_TYPES, TRACE_SUB_TYPES
from hubbletui.flows.filters import FilterError
from hubbletui.flows.labels import parse_selector
from hubbletui.proto.flow import flow_pb2

# flags without a side: (source field, destination field)
SIDED = {
    "pod": ("source_pod", "destination_pod"), "ip": ("source_ip", "destination_ip"),
    "label": ("source_label", "destination_label"), "service": ("source_service", "destination_service"),
    "port": ("source_port", "destination_port"), "identity": ("source_identity", "destination_identity"),
    "workload": ("source_workload", "destination_workload"), "fqdn": ("source_fqdn", "destination_fqdn"),
    "cluster": ("source_cluster_name", "destination_cluster_name"),
}
# flags that fill one field of both filters
BOTH = {
    "uuid": "uuid", "snat_ip": "source_ip_xlated", "trace_id": "trace_id", "ip_trace_id": "ip_trace_id",
    "verdict": "verdict", "drop_reason_desc": "drop_reason_desc", "http_status": "http_status_code",
    "http_method": "http_method", "http_path": "http_path", "http_url": "http_url", "http_header": "http_header",
    "type": "event_type", "protocol": "protocol", "node_name": "node_name", "node_label": "node_labels",
    "tcp_flags": "tcp_flags", "traffic_direction": "traffic_direction", "interface": "interface",
    "encrypted": "encrypted", "unencrypted": "encrypted", "ip_version": "ip_version", "ipv4": "ip_version",
    "ipv6": "ip_version", "cel_expression": "experimental.cel_expression",
}
for _side in ("from", "to"):
    for _name, _fields in SIDED.items():
        BOTH[f"{_side}_{_name}"] = _fields[0 if _side == "from" else 1]
NAMESPACE_FLAGS = {"namespace": "ns", "from_namespace": "src_ns", "to_namespace": "dst_ns",
                   "all_namespaces": "ns", "from_all_namespaces": "src_ns", "to_all_namespaces": "dst_ns"}
VALUELESS = {"all_namespaces", "from_all_namespaces", "to_all_namespaces", "encrypted", "unencrypted", "ipv4",
             "ipv6", "not_"}
ALL_FLAGS = frozenset(SIDED) | frozenset(BOTH) | frozenset(NAMESPACE_FLAGS) | {"not_"}

# flags that exclude each other in one list, as the hubble CLI refuses them ("cannot be combined")
_CONFLICTS = (
    ("from_fqdn", "from_ip", "ip", "fqdn", "from_namespace", "namespace", "from_all_namespaces", "all_namespaces"),
    ("from_fqdn", "from_ip", "ip", "fqdn", "from_pod", "pod"),
    ("to_fqdn", "to_ip", "ip", "fqdn", "to_namespace", "namespace", "to_all_namespaces", "all_namespaces"),
    ("to_fqdn", "to_ip", "ip", "fqdn", "to_pod", "pod"),
    ("to_pod", "namespace", "all_namespaces"), ("from_pod", "namespace", "all_namespaces"),
    ("to_service", "namespace", "all_namespaces"), ("from_service", "namespace", "all_namespaces"),
    ("label", "from_label"), ("label", "to_label"), ("service", "from_service"), ("service", "to_service"),
    ("port", "to_port"), ("port", "from_port"), ("identity", "to_identity"), ("identity", "from_identity"),
    ("workload", "to_workload"), ("workload", "from_workload"), ("encrypted", "unencrypted"),
)
RESERVED_IDENTITIES = {"host": 1, "world": 2, "unmanaged": 3, "health": 4, "init": 5, "remote-node": 6,
                       "kube-apiserver": 7, "ingress": 8, "world-ipv4": 9, "world-ipv6": 10}
# the monitor's agent notification numbers, as hubble names them for --type agent:SUBTYPE
AGENT_SUB_TYPES = {"unspecified": 0, "message": 1, "agent-started": 2, "policy-updated": 3, "policy-deleted": 4,
                   "endpoint-regenerate-success": 5, "endpoint-regenerate-failure": 6, "endpoint-created": 7,
                   "endpoint-deleted": 8, "ipcache-upserted": 9, "ipcache-deleted": 10}
_IP_VERSIONS = {"4": 1, "v4": 1, "ipv4": 1, "ip4": 1, "6": 2, "v6": 2, "ipv6": 2, "ip6": 2}


def flag_text(name: str) -> str:
    return "--" + name.rstrip("_").replace("_", "-")


def _event_type(text: str) -> flow_pb2.EventTypeFilter:
    name, colon, sub = text.partition(":")
    if name in EVENT_TYPES:
        number = EVENT_TYPES[name]
    elif name.isdigit():
        number = int(name)
    else:
        raise FilterError(f"unknown event type {name!r} (one of {', '.join(EVENT_TYPES)}, or a number)")
    flt = flow_pb2.EventTypeFilter(type=number)
    if colon:
        names = TRACE_SUB_TYPES if number == EVENT_TYPES["trace"] else \
            AGENT_SUB_TYPES if number == EVENT_TYPES["agent"] else {}
        if sub in names:
            flt.sub_type = names[sub]
        elif number == EVENT_TYPES["drop"] and sub.upper() in DROP_REASON_CODE:
            flt.sub_type = DROP_REASON_CODE[sub.upper()]  # ours beyond hubble's: drop:POLICY_DENIED
        elif sub.isdigit():
            flt.sub_type = int(sub)
        else:
            raise FilterError(f"unknown sub-type {sub!r} for event type {name!r}")
        flt.match_sub_type = True
    return flt


def _identity(text: str) -> int:
    if text in RESERVED_IDENTITIES:
        return RESERVED_IDENTITIES[text]
    if text.isdigit() and int(text) < 2**32:
        return int(text)
    raise FilterError(f"invalid security identity {text!r}: one of {', '.join(RESERVED_IDENTITIES)} or a number")


def _workload(text: str) -> flow_pb2.Workload:
    kind, slash, name = text.partition("/")
    return flow_pb2.Workload(kind=kind, name=name) if slash else flow_pb2.Workload(name=text)


def _tcp_flags(text: str) -> flow_pb2.TCPFlags:
    flags = flow_pb2.TCPFlags()
    for part in text.split(","):
        name = part.upper()
        if name not in flow_pb2.TCPFlags.DESCRIPTOR.fields_by_name:
            raise FilterError(f"unknown tcp flag {part!r} (SYN, FIN, RST, PSH, ACK, URG, ECE, CWR, NS)")
        setattr(flags, name, True)
    return flags


def _verdict(text: str) -> int:
    try:
        return flow_pb2.Verdict.Value(text.upper())
    except ValueError:
        raise FilterError(f"unknown verdict {text!r} (FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, "
                          "TRANSLATED)") from None


def _drop_reason(text: str) -> int:
    try:
        return flow_pb2.DropReason.Value(text.upper())
    except ValueError:
        raise FilterError(f"unknown drop reason {text!r} (e.g. POLICY_DENIED, POLICY_DENY)") from None


def _direction(text: str) -> int:
    if text.lower() not in ("ingress", "egress"):
        raise FilterError(f"{text}: invalid traffic direction, expected ingress or egress")
    return flow_pb2.TrafficDirection.Value(text.upper())


def _ip_trace_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**64:
        raise FilterError(f"invalid --ip-trace-id value {text!r}: a number greater than 0")
    return int(text)


def _http_header(text: str) -> flow_pb2.HTTPHeader:
    key, colon, value = text.partition(":")
    if not colon:
        raise FilterError(f"invalid http-header value {text!r}, expected name:value")
    return flow_pb2.HTTPHeader(key=key, value=value)


def _port(text: str) -> str:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise FilterError(f"not a port number: {text!r}")
    return text


def _label(text: str) -> str:
    try:
        parse_selector(text)
    except ValueError as exc:
        raise FilterError(str(exc)) from None
    return text


# the value each flag puts into its field (the text itself when not listed)
_CONVERT = {
    "type": _event_type, "verdict": _verdict, "drop_reason_desc": _drop_reason, "traffic_direction": _direction,
    "ip_trace_id": _ip_trace_id, "http_header": _http_header, "tcp_flags": _tcp_flags,
    "interface": lambda text: flow_pb2.NetworkInterface(name=text),
    "encrypted": lambda _: True, "unencrypted": lambda _: False,
    "ipv4": lambda _: 1, "ipv6": lambda _: 2, "ip_version": lambda text: _IP_VERSIONS.get(text.lower(), 0),
}
for _name in ("identity", "from_identity", "to_identity"):
    _CONVERT[_name] = _identity
for _name in ("workload", "from_workload", "to_workload"):
    _CONVERT[_name] = _workload
for _name in ("port", "from_port", "to_port"):
    _CONVERT[_name] = _port
for _name in ("label", "from_label", "to_label"):
    _CONVERT[_name] = _label


def _append(flt: flow_pb2.FlowFilter, field_path: str, value) -> None:
    target = flt
    *parents, name = field_path.split(".")
    for parent in parents:
        target = getattr(target, parent)
    container = getattr(target, name)
    if isinstance(value, (flow_pb2.EventTypeFilter, flow_pb2.Workload, flow_pb2.TCPFlags, flow_pb2.HTTPHeader,
                          flow_pb2.NetworkInterface)):
        container.add().CopyFrom(value)
    else:
        container.append(value)


def _with_namespaces(values: list[str], namespaces: list[str]) -> list[str]:
    if not namespaces or not values:
        return values
    return [v for value in values for v in ([value] if "/" in value else [f"{ns}/{value}" for ns in namespaces])]


@dataclass
class _Tracker:
    """One list (allow or deny) as the flags build it."""

    left: flow_pb2.FlowFilter | None = None
    right: flow_pb2.FlowFilter | None = None
    ns: list[str] = field(default_factory=list)
    src_ns: list[str] = field(default_factory=list)
    dst_ns: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)

    def sides(self) -> tuple[flow_pb2.FlowFilter, flow_pb2.FlowFilter]:
        if self.left is None:
            self.left = flow_pb2.FlowFilter()
        if self.right is None:
            self.right = flow_pb2.FlowFilter()
        return self.left, self.right

    def add(self, name: str, text: str) -> None:
        if name not in self.used:
            self.used.append(name)
            for group in _CONFLICTS:
                if name in group:
                    other = next((o for o in group if o != name and o in self.used), None)
                    if other is not None:
                        raise FilterError(f"filters {flag_text(other)} and {flag_text(name)} cannot be combined")
        if name in NAMESPACE_FLAGS:
            getattr(self, NAMESPACE_FLAGS[name]).append("" if "all_namespaces" in name else text)
        else:
            value = _CONVERT.get(name, str)(text)
            left, right = self.sides()
            if name in SIDED:
                src, dst = SIDED[name]
                _append(left, src, value)
                _append(right, dst, value)
            else:
                _append(left, BOTH[name], value)
                _append(right, BOTH[name], value)
        self._check_namespaces()

    def _check_namespaces(self) -> None:
        for flt in (self.left, self.right):
            if flt is None:
                continue
            for namespaces, fields in ((self.ns, ("source_pod", "source_service", "destination_pod",
                                                  "destination_service")),
                                       (self.src_ns, ("source_pod", "source_service")),
                                       (self.dst_ns, ("destination_pod", "destination_service"))):
                for ns in namespaces:
                    for name in (n for f in fields for n in getattr(flt, f)):
                        if "/" in name and name.split("/")[0] != ns:
                            raise FilterError(f"namespace conflict: {ns!r} does not contain {name!r}")

    def filters(self) -> list[flow_pb2.FlowFilter]:
        if self.left is None and self.right is None and not (self.ns or self.src_ns or self.dst_ns):
            return []
        left, right = self.sides()
        for namespaces, apply in ((self.dst_ns, ((left, "destination"), (right, "destination"))),
                                  (self.src_ns, ((left, "source"), (right, "source"))),
                                  (self.ns, ((left, "source"), (right, "destination")))):
            if namespaces:
                for flt, side in apply:
                    pods, services = getattr(flt, f"{side}_pod"), getattr(flt, f"{side}_service")
                    new_pods = _with_namespaces(list(pods) or ([""] if not services else []), namespaces)
                    new_services = _with_namespaces(list(services), namespaces)
                    del pods[:], services[:]
                    pods.extend(new_pods)
                    services.extend(new_services)
        return [left] if left == right else [left, right]


def build_from_flags(flags: Iterable[tuple[str, str]], allowlist: Iterable[str] = (),
                     denylist: Iterable[str] = ()) -> tuple[list[flow_pb2.FlowFilter], list[flow_pb2.FlowFilter]]:
    """(whitelist, blacklist) from ``(flag name, value)`` pairs in command-line order (names as the click
    parameters have them: ``from_pod``, ``not_``; a value-less flag's value is ignored)."""
    allow, deny = _Tracker(), _Tracker()
    negate = False
    for name, text in flags:
        if name == "not_":
            if negate:
                raise FilterError("consecutive --not statements")
            negate = True
            continue
        if name not in ALL_FLAGS:
            raise FilterError(f"{flag_text(name)} is not a filter flag")
        (deny if negate else allow).add(name, text)
        negate = False
    if negate:
        raise FilterError("--not needs a filter flag after it")
    whitelist = allow.filters() + [parse_filter_json(text, "--allowlist") for text in allowlist]
    blacklist = deny.filters() + [parse_filter_json(text, "--denylist") for text in denylist]
    return whitelist, blacklist


def parse_filter_json(text: str, flag: str = "--allowlist") -> flow_pb2.FlowFilter:
    """One FlowFilter in protojson (proto or lowerCamelCase names, enums by name or number), as hubble takes it."""
    try:
        return json_format.Parse(text, flow_pb2.FlowFilter())
    except json_format.ParseError as exc:
        raise FilterError(f"invalid {flag} flag: not a FlowFilter in JSON: {exc}") from None
