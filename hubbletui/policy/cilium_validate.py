"""Would Cilium's agent import this CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy? The same checks, in words.

Cilium v1.19 validates every rule of a policy before it is imported (`pkg/policy/api/rule_validation.go`,
`Rule.Validate` and the per-section `Validate` methods, helpers in `rule_validation_helpers.go`); one failing rule
and the whole policy is refused: it is not enforced at all. The CRD schema (`schemas/cilium.io_*_v2.json`, Cilium
1.18.2) refuses some of the same shapes earlier, at the API server (unknown fields such as `rules` under a deny
rule's `toPorts`, an entity outside the enum). `validate_policy` answers with the first problem, as the agent
does, so that a rejected policy can be shown as "rejected by Cilium: <why>" and a suggested fix that would be
refused is never shown.

Agent flags assumed at their v1.19 defaults: L7 proxy on, ICMP rules on, `--enable-node-selector-labels` off (so
`fromNodes`/`toNodes` are refused), extended IP protocols off (so a port must be given).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from hubbletui.policy.selectors import SelectorError, parse_label_selector

MAX_PORTS = 40  # maxPorts in rule_validation_helpers.go
MAX_ICMP_FIELDS = 40
# the entity enum of the CRD (`fromEntities.items.enum`), which is EntitySelectorMapping's keys
ENTITY_NAMES = ("all", "world", "cluster", "host", "init", "ingress", "unmanaged", "remote-node", "health", "none",
                "kube-apiserver")
PROTOCOLS = ("TCP", "UDP", "SCTP", "ANY")  # ParseL4Proto / the CRD's protocol enum
# L3 peer fields that may not be combined in one rule (IngressCommonRule.Validate / EgressCommonRule.l3Members);
# toFQDNs joins the egress list of allow rules only (EgressRule.l3Members)
INGRESS_L3 = ("fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities", "fromNodes", "fromGroups")
EGRESS_L3 = ("toCIDR", "toCIDRSet", "toEndpoints", "toEntities", "toServices", "toGroups", "toNodes")
SECTIONS = ("ingress", "ingressDeny", "egress", "egressDeny")
# a deny rule's toPorts entries are PortDenyRule: `ports` only (no L7, SNI, TLS or listener fields in the CRD)
_PORT_RULE_ONLY = ("rules", "serverNames", "listener", "terminatingTLS", "originatingTLS")
# iana.IsSvcName: 1-15 characters of [a-z0-9-], at least one letter, no leading, trailing or doubled hyphen
_SVC_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-zA-Z])[a-zA-Z0-9](?:-?[a-zA-Z0-9])*$")
# FQDNSelector.Validate (pkg/policy/api/fqdn.go): allowed characters of matchName / matchPattern
_FQDN_NAME = re.compile(r"^([-a-zA-Z0-9_]+[.]?)+$")
_FQDN_PATTERN = re.compile(r"^([-a-zA-Z0-9_*]+[.]?)+$")
_ICMP_NAMES = {"EchoReply", "DestinationUnreachable", "Redirect", "Echo", "EchoRequest", "RouterAdvertisement",
               "RouterSelection", "TimeExceeded", "ParameterProblem", "Timestamp", "TimestampReply", "Photuris",
               "ExtendedEchoRequest", "ExtendedEchoReply", "PacketTooBig", "MulticastListenerQuery",
               "MulticastListenerReport", "MulticastListenerDone", "RouterSolicitation", "NeighborSolicitation",
               "NeighborAdvertisement", "RedirectMessage"}


class Invalid(ValueError):
    """One reason Cilium refuses a rule; its text says where (``specs[1].egress[0].toPorts[0]``) and why."""


def validate_policy(obj: Mapping) -> str | None:
    """The first reason Cilium would refuse the whole policy object, or None when it imports it."""
    kind = obj.get("kind", "")
    clusterwide = kind == "CiliumClusterwideNetworkPolicy"
    specs: list[tuple[str, object]] = []
    if obj.get("spec") is not None:
        specs.append(("spec", obj["spec"]))
    many = obj.get("specs")
    if many is not None and not isinstance(many, list):
        return "specs must be a list"
    specs += [(f"specs[{i}]", s) for i, s in enumerate(many or [])]
    if not specs:
        # cilium.io/v2 CiliumNetworkPolicy.Parse: ErrEmptyCNP / ErrEmptyCCNP
        return "empty policy: neither spec nor specs"
    for path, spec in specs:
        problem = validate_rule(spec, clusterwide=clusterwide)
        if problem:
            return f"{path}: {problem}"
    return None


def validate_rule(spec: object, *, clusterwide: bool) -> str | None:
    try:
        _rule(spec, clusterwide)
    except Invalid as exc:
        return str(exc)
    return None


def _rule(spec: object, clusterwide: bool) -> None:
    if not isinstance(spec, Mapping):
        raise Invalid("a rule must be an object")
    for section in SECTIONS:
        if spec.get(section) is not None and not isinstance(spec[section], list):
            raise Invalid(f"{section} must be a list")
    if not any(spec.get(section) for section in SECTIONS):
        raise Invalid("rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny")
    has_endpoints, has_nodes = spec.get("endpointSelector") is not None, spec.get("nodeSelector") is not None
    if not has_endpoints and not has_nodes:
        raise Invalid("rule must have one of EndpointSelector or NodeSelector")
    if has_endpoints and has_nodes:
        raise Invalid("rule cannot have both EndpointSelector and NodeSelector")
    if has_nodes and not clusterwide:
        # pkg/policy/api/rule.go: NodeSelector "Can only be used in CiliumClusterwideNetworkPolicies"
        raise Invalid("nodeSelector can only be used in a CiliumClusterwideNetworkPolicy")
    _selector("endpointSelector" if has_endpoints else "nodeSelector",
              spec.get("endpointSelector" if has_endpoints else "nodeSelector"))
    for section in SECTIONS:
        for i, entry in enumerate(spec.get(section) or []):
            where = f"{section}[{i}]"
            if not isinstance(entry, Mapping):
                raise Invalid(f"{where}: must be an object")
            try:
                _section(section, entry, host_policy=has_nodes)
            except Invalid as exc:
                raise Invalid(f"{where}: {exc}") from None


def _section(section: str, entry: Mapping, host_policy: bool) -> None:
    ingress = section.startswith("ingress")
    deny = section.endswith("Deny")
    prefix = "from" if ingress else "to"
    removed = f"{prefix}Requires"
    if entry.get(removed):
        raise Invalid(f"{removed} was removed in Cilium 1.19; the policy is not imported")
    l3 = list(INGRESS_L3 if ingress else EGRESS_L3)
    if not ingress and not deny:
        l3.append("toFQDNs")
    elif entry.get("toFQDNs") is not None:
        raise Invalid("toFQDNs is not allowed in a deny rule")
    present = [name for name in l3 if _count(entry, name)]
    if len(present) > 1:
        raise Invalid(f"combining {present[0]} and {present[1]} is not supported yet (put each kind of peer "
                      "in its own rule)")
    _peers(entry, prefix)
    to_ports = entry.get("toPorts")
    if to_ports is not None and not isinstance(to_ports, list):
        raise Invalid("toPorts must be a list")
    icmps = entry.get("icmps")
    if icmps and to_ports:
        raise Invalid("the ICMPs block may only be present without ToPorts; define a separate rule to use ToPorts")
    if deny:
        for i, tp in enumerate(to_ports or []):
            tp = tp or {}
            extra = [k for k in _PORT_RULE_ONLY if k in tp]
            if extra:
                raise Invalid(f"toPorts[{i}]: {extra[0]} is not allowed in a deny rule (L7 rules cannot deny)")
            _ports(f"toPorts[{i}]", tp.get("ports") or [], has_dns=False)
    else:
        l7 = _l7_kinds(to_ports or [])
        if host_policy and l7 and ingress:
            raise Invalid("L7 policy is not supported on host ingress yet")
        if ingress and "DNS" in l7:
            raise Invalid("L7 protocol DNS is not supported on ingress yet")
        if host_policy and not ingress and (l7 - {"DNS"}):
            raise Invalid(f"L7 protocol {sorted(l7 - {'DNS'})[0]} is not supported on host egress yet")
        for i, tp in enumerate(to_ports or []):
            try:
                _port_rule(tp or {}, ingress)
            except Invalid as exc:
                raise Invalid(f"toPorts[{i}]: {exc}") from None
        for i, fqdn in enumerate(entry.get("toFQDNs") or []):
            _fqdn(f"toFQDNs[{i}]", fqdn)
    for i, icmp in enumerate(icmps or []):
        _icmp(f"icmps[{i}]", icmp)


def _count(entry: Mapping, name: str) -> int:
    value = entry.get(name)
    if value is None:
        return 0
    if not isinstance(value, list):
        raise Invalid(f"{name} must be a list")
    return len(value)


def _peers(entry: Mapping, prefix: str) -> None:
    if entry.get(f"{prefix}Nodes"):
        # ErrFromToNodesRequiresNodeSelectorOption, returned unless the agent runs with the flag
        raise Invalid(f"{prefix}Nodes rules can only be applied when the \"enable-node-selector-labels\" flag "
                      "is set (off by default)")
    for i, sel in enumerate(entry.get(f"{prefix}Endpoints") or []):
        _selector(f"{prefix}Endpoints[{i}]", sel)
    for i, cidr in enumerate(entry.get(f"{prefix}CIDR") or []):
        _cidr(f"{prefix}CIDR[{i}]", cidr)
    for i, rule in enumerate(entry.get(f"{prefix}CIDRSet") or []):
        _cidr_rule(f"{prefix}CIDRSet[{i}]", rule)
    for i, entity in enumerate(entry.get(f"{prefix}Entities") or []):
        if entity not in ENTITY_NAMES:
            raise Invalid(f"{prefix}Entities[{i}]: unsupported entity: {entity}")
    for i, svc in enumerate(entry.get("toServices") or [] if prefix == "to" else []):
        svc = svc or {}
        if not isinstance(svc, Mapping) or not (svc.get("k8sService") or svc.get("k8sServiceSelector")):
            raise Invalid(f"toServices[{i}]: names neither k8sService nor k8sServiceSelector")
        ref = svc.get("k8sServiceSelector")
        if ref is not None:
            _selector(f"toServices[{i}].k8sServiceSelector.selector", (ref or {}).get("selector") or {})


def _selector(where: str, spec: object) -> None:
    if spec is None:
        return
    if not isinstance(spec, Mapping):
        raise Invalid(f"{where}: a label selector must be an object")
    try:
        parse_label_selector(spec)
    except SelectorError as exc:
        raise Invalid(f"{where}: {exc}") from None


def _cidr(where: str, text: object) -> None:
    """CIDR.Validate: a prefix, or a bare address."""
    value = str(text or "")
    if not value:
        raise Invalid(f"{where}: IP must be specified")
    try:
        if "/" in value:
            _prefix(value)
        else:
            ipaddress.ip_address(value)
    except ValueError as exc:
        raise Invalid(f"{where}: unable to parse CIDR {value!r}: {exc}") from None


def _prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """netip.ParsePrefix: address/bits, host bits allowed, no zone, no leading zeros."""
    address, sep, bits = text.partition("/")
    if not sep or not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise ValueError("not <address>/<prefix length>")
    ipaddress.ip_address(address)
    return ipaddress.ip_network(text, strict=False)


def _cidr_rule(where: str, rule: object) -> None:
    """CIDRRule.Validate: exactly one of cidr, cidrGroupRef, cidrGroupSelector; excepts inside the cidr."""
    if not isinstance(rule, Mapping):
        raise Invalid(f"{where}: must be an object")
    given = [k for k in ("cidr", "cidrGroupRef") if rule.get(k)] + \
        (["cidrGroupSelector"] if rule.get("cidrGroupSelector") is not None else [])
    if not given:
        raise Invalid(f"{where}: one of cidr, cidrGroupRef, or cidrGroupSelector is required")
    if len(given) > 1:
        raise Invalid(f"{where}: more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set")
    if given[0] == "cidrGroupSelector":
        _selector(f"{where}.cidrGroupSelector", rule["cidrGroupSelector"])
    if given[0] != "cidr":
        return
    try:
        net = _prefix(str(rule["cidr"]))
    except ValueError as exc:
        raise Invalid(f"{where}: unable to parse CIDRRule {rule['cidr']!r}: {exc}") from None
    for j, text in enumerate(rule.get("except") or []):
        try:
            hole = _prefix(str(text))
        except ValueError as exc:
            raise Invalid(f"{where}.except[{j}]: {exc}") from None
        if hole.version != net.version or hole.network_address not in net:
            raise Invalid(f"{where}: allow CIDR prefix {rule['cidr']} does not contain exclude CIDR prefix {text}")


def _l7_kinds(to_ports: list) -> set[str]:
    """countL7Rules: the L7 protocols with at least one rule."""
    kinds = set()
    for tp in to_ports:
        rules = (tp or {}).get("rules") or {}
        for key, name in (("http", "HTTP"), ("kafka", "Kafka"), ("dns", "DNS")):
            if rules.get(key):
                kinds.add(name)
    return kinds


def _rules_empty(rules: object) -> bool:
    """L7Rules.IsEmpty: no rules object, or one naming no protocol at all."""
    if not rules:
        return True
    return all(rules.get(k) is None for k in ("http", "kafka", "dns", "l7")) and not rules.get("l7proto")


def _port_rule(tp: Mapping, ingress: bool) -> None:
    """PortRule.Validate (allow rules)."""
    rules = tp.get("rules") or {}
    has_dns = bool(rules.get("dns"))
    if ingress and has_dns:
        raise Invalid("DNS rules are not allowed on ingress")
    if tp.get("serverNames") and not _rules_empty(rules) and tp.get("terminatingTLS") is None:
        raise Invalid("ServerNames are not allowed with L7 rules without TLS termination")
    if any(not name for name in tp.get("serverNames") or []):
        raise Invalid("empty server name is not allowed")
    ports = tp.get("ports") or []
    zero = _ports("", ports, has_dns)
    if not _rules_empty(rules) and not has_dns:
        for port in ports:
            protocol = str((port or {}).get("protocol") or "")
            if protocol.upper() != "TCP":
                raise Invalid(f"L7 rules can only apply to TCP (not {protocol or 'ANY'}) except for DNS rules")
    if tp.get("listener") is not None:
        name = (tp["listener"] or {}).get("name", "")
        if ingress:
            raise Invalid(f"Listener is not allowed on ingress ({name})")
        if not _rules_empty(rules):
            raise Invalid(f"Listener is not allowed with L7 rules ({name})")
    if not _rules_empty(rules):
        if zero:
            raise Invalid("L7 rules can not be used when a port is 0")
        _l7(rules, ports)


def _ports(where: str, ports: list, has_dns: bool) -> bool:
    """PortProtocol.Validate for each port; True when one of them is port 0 (every port)."""
    at = f"{where}: " if where else ""
    if len(ports) > MAX_PORTS:
        raise Invalid(f"{at}too many ports, the max is {MAX_PORTS}")
    zero = False
    for i, port in enumerate(ports):
        port = port or {}
        raw = port.get("port")
        text = "" if raw is None else str(raw)
        if not text:
            raise Invalid(f"{at}ports[{i}]: port must be specified")
        if not (isinstance(raw, int) or _SVC_NAME.match(text)):
            number = _parse_uint16(text)
            if number is None:
                raise Invalid(f"{at}ports[{i}]: unable to parse port {text!r}")
            zero |= number == 0
            end = port.get("endPort")
            if has_dns and isinstance(end, int) and end > number:
                raise Invalid(f"{at}ports[{i}]: DNS rules do not support port ranges")
        elif isinstance(raw, int):
            if not 0 <= raw <= 65535:
                raise Invalid(f"{at}ports[{i}]: unable to parse port {raw}")
            zero |= raw == 0
        protocol = str(port.get("protocol") or "ANY").upper()
        if protocol not in PROTOCOLS:
            raise Invalid(f"{at}ports[{i}]: invalid protocol {port.get('protocol')!r} (TCP, UDP, SCTP or ANY)")
    return zero


def _parse_uint16(text: str) -> int | None:
    """strconv.ParseUint(text, 0, 16): decimal, 0x hex, 0o / leading-0 octal, 0b binary."""
    try:
        value = int(text, 0) if not re.fullmatch(r"0[0-7]+", text) else int(text, 8)
    except ValueError:
        return None
    return value if 0 <= value <= 65535 else None


def _l7(rules: Mapping, ports: list) -> None:
    """L7Rules.Validate: one protocol per port rule; DNS needs the port given."""
    kinds = [k for k in ("http", "kafka", "dns") if rules.get(k) is not None]
    if rules.get("l7") is not None and not rules.get("l7proto"):
        raise Invalid("'l7' may only be specified when a 'l7proto' is also specified")
    if rules.get("l7proto"):
        kinds.append("l7proto")
    if "dns" in kinds and not ports:
        raise Invalid("port 53 must be specified for DNS rules")
    if len(kinds) > 1:
        raise Invalid("multiple L7 protocol rule types specified in single rule")
    for i, http in enumerate(rules.get("http") or []):
        for field in ("path", "method", "host"):
            value = (http or {}).get(field)
            if value:
                try:
                    re.compile(str(value))
                except re.error as exc:
                    raise Invalid(f"rules.http[{i}].{field}: not a valid regular expression: {exc}") from None


def _fqdn(where: str, fqdn: object) -> None:
    if not isinstance(fqdn, Mapping):
        raise Invalid(f"{where}: must be an object")
    name, pattern = fqdn.get("matchName"), fqdn.get("matchPattern")
    if name and pattern:
        raise Invalid(f"{where}: only one of matchName or matchPattern may be set")
    if not name and not pattern:
        raise Invalid(f"{where}: one of matchName or matchPattern is required")
    if name and not _FQDN_NAME.match(str(name)):
        raise Invalid(f"{where}: invalid matchName {name!r}")
    if pattern and not _FQDN_PATTERN.match(str(pattern)):
        raise Invalid(f"{where}: invalid matchPattern {pattern!r}")


def _icmp(where: str, icmp: object) -> None:
    fields = (icmp or {}).get("fields") or [] if isinstance(icmp, Mapping) else None
    if fields is None:
        raise Invalid(f"{where}: must be an object")
    if len(fields) > MAX_ICMP_FIELDS:
        raise Invalid(f"{where}: too many types, the max is {MAX_ICMP_FIELDS}")
    for f in fields:
        f = f or {}
        family = f.get("family") or ""
        if family not in ("IPv4", "IPv6", ""):
            raise Invalid(f"{where}: wrong family: {family}")
        raw = f.get("type")
        if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
            if not 0 <= int(raw) <= 255:
                raise Invalid(f"{where}: ICMP type {raw} is out of range (0-255)")
        elif raw is not None and str(raw) not in _ICMP_NAMES:
            raise Invalid(f"{where}: unknown ICMP type {raw!r}")
