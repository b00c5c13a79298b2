"""CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy -> compiled rules, as Cilium parses them.

Namespace scoping follows pkg/k8s/apis/cilium.io/utils/utils.go: a CNP's endpointSelector is pinned to its
namespace; its peer selectors are pinned too unless they name the namespace or use namespace labels; a CCNP's
peer selectors require *some* namespace (so `{}` is every pod, never world); selectors with `reserved:` keys are
left alone. Peer selectors are then limited to the local cluster (`addClusterFilterByDefault`, on by default in
v1.19 through `--policy-default-local-cluster`) unless they name the cluster label.

A policy that Cilium's validator refuses (`cilium_validate`) compiles to no rules at all and says why: the agent
does not import it, so it selects nothing. `toServices` resolves through Services (a selector-less Service
through its EndpointSlices, as CIDRs: pkg/policy/k8s/service.go), `cidrGroupRef`/`cidrGroupSelector` through
CiliumCIDRGroup objects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from hubbletui.flows.labels import LabelSet, NAMESPACE_LABEL, Requirement, Selector, match_labels_selector
from hubbletui.policy.cilium_validate import validate_policy
from hubbletui.policy.labels import DEFAULT_CLUSTER, NAMESPACE_LABELS_PREFIX
from hubbletui.policy.ports import IcmpClause, PortClause
from hubbletui.policy.rules import (
    ALLOW,
    DENY,
    EGRESS,
    INGRESS,
    CompiledPolicy,
    Peer,
    PolicyKey,
    PortBlock,
    Rule,
)
from hubbletui.policy.selectors import SelectorError, parse_label_selector

CLUSTER_LABEL_KEY = "k8s:io.cilium.k8s.policy.cluster"
_NS_PIN_KEYS = ("k8s:" + NAMESPACE_LABEL, "any:" + NAMESPACE_LABEL)
_CLUSTER_KEYS = (CLUSTER_LABEL_KEY, "any:" + CLUSTER_LABEL_KEY[4:])
CIDR_GROUP_LABEL = "io.cilium.policy.cidrgroupname"  # the label a CIDR group's name is selectable by
_NS_LABEL_PREFIXES = ("k8s:" + NAMESPACE_LABELS_PREFIX.rstrip("."), "any:" + NAMESPACE_LABELS_PREFIX.rstrip("."))

# entity -> reserved labels whose identities it stands for (pkg/policy/api/entity.go)
_CLUSTER_RESERVED = ("host", "remote-node", "init", "ingress", "health", "unmanaged", "kube-apiserver")
ENTITIES: dict[str, tuple[str, ...]] = {
    "world": ("world", "world-ipv4", "world-ipv6"),
    "host": ("host",), "remote-node": ("remote-node",), "kube-apiserver": ("kube-apiserver",),
    "ingress": ("ingress",), "init": ("init",), "health": ("health",), "unmanaged": ("unmanaged",),
    "none": (), "cluster": _CLUSTER_RESERVED, "all": (),
}
REJECTED = "rejected by Cilium"

# ICMP type names Cilium accepts in `icmps[].fields[].type` (pkg/policy/api/icmp.go), per family
_ICMP_TYPES = {
    "IPv4": {"EchoReply": 0, "DestinationUnreachable": 3, "Redirect": 5, "Echo": 8, "EchoRequest": 8,
             "RouterAdvertisement": 9, "RouterSelection": 10, "TimeExceeded": 11, "ParameterProblem": 12,
             "Timestamp": 13, "TimestampReply": 14, "Photuris": 40, "ExtendedEchoRequest": 42,
             "ExtendedEchoReply": 43},
    "IPv6": {"DestinationUnreachable": 1, "PacketTooBig": 2, "TimeExceeded": 3, "ParameterProblem": 4,
             "EchoRequest": 128, "EchoReply": 129, "MulticastListenerQuery": 130, "MulticastListenerReport": 131,
             "MulticastListenerDone": 132, "RouterSolicitation": 133, "RouterAdvertisement": 134,
             "NeighborSolicitation": 135, "NeighborAdvertisement": 136, "RedirectMessage": 137},
}

_SECTIONS = (("ingress", INGRESS, ALLOW, "from"), ("ingressDeny", INGRESS, DENY, "from"),
             ("egress", EGRESS, ALLOW, "to"), ("egressDeny", EGRESS, DENY, "to"))


def entity_selectors(entity: str) -> tuple[Selector, ...] | None:
    """Selectors for an entity name, None when Cilium does not know it."""
    if entity == "all":
        return (Selector(),)
    names = ENTITIES.get(entity)
    if names is None:
        return None
    selectors = [match_labels_selector({n: ""}, source="reserved") for n in names]
    if entity == "cluster":
        # every pod of the (local) cluster carries the cluster label
        selectors.append(Selector((Requirement("k8s", CLUSTER_LABEL_KEY[4:], "Exists"),)))
    return tuple(selectors)


def compile_cilium_policy(obj: dict, services: list[dict], *, cluster: str = DEFAULT_CLUSTER,
                          endpoint_slices: list[dict] = (), cidr_groups: list[dict] = ()) -> CompiledPolicy:
    kind = obj.get("kind", "")
    meta = obj.get("metadata") or {}
    clusterwide = kind == "CiliumClusterwideNetworkPolicy"
    namespace = "" if clusterwide else (meta.get("namespace") or "default")
    key = PolicyKey(kind, namespace, meta.get("name") or "")
    compiler = _Compiler(key, namespace, services, cluster, endpoint_slices, cidr_groups)
    specs: list[tuple[str, object]] = []
    if obj.get("spec") is not None:
        specs.append(("spec", obj["spec"]))
    for i, spec in enumerate(obj.get("specs") or [] if isinstance(obj.get("specs"), list) else []):
        specs.append((f"specs[{i}]", spec))
    problem = validate_policy(obj)
    if problem:
        return _rejected(key, namespace, specs, problem, obj)
    for path, spec in specs:
        try:
            compiler.spec(path, spec)
        except (SelectorError, ValueError, TypeError, AttributeError) as exc:
            compiler.notes.append(f"{path}: not understood, ignored ({exc})")
    return CompiledPolicy(key, tuple(compiler.rules), tuple(compiler.notes), compiler.uses_services, obj)


def _rejected(key: PolicyKey, namespace: str, specs: list[tuple[str, object]], problem: str,
              obj: dict) -> CompiledPolicy:
    """No rules: the agent refuses the whole object. The endpoints it was written for are kept (as far as its
    selectors parse) so that a trace of one of them can say that a policy meant for it is not in force."""
    meant_for: list[Selector] = []
    for _, spec in specs:
        if not isinstance(spec, Mapping) or spec.get("endpointSelector") is None:
            continue
        try:
            subject = parse_label_selector(spec.get("endpointSelector") or {})
        except SelectorError:
            continue
        if namespace:
            subject = subject.with_requirement(Requirement("k8s", NAMESPACE_LABEL, "In", (namespace,)),
                                               replace_key=True)
        meant_for.append(subject)
    return CompiledPolicy(key, (), (f"{REJECTED}: {problem}; the policy is not enforced",), False, obj,
                          rejected=problem, meant_for=tuple(meant_for))


class _Compiler:
    def __init__(self, key: PolicyKey, namespace: str, services: list[dict], cluster: str = DEFAULT_CLUSTER,
                 endpoint_slices: list[dict] = (), cidr_groups: list[dict] = ()):
        self.key, self.namespace, self.services = key, namespace, services
        self.cluster = cluster
        self.endpoint_slices, self.cidr_groups = endpoint_slices, cidr_groups
        self.rules: list[Rule] = []
        self.notes: list[str] = []
        self.uses_services = False  # depends on Services, EndpointSlices or CIDR groups: recompile on change

    def spec(self, path: str, spec: object) -> None:
        if not isinstance(spec, Mapping):
            raise ValueError("a rule must be an object")
        host = spec.get("nodeSelector") is not None
        subject = parse_label_selector(spec.get("nodeSelector" if host else "endpointSelector") or {})
        if self.namespace and not host:
            user_ns = subject.match_value("k8s:" + NAMESPACE_LABEL)
            if user_ns is not None and user_ns != self.namespace:
                self.notes.append(f"{path}.endpointSelector names namespace {user_ns}; Cilium pins a "
                                  f"CiliumNetworkPolicy to its own namespace {self.namespace}")
            subject = subject.with_requirement(Requirement("k8s", NAMESPACE_LABEL, "In", (self.namespace,)),
                                               replace_key=True)
        matches_init = subject.has_key("reserved:init")
        default_deny = spec.get("enableDefaultDeny") or {}
        for field_name, direction, action, prefix in _SECTIONS:
            entries = spec.get(field_name)
            if not entries:
                continue
            if not isinstance(entries, list):
                raise ValueError(f"{field_name} must be a list")
            isolates = default_deny.get(direction)
            isolates = True if isolates is None else bool(isolates)
            for i, entry in enumerate(entries):
                rule_path = f"{path}.{field_name}[{i}]"
                rule = self.rule(rule_path, entry or {}, direction, action, prefix, subject, isolates, matches_init)
                # a host policy selects host endpoints only, an endpoint policy never does (repository.go
                # matchesSubject: the rule's selector type must be the identity's)
                rule.host = host
                self.rules.append(rule)

    def rule(self, path: str, entry: Mapping, direction: str, action: str, prefix: str, subject: Selector,
             isolates: bool, matches_init: bool) -> Rule:
        notes: list[str] = []
        peers: list[Peer] = []
        explicit_nothing = False
        endpoints = entry.get(f"{prefix}Endpoints")
        # present and empty selects nothing; only an absent field leaves the L3 part open (ingress.go field docs)
        explicit_nothing |= endpoints is not None and len(endpoints) == 0
        for i, sel in enumerate(endpoints or []):
            peers.append(Peer("endpoints", f"{prefix}Endpoints[{i}]",
                              (self.peer_selector(sel, matches_init),)))
        entities = entry.get(f"{prefix}Entities")
        explicit_nothing |= entities is not None and len(entities) == 0
        for i, entity in enumerate(entities or []):
            selectors = entity_selectors(str(entity))
            if selectors is None:
                notes.append(f"{prefix}Entities[{i}]: unknown entity {entity!r}")
                selectors = ()
            peers.append(Peer("entities", f"{prefix}Entities[{i}]", selectors, entity=str(entity)))
        cidrs = entry.get(f"{prefix}CIDR")
        explicit_nothing |= cidrs is not None and len(cidrs) == 0
        for i, cidr in enumerate(cidrs or []):
            peers.append(self.cidr_peer(f"{prefix}CIDR[{i}]", cidr, [], notes))
        cidr_sets = entry.get(f"{prefix}CIDRSet")
        explicit_nothing |= cidr_sets is not None and len(cidr_sets) == 0
        for i, cidr_set in enumerate(cidr_sets or []):
            field_path = f"{prefix}CIDRSet[{i}]"
            if cidr_set.get("cidr"):
                peers.append(self.cidr_peer(field_path, cidr_set["cidr"], cidr_set.get("except") or [], notes))
            else:
                peers.extend(self.cidr_group_peers(field_path, cidr_set, notes))
        if prefix == "to":
            services = entry.get("toServices")
            explicit_nothing |= services is not None and len(services) == 0
            for i, svc in enumerate(services or []):
                self.uses_services = True
                peers.extend(self.service_peers(f"toServices[{i}]", svc, notes))
            for i, fqdn in enumerate(entry.get("toFQDNs") or []):
                mode = "matchName" if fqdn.get("matchName") else "matchPattern"
                peers.append(Peer("fqdn", f"toFQDNs[{i}]", fqdn=(mode, str(fqdn.get(mode) or ""))))
        for extra in (f"{prefix}Nodes", f"{prefix}Groups", f"{prefix}Requires"):
            if entry.get(extra):
                note = f"{extra} is not evaluated (needs node labels, cloud groups or deprecated requirements)"
                notes.append(note)
                peers.append(Peer("unsupported", extra, note=note))
        ports, port_notes = self.port_blocks(entry.get("toPorts") or [], action)
        notes.extend(port_notes)
        icmps = self.icmp_clauses(entry.get("icmps") or [], notes)
        if entry.get("authentication"):
            notes.append(f"mutual authentication {entry['authentication'].get('mode', '')!s} required: "
                         "unauthenticated traffic is dropped with AUTH_REQUIRED")
        all_peers = not peers and not explicit_nothing and bool(ports or icmps)
        return Rule(self.key, path, direction, action, subject, tuple(peers), all_peers, tuple(ports),
                    tuple(icmps), isolates, tuple(notes))

    def peer_selector(self, spec: object, matches_init: bool) -> Selector:
        sel = parse_label_selector(spec or {})
        if sel.has_source("reserved"):
            return sel  # getEndpointSelector returns these untouched: no namespace, no cluster filter
        if not (sel.has_key(_NS_PIN_KEYS[0]) or sel.has_key(_NS_PIN_KEYS[1])):
            if not self.namespace:
                if not matches_init:
                    sel = sel.with_requirement(Requirement("k8s", NAMESPACE_LABEL, "Exists"))
            elif not any(sel.has_key_prefix(p) for p in _NS_LABEL_PREFIXES):
                sel = sel.with_requirement(Requirement("k8s", NAMESPACE_LABEL, "In", (self.namespace,)))
        return self.local_cluster(sel)

    def local_cluster(self, sel: Selector) -> Selector:
        """addClusterFilterByDefault: endpoints of the local cluster only, unless the selector names a cluster."""
        if not self.cluster or any(sel.has_key(k) for k in _CLUSTER_KEYS):
            return sel
        return sel.with_requirement(Requirement("k8s", CLUSTER_LABEL_KEY[4:], "In", (self.cluster,)))

    def cidr_group_peers(self, path: str, cidr_set: Mapping, notes: list[str]) -> list[Peer]:
        """A CiliumCIDRGroup by name (cidrGroupRef) or by its labels (cidrGroupSelector): its externalCIDRs, each
        with the rule's `except` holes (pkg/policy/k8s/cilium_cidr_group.go)."""
        self.uses_services = True
        if cidr_set.get("cidrGroupRef"):
            wanted = str(cidr_set["cidrGroupRef"])
            groups = [g for g in self.cidr_groups if _meta(g, "name") == wanted]
            what = f"CiliumCIDRGroup {wanted}"
        else:
            sel = parse_label_selector(cidr_set.get("cidrGroupSelector") or {}, default_source="k8s")
            groups = [g for g in self.cidr_groups
                      if sel.matches(LabelSet({**{f"k8s:{k}": str(v) for k, v in
                                                  ((g.get("metadata") or {}).get("labels") or {}).items()},
                                               f"k8s:{CIDR_GROUP_LABEL}": _meta(g, "name")}))]
            what = f"CiliumCIDRGroups matching {sel.to_text()}"
        if not groups:
            note = f"{path}: {what} not found in the cluster state: it admits no address"
            notes.append(note)
            return [Peer("cidr-group", path, note=note)]
        peers = []
        for group in groups:
            for j, cidr in enumerate((group.get("spec") or {}).get("externalCIDRs") or []):
                peer = self.cidr_peer(f"{path} ({_meta(group, 'name')}[{j}])", cidr, cidr_set.get("except") or [],
                                      notes)
                peers.append(peer)
        return peers

    def cidr_peer(self, path: str, cidr: object, excepts: list, notes: list[str]) -> Peer:
        try:
            net = ipaddress.ip_network(str(cidr), strict=False)
            holes = tuple(ipaddress.ip_network(str(e), strict=False) for e in excepts)
        except ValueError as exc:
            note = f"{path}: {exc}"
            notes.append(note)
            return Peer("unsupported", path, note=note)
        return Peer("cidr", path, cidr=net, excepts=holes)

    def service_peers(self, path: str, svc: Mapping, notes: list[str]) -> list[Peer]:
        """pkg/policy/k8s/service.go: a reference or selector without a namespace matches Services of every
        namespace; a Service with a selector becomes a generated toEndpoints (its selector in its namespace), one
        without (IsExternal) becomes generated toCIDRSet entries: the addresses of its EndpointSlices."""
        if svc.get("k8sService"):
            ref = svc["k8sService"] or {}
            ns, name = ref.get("namespace") or "", ref.get("serviceName") or ""
            matched = [s for s in self.services if (not ns or _meta(s, "namespace") == ns) and _meta(s, "name") == name]
            what = f"Service {ns or '<any namespace>'}/{name}"
        else:
            ref = svc.get("k8sServiceSelector") or {}
            ns = ref.get("namespace") or ""
            svc_sel = parse_label_selector((ref.get("selector") or {}), default_source="k8s")
            matched = [s for s in self.services if (not ns or _meta(s, "namespace") == ns)
                       and svc_sel.matches(LabelSet({f"k8s:{k}": str(v) for k, v in
                                                     ((s.get("metadata") or {}).get("labels") or {}).items()}))]
            what = f"Services matching {svc_sel.to_text()}" + (f" in {ns}" if ns else " in any namespace")
        if not matched:
            notes.append(f"{path}: {what} not found in the cluster state")
        selectors: list[Selector] = []
        cidrs: list[Peer] = []
        for s in matched:
            selector = (s.get("spec") or {}).get("selector")
            if selector:
                sel = parse_label_selector({"matchLabels": {str(k): str(v) for k, v in selector.items()}})
                selectors.append(self.local_cluster(sel.with_requirement(
                    Requirement("k8s", NAMESPACE_LABEL, "In", (_meta(s, "namespace"),)))))
                continue
            addresses = _slice_addresses(self.endpoint_slices, _meta(s, "namespace"), _meta(s, "name"))
            if not addresses:
                notes.append(f"{path}: Service {_meta(s, 'namespace')}/{_meta(s, 'name')} has no selector and no "
                             "EndpointSlice addresses in the cluster state: it admits nothing")
            for address in addresses:
                cidrs.append(self.cidr_peer(f"{path} ({_meta(s, 'namespace')}/{_meta(s, 'name')} endpoint)",
                                            address, [], notes))
        out = [Peer("services", path, tuple(selectors))] if selectors or not cidrs else []
        return out + cidrs

    def port_blocks(self, to_ports: list, action: str) -> tuple[list[PortBlock], list[str]]:
        blocks, notes = [], []
        for i, tp in enumerate(to_ports):
            tp = tp or {}
            clauses = []
            for port in tp.get("ports") or [{}]:
                clauses.append(_port_clause(port or {}))
            l7 = _l7_descriptions(tp)
            blocks.append(PortBlock(tuple(clauses), tuple(l7)))
        return blocks, notes

    def icmp_clauses(self, icmps: list, notes: list[str]) -> list[IcmpClause]:
        out = []
        for entry in icmps:
            for f in (entry or {}).get("fields") or []:
                family = f.get("family") or "IPv4"
                raw = f.get("type")
                if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
                    icmp_type = int(raw)
                elif raw is None:
                    icmp_type = None
                else:
                    icmp_type = _ICMP_TYPES.get(family, {}).get(str(raw))
                    if icmp_type is None:
                        notes.append(f"icmps: unknown ICMP type {raw!r} for {family}")
                        continue
                out.append(IcmpClause("ICMPv6" if family == "IPv6" else "ICMPv4", icmp_type))
        return out


