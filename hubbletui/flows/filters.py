"""Hubble's FlowFilter semantics, evaluated on our Flow model.

One implementation serves three places: `observe --input-file` filters client-side, the replay server
filters what it streams, and flags become the same FlowFilter messages a live request sends to the relay.
Semantics as Hubble documents them: inside one FlowFilter, fields are ANDed and the values of one field ORed;
a flow passes a request if it matches any whitelist filter (or there is none) and no blacklist filter.

Filters arrive from any client of `hubbletui serve`, so compiling one is where it is validated: a value that
cannot be evaluated is a FilterError (the server's INVALID_ARGUMENT, in plain words), regular expressions are
RE2 (flows/regex.py: linear time, at most MAX_PATTERNS per field), and a request carries at most
MAX_FILTER_VALUES values.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable

from google.protobuf.unknown_fields import UnknownFieldSet

from hubbletui.flows.decode import dns_names, raw_flow_dict, raw_message
from hubbletui.flows.enums import DIRECTION_NAME, DROP_REASON_NAME, VERDICT_NAME
from hubbletui.flows.filters_raw import compile_field
from hubbletui.flows.labels import Selector, parse_hubble_labels, parse_selector
from hubbletui.flows.model import Endpoint, Flow
from hubbletui.flows.regex import RegexError, search_any
from hubbletui.proto.flow import flow_pb2

Predicate = Callable[[Flow], bool]

# far above what any person or script asks (hubble's flags make one value each); a bound on the work one
# request can make the server do per flow
MAX_FILTER_VALUES = 4096
# RE2 is linear in the text, but each pattern adds to the work per flow; a follow stream filters on the
# server's loop, so one flow must stay well under a second however hostile the patterns
MAX_PATTERNS = 256


class FilterError(ValueError):
    """A filter value that cannot be understood (bad CIDR, bad selector, unsupported field)."""


# ---------------------------------------------------------------------------------------------------------
# single-field matchers


def _namespaced(values: Iterable[str]) -> list[tuple[str, str]]:
    """Hubble's ``[namespace/][name-prefix]``: "ns/prefix"; "ns/" (the whole namespace); "/prefix" (any
    namespace); "/" (any named endpoint); a bare "prefix" is in the default namespace."""
    wanted = []
    for value in values:
        if not value:
            raise FilterError("invalid filter, name must not be empty")
        ns, slash, name = value.partition("/")
        wanted.append((ns, name.partition("/")[0]) if slash else ("default", value))
    return wanted


def _names_match(wanted: list[tuple[str, str]], ns: str, name: str) -> bool:
    if not ns and not name:
        return False  # an endpoint with neither (world, host) is no pod of any namespace
    return any((not wns or wns == ns) and (not prefix or name.startswith(prefix)) for wns, prefix in wanted)


def _pod_matcher(values: Iterable[str], side: str) -> Predicate:
    wanted = _namespaced(values)

    def match(flow: Flow) -> bool:
        ep: Endpoint = getattr(flow, side)
        return _names_match(wanted, ep.namespace, ep.pod)

    return match


def _ip_matcher(values: Iterable[str], side: str) -> Predicate:
    exact, nets = set(), []
    for value in values:
        try:
            if "/" in value:
                nets.append(ipaddress.ip_network(value, strict=False))
            else:
                exact.add(str(ipaddress.ip_address(value)))
        except ValueError:
            raise FilterError(f"not an IP address or CIDR: {value!r}") from None

    def match(flow: Flow) -> bool:
        ip = getattr(flow, side).ip
        if not ip:
            return False
        if ip in exact:
            return True
        if nets:
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                return False
            return any(addr in net for net in nets)
        return False

    return match


def _label_matcher(values: Iterable[str], side: str) -> Predicate:
    try:
        selectors: list[Selector] = [parse_selector(v) for v in values]
    except ValueError as exc:
        raise FilterError(str(exc)) from None

    def match(flow: Flow) -> bool:
        labels = parse_hubble_labels(getattr(flow, side).labels, bare_source="")
        return any(sel.matches(labels) for sel in selectors)

    return match


def _port_matcher(values: Iterable[str], attr: str) -> Predicate:
    try:
        ports = {int(v) for v in values}
    except ValueError:
        raise FilterError(f"not a port number: {list(values)!r}") from None
    return lambda flow: flow.protocol in ("TCP", "UDP", "SCTP") and getattr(flow, attr) in ports


_L7_PROTOCOLS = {"http", "dns", "kafka"}
_L4_PROTOCOLS = {"tcp": ("TCP",), "udp": ("UDP",), "sctp": ("SCTP",), "icmp": ("ICMPv4", "ICMPv6"),
                 "icmpv4": ("ICMPv4",), "icmpv6": ("ICMPv6",), "vrrp": ("VRRP",), "igmp": ("IGMP",)}


def _protocol_matcher(values: Iterable[str]) -> Predicate:
    l4, l7 = set(), set()
    for value in values:
        key = value.lower()
        if key in _L7_PROTOCOLS:
            l7.add(key)
        elif key in _L4_PROTOCOLS:
            l4.update(_L4_PROTOCOLS[key])
        else:
            raise FilterError(f"unknown protocol {value!r} (tcp, udp, sctp, icmp, icmpv4, icmpv6, http, dns, kafka)")
    return lambda flow: flow.protocol in l4 or (flow.l7 is not None and flow.l7.protocol in l7)


def _event_type_matcher(entries) -> Predicate:
    # a flow without an event type (a field-masked exporter line) matches no type, as in Hubble
    wanted = [(e.type, e.match_sub_type, e.sub_type) for e in entries]
    return lambda flow: any(flow.event_type == t and (not sub or flow.event_sub_type == st)
                            for t, sub, st in wanted)


def _names_matcher(values: Iterable[str], side: int) -> Predicate:
    patterns = [re.compile(fnmatch.translate(v.rstrip(".")), re.I) for v in values]
    return lambda flow: any(p.match(n.rstrip(".")) for n in dns_names(flow)[side] for p in patterns)


def _status_matcher(values: Iterable[str]) -> Predicate:
    # "404" exact; "5+" any 5xx; "40+" 400-409: a trailing + makes the digits a prefix of the 3-digit code
    exact, prefixes = set(), []
    for value in values:
        digits = value[:-1] if value.endswith("+") else value
        if not digits.isdigit() or len(digits) > 3:
            raise FilterError(f"not an HTTP status filter: {value!r} (404, 5+, 40+)")
        (prefixes.append(digits) if value.endswith("+") else exact.add(int(digits)))

    def match(flow: Flow) -> bool:
        l7 = flow.l7
        if l7 is None or l7.protocol != "http" or not l7.code:
            return False
        return l7.code in exact or any(str(l7.code).startswith(p) for p in prefixes)

    return match


def _workload_matcher(entries, side: str) -> Predicate:
    wanted = [(w.kind, w.name) for w in entries]

    def match(flow: Flow) -> bool:
        for kind, name in getattr(flow, side).workloads:
            for wkind, wname in wanted:
                if (not wkind or wkind == kind) and (not wname or wname == name):
                    return True
        return False

    return match


def _node_matcher(values: Iterable[str]) -> Predicate:
    # Hubble matches "cluster/node" globs; a bare node pattern matches in any cluster
    patterns = []
    for value in values:
        patterns.append(re.compile(fnmatch.translate(value if "/" in value else f"*{value}")))
        if "/" not in value:
            patterns.append(re.compile(fnmatch.translate(value)))
    return lambda flow: any(p.match(flow.node) for p in patterns)


def _tcp_flags_matcher(entries) -> Predicate:
    wanted = [frozenset(f.name for f in flow_pb2.TCPFlags.DESCRIPTOR.fields if getattr(e, f.name)) for e in entries]
    return lambda flow: flow.protocol == "TCP" and any(w <= set(flow.tcp_flags) for w in wanted)


def _service_matcher(values: Iterable[str], side: str) -> Predicate:
    attr = f"{side}_service"
    wanted = _namespaced(values)

    def match(flow: Flow) -> bool:
        body = raw_flow_dict(flow)
        if body is not None:
            svc = body.get(attr) or {}
            ns, name = svc.get("namespace", ""), svc.get("name", "")
        else:
            pb = raw_message(flow).flow
            ns, name = getattr(pb, attr).namespace, getattr(pb, attr).name
        return _names_match(wanted, ns, name)

    return match


def _regexes(values: Iterable[str], field: str) -> Callable[[str], bool]:
    if len(values) > MAX_PATTERNS:
        raise FilterError(f"{field}: {len(values):,} patterns; hubbletui evaluates at most {MAX_PATTERNS} per field")
    try:
        return search_any(list(values), field)
    except RegexError as exc:
        raise FilterError(str(exc)) from None


def _compile(flt: flow_pb2.FlowFilter) -> Predicate:
    unknown = sorted({f.field_number for f in UnknownFieldSet(flt)})
    if unknown:
        # a newer Hubble's filter field: ignoring it would answer wider than asked
        raise FilterError(f"the filter has field number{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(str, unknown))}, which hubbletui does not know")
    checks: list[Predicate] = []
    for field_desc, value in flt.ListFields():
        name = field_desc.name
        if name == "source_pod":
            checks.append(_pod_matcher(value, "source"))
        elif name == "destination_pod":
            checks.append(_pod_matcher(value, "destination"))
        elif name == "source_ip":
            checks.append(_ip_matcher(value, "source"))
        elif name == "destination_ip":
            checks.append(_ip_matcher(value, "destination"))
        elif name == "source_label":
            checks.append(_label_matcher(value, "source"))
        elif name == "destination_label":
            checks.append(_label_matcher(value, "destination"))
        elif name == "verdict":
            verdicts = {VERDICT_NAME.get(v, str(v)) for v in value}  # a number we do not know matches none
            checks.append(lambda f, s=verdicts: f.verdict in s)
        elif name == "drop_reason_desc":
            reasons = {DROP_REASON_NAME.get(v, str(v)) for v in value}
            checks.append(lambda f, s=reasons: f.drop_reason_name in s)
        elif name == "traffic_direction":
            directions = {DIRECTION_NAME.get(v) or str(v) for v in value}
            checks.append(lambda f, s=directions: f.direction in s)
        elif name == "event_type":
            checks.append(_event_type_matcher(value))
        elif name == "protocol":
            checks.append(_protocol_matcher(value))
        elif name == "source_port":
            checks.append(_port_matcher(value, "src_port"))
        elif name == "destination_port":
            checks.append(_port_matcher(value, "dst_port"))
        elif name == "reply":
            replies = set(value)
            checks.append(lambda f, s=replies: bool(f.is_reply) in s)
        elif name == "source_identity":
            ids = set(value)
            checks.append(lambda f, s=ids: f.source.identity in s)
        elif name == "destination_identity":
            ids = set(value)
            checks.append(lambda f, s=ids: f.destination.identity in s)
        elif name == "source_fqdn":
            checks.append(_names_matcher(value, 0))
        elif name == "destination_fqdn":
            checks.append(_names_matcher(value, 1))
        elif name == "node_name":
            checks.append(_node_matcher(value))
        elif name == "source_workload":
            checks.append(_workload_matcher(value, "source"))
        elif name == "destination_workload":
            checks.append(_workload_matcher(value, "destination"))
        elif name == "tcp_flags":
            checks.append(_tcp_flags_matcher(value))
        elif name == "http_status_code":
            checks.append(_status_matcher(value))
        elif name == "http_method":
            methods = {v.upper() for v in value}
            checks.append(lambda f, s=methods: f.l7 is not None and f.l7.protocol == "http" and f.l7.method in s)
        elif name in ("http_path", "http_url"):
            found = _regexes(value, name)
            checks.append(lambda f, m=found: f.l7 is not None and f.l7.protocol == "http" and m(f.l7.target))
        elif name == "dns_query":
            found = _regexes(value, name)
            checks.append(lambda f, m=found: f.l7 is not None and f.l7.protocol == "dns" and m(f.l7.target))
        elif name == "source_service":
            checks.append(_service_matcher(value, "source"))
        elif name == "destination_service":
            checks.append(_service_matcher(value, "destination"))
        elif name == "source_cluster_name":
            names = set(value)
            checks.append(lambda f, s=names: f.source.cluster in s)
        elif name == "destination_cluster_name":
            names = set(value)
            checks.append(lambda f, s=names: f.destination.cluster in s)
        else:
            try:
                check = compile_field(name, value)
            except ValueError as exc:
                raise FilterError(str(exc)) from None
            if check is None:
                raise FilterError(f"the filter field {name!r} is not supported by hubbletui")
            checks.append(check)
    if len(checks) == 1:
        return checks[0]
    return lambda flow: all(check(flow) for check in checks)


def compile_request(whitelist: Iterable[flow_pb2.FlowFilter] = (),
                    blacklist: Iterable[flow_pb2.FlowFilter] = ()) -> Predicate:
    """A predicate equal to Hubble's evaluation of GetFlowsRequest.whitelist/blacklist."""
    whitelist, blacklist = list(whitelist), list(blacklist)
    values = sum(len(value) if field.is_repeated else 1
                 for flt in whitelist + blacklist for field, value in flt.ListFields())
    if values > MAX_FILTER_VALUES:
        raise FilterError(f"the filters carry {values:,} values; hubbletui evaluates at most {MAX_FILTER_VALUES:,}")
    allow = [_compile(f) for f in whitelist]
    deny = [_compile(f) for f in blacklist]
    if not allow and not deny:
        return lambda flow: True

    def match(flow: Flow) -> bool:
        if allow and not any(check(flow) for check in allow):
            return False
        return not any(check(flow) for check in deny)

    return match