def _meta(obj: dict, field: str) -> str:
    return (obj.get("metadata") or {}).get(field) or ("default" if field == "namespace" else "")


def _slice_addresses(slices: list[dict], namespace: str, service: str) -> list[str]:
    """Ready endpoint addresses of the EndpointSlices labelled for a Service (kubernetes.io/service-name)."""
    out: list[str] = []
    for sl in slices:
        meta = sl.get("metadata") or {}
        if (meta.get("namespace") or "default") != namespace or \
                (meta.get("labels") or {}).get("kubernetes.io/service-name") != service:
            continue
        for endpoint in sl.get("endpoints") or []:
            ready = ((endpoint or {}).get("conditions") or {}).get("ready")
            if ready is False:
                continue  # a not-ready endpoint is not in the Service's backend set
            for address in (endpoint or {}).get("addresses") or []:
                if address not in out:
                    out.append(str(address))
    return out


def _port_clause(port: Mapping) -> PortClause:
    raw = port.get("port")
    protocol = str(port.get("protocol") or "ANY").upper()
    end_port = int(port.get("endPort") or 0)
    if raw is None or raw == "":
        return PortClause(0, 0, "", protocol)
    if isinstance(raw, int) or str(raw).isdigit():
        number = int(raw)
        return PortClause(number, end_port if number else 0, "", protocol)
    return PortClause(0, 0, str(raw), protocol)  # a named port; endPort does not apply


def _l7_descriptions(to_port: Mapping) -> list[str]:
    out: list[str] = []
    rules = to_port.get("rules") or {}
    for http in rules.get("http") or []:
        http = http or {}
        parts = [http.get("method") or "any method", http.get("path") or "any path"]
        if http.get("host"):
            parts.append(f"host {http['host']}")
        headers = list(http.get("headers") or []) + [h.get("name", "") for h in http.get("headerMatches") or []]
        if headers:
            parts.append("headers " + ", ".join(map(str, headers)))
        out.append("HTTP " + " ".join(parts))
    for dns in rules.get("dns") or []:
        dns = dns or {}
        out.append("DNS " + str(dns.get("matchName") or dns.get("matchPattern") or "*"))
    for kafka in rules.get("kafka") or []:
        kafka = kafka or {}
        out.append("Kafka " + " ".join(f"{k}={v}" for k, v in kafka.items()))
    if rules.get("l7proto"):
        out.append(f"L7 protocol {rules['l7proto']}")
    if to_port.get("serverNames"):
        out.append("TLS SNI " + ", ".join(map(str, to_port["serverNames"])))
    if to_port.get("listener"):
        out.append("Envoy listener " + str((to_port["listener"] or {}).get("name", "")))
    if (to_port.get("terminatingTLS") or to_port.get("originatingTLS")) and not out:
        out.append("TLS interception")
    return out
