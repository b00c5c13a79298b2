"""The compiled form every policy kind is translated into: rules with a subject selector, peers and ports.

A `Rule` is one entry of `ingress`, `egress`, `ingressDeny` or `egressDeny` (or a NetworkPolicy rule as Cilium
translates it). Inside one rule the peers are ORed, and peers AND ports (AND L7) must all match. Rules are
immutable once compiled, so their per-identity answers are cached on them and shared by every engine view.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hubbletui.flows.labels import LabelIndex, LabelSet, Selector
from hubbletui.policy.ports import (
    ALL_PORTS,
    IcmpClause,
    NamedPorts,
    PortClause,
    PortSet,
)
from hubbletui.policy.records import Lack
from hubbletui.policy.selectors import requirement_lack, selector_text
from hubbletui.policy.subjects import Subject

INGRESS, EGRESS = "ingress", "egress"
ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class PolicyKey:
    kind: str
    namespace: str  # "" for CiliumClusterwideNetworkPolicy
    name: str

    @property
    def ref(self) -> str:
        """The form Hubble's PolicyRef.ref uses: Kind/ns/name, or Kind/name when cluster-scoped."""
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Peer:
    """One way a rule names the other side. ``kind``: endpoints | entities | cidr | services | fqdn | unsupported."""

    kind: str
    field: str  # where it came from, e.g. "fromEndpoints[1]", for explanations
    selectors: tuple[Selector, ...] = ()
    entity: str = ""
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    excepts: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    fqdn: tuple[str, str] = ("", "")  # ("matchName"|"matchPattern", value)
    note: str = ""

    def matches(self, peer: Subject) -> bool:
        if self.kind in ("endpoints", "entities", "services"):
            labels = peer.labels
            return any(s.matches(labels) for s in self.selectors)
        if self.kind == "cidr":
            return self._cidr_matches(peer)
        if self.kind == "fqdn":
            return any(_fqdn_matches(self.fqdn, name) for name in peer.dns_names)
        return False

    def _cidr_matches(self, peer: Subject) -> bool:
        if not peer.cidr_matchable or self.cidr is None:
            return False
        if not peer.ip:
            # the world as a whole: only a rule covering every address of it admits "world"
            return self.cidr.prefixlen == 0 and not self.excepts
        addr = ipaddress.ip_address(peer.ip)
        if addr.version != self.cidr.version or addr not in self.cidr:
            return False
        return not any(addr.version == e.version and addr in e for e in self.excepts)

    def describe(self) -> str:
        if self.kind in ("endpoints", "services"):
            return " or ".join(selector_text(s) for s in self.selectors) or "nothing"
        if self.kind == "entities":
            return f"entity {self.entity}"
        if self.kind == "cidr":
            text = str(self.cidr)
            return text + (f" except {', '.join(map(str, self.excepts))}" if self.excepts else "")
        if self.kind == "fqdn":
            return f"{self.fqdn[0]} {self.fqdn[1]}"
        return self.note

    def distance(self, peer: Subject) -> int:
        """How far ``peer`` is from being admitted: a missing label counts 1; what no label can fix (a pod
        against a CIDR, an FQDN, a peer we do not evaluate) counts 5. 0 when admitted."""
        if self.matches(peer):
            return 0
        if self.kind in ("endpoints", "services"):
            return min((len(s.missing(peer.labels)) for s in self.selectors), default=FAR)
        if self.kind == "entities":
            return 1 if self.selectors else FAR
        if self.kind == "cidr":
            return 1 if peer.cidr_matchable else FAR
        return FAR

    def lacks(self, peer: Subject) -> list[Lack]:
        """What ``peer`` misses to be admitted by this peer clause (empty when it is admitted)."""
        if self.matches(peer):
            return []
        if self.kind in ("endpoints", "services", "entities"):
            options = [s.missing(peer.labels) for s in self.selectors]
            if not options:
                return [Lack("peer", "nothing", f"{self.field} admits nothing")]
            best = min(options, key=len)
            if self.kind == "entities":
                return [Lack("peer", "entity", f"be the {self.entity} entity", key=self.entity)]
            return [requirement_lack(req, "peer") for req in best]
        if self.kind == "cidr":
            if not peer.cidr_matchable:
                return [Lack("peer", "cidr", f"be an address outside the cluster in {self.describe()} "
                                              "(CIDR rules never match pods or nodes)")]
            if not peer.ip:
                return [Lack("peer", "cidr", f"an IP in {self.describe()} (name an IP to check)")]
            return [Lack("peer", "cidr", f"an IP in {self.describe()}")]
        if self.kind == "fqdn":
            return [Lack("peer", "fqdn", f"a DNS name matching {self.fqdn[1]} (learnt from DNS)")]
        return [Lack("peer", "unsupported", self.note or f"{self.field} is not evaluated")]


FAR = 5  # the distance of a mismatch no label change can mend


def _fqdn_matches(fqdn: tuple[str, str], name: str) -> bool:
    mode, value = fqdn
    name = name.lower().rstrip(".")
    value = value.lower().rstrip(".")
    if mode == "matchName":
        return name == value
    if value == "*":
        return True
    # "*" stands for one DNS label's characters, a leading "**." for any number of labels
    pattern = re.escape(value).replace(r"\*\*\.", r"(?:[-a-z0-9_]+\.)+").replace(r"\*", r"[-a-z0-9_]*")
    return re.fullmatch(pattern, name) is not None


@dataclass(frozen=True)
class PortBlock:
    """One `toPorts` entry: its port clauses and the L7 rules the proxy enforces on them."""

    clauses: tuple[PortClause, ...]
    l7: tuple[str, ...] = ()  # human descriptions of L7 rules; non-empty means the proxy decides per request

    def matches(self, port: int, protocol: str, named_ports: NamedPorts) -> bool:
        return any(c.matches(port, protocol, named_ports) for c in self.clauses)


@dataclass(eq=False)
class Rule:
    policy: PolicyKey
    path: str  # "spec.ingress[0]", "specs[1].egressDeny[0]", "spec.ingress[2]" (NetworkPolicy)
    direction: str  # ingress | egress
    action: str  # allow | deny
    subject: Selector
    peers: tuple[Peer, ...] = ()
    all_peers: bool = False  # no L3 part: every peer (an L4-only rule, or NetworkPolicy's empty from/to)
    ports: tuple[PortBlock, ...] = ()  # empty with no icmps: every port and ICMP
    icmps: tuple[IcmpClause, ...] = ()
    default_deny: bool = True  # whether selecting an endpoint puts its direction into default deny
    notes: tuple[str, ...] = ()
    order: int = 0  # its place in its policy (set when the policy is indexed)
    host: bool = False  # a host policy's rule (nodeSelector): it selects host endpoints, never pods
    _peer_cache: dict = field(default_factory=dict, repr=False)
    _subject_cache: dict = field(default_factory=dict, repr=False)
    _subject_distance: dict = field(default_factory=dict, repr=False)
    _peer_distance: dict = field(default_factory=dict, repr=False)
    _port_set: PortSet | None = field(default=None, repr=False)
    _signature: str | None = field(default=None, repr=False)
    _peer_namespaces: frozenset[str] | None | tuple = field(default=(), repr=False)  # () = not computed yet

    @property
    def ref(self) -> str:
        return f"{self.policy.ref} {self.path}"

    @property
    def signature(self) -> str:
        """What the rule says, without where it comes from: rules with equal signatures admit the same.
        A string (made once) because comparing nested dataclasses on every lookup costs more than the rule."""
        found = self._signature
        if found is None:
            found = self._signature = repr((self.direction, self.action, self.all_peers, self.peers, self.ports,
                                            self.icmps))
        return found

    @property
    def is_l4_restricted(self) -> bool:
        return bool(self.ports or self.icmps)

    def selects(self, subject: Subject) -> bool:
        return self.selects_labels(subject.labels)

    def selects_labels(self, labels: LabelSet) -> bool:
        hit = self._subject_cache.get(labels.key)
        if hit is None:
            is_host = labels.get("reserved", "host") is not None
            hit = self._subject_cache[labels.key] = is_host == self.host and self.subject.matches(labels)
        return hit

    def admits_peer(self, peer: Subject) -> bool:
        if self.all_peers:
            return True
        key = peer.peer_key
        hit = self._peer_cache.get(key)
        if hit is None:
            hit = self._peer_cache[key] = any(p.matches(peer) for p in self.peers)
        return hit

    def selected_in(self, index: LabelIndex) -> set:
        """Members of ``index`` this rule's subject selector selects (pods and the like only: the caller's
        index holds endpoints)."""
        return index.select(self.subject)

    def admitted_in(self, index: LabelIndex, others: Iterable[Subject]) -> set:
        """Members of ``index`` (keyed by Subject) plus those of ``others`` this rule admits as a peer."""
        if self.all_peers:
            return set(index.all) | set(others)
        found: set = set()
        for peer in self.peers:
            if peer.kind in ("endpoints", "entities", "services"):
                for selector in peer.selectors:
                    found |= index.select(selector)
        found |= {s for s in others if self.admits_peer(s)}
        return found

    def peer_namespaces(self) -> frozenset[str] | None:
        """The namespaces any pod this rule admits must be in, or None when it may be in any namespace.
        (Subjects that are not pods, such as world or an IP, are not bounded by this: check them always.)"""
        if self._peer_namespaces == ():
            self._peer_namespaces = self._find_peer_namespaces()
        return self._peer_namespaces

    def _find_peer_namespaces(self) -> frozenset[str] | None:
        if self.all_peers:
            return None
        found: set[str] = set()
        for peer in self.peers:
            if peer.kind in ("cidr", "fqdn", "unsupported"):
                continue  # never a pod
            if peer.kind == "entities":
                return None  # cluster, all: pods of any namespace
            for selector in peer.selectors:
                ns = selector.pinned_namespace()
                if ns is None:
                    return None
                found.add(ns)
        return frozenset(found)

    def port_match(self, port: int, protocol: str, named_ports: NamedPorts) -> tuple[bool, tuple[str, ...]]:
        """(matches, L7 descriptions that then apply); L7 is empty when some matching block has no L7 rules."""
        if not self.ports and not self.icmps:
            return True, ()
        if protocol.startswith("ICMP"):
            return any(c.matches(port, protocol) for c in self.icmps), ()
        l7: list[str] = []
        for block in self.ports:
            if block.matches(port, protocol, named_ports):
                if not block.l7:
                    return True, ()
                l7.extend(block.l7)
        return bool(l7), tuple(l7)

    def port_set(self, named_ports: NamedPorts) -> PortSet:
        if not self.ports and not self.icmps:
            return ALL_PORTS
        named = any(c.name for b in self.ports for c in b.clauses)
        if not named and self._port_set is not None:
            return self._port_set  # no named port: the same for every destination
        ranges: dict[str, list[tuple[int, int]]] = {}
        for block in self.ports:
            for clause in block.clauses:
                for proto, spans in clause.ranges(named_ports).items():
                    ranges.setdefault(proto, []).extend(spans)
        for icmp in self.icmps:
            span = (0, 255) if icmp.type is None else (icmp.type, icmp.type)
            ranges.setdefault(icmp.family, []).append(span)
        result = PortSet(ranges)
        if not named:
            self._port_set = result
        return result

    def ports_text(self) -> str:
        if not self.ports and not self.icmps:
            return "all ports"
        parts = [c.text() for b in self.ports for c in b.clauses] + [i.text() for i in self.icmps]
        return ", ".join(parts) or "no port"

    def peers_text(self) -> str:
        if self.all_peers:
            return "every peer"
        if not self.peers:
            return "no peer"
        return " | ".join(f"{p.field}: {p.describe()}" for p in self.peers)

    def subject_distance(self, subject: Subject) -> int:
        """0 when the rule selects ``subject``; else its missing requirements, a namespace counting FAR."""
        key = subject.labels.key
        hit = self._subject_distance.get(key)
        if hit is None:
            hit = self._subject_distance[key] = sum(
                FAR if requirement_lack(req, "subject").what == "namespace" else 1
                for req in self.subject.missing(subject.labels))
        return hit

    def peer_distance(self, peer: Subject) -> int:
        if self.admits_peer(peer):
            return 0
        if not self.peers:
            return FAR
        key = peer.peer_key
        hit = self._peer_distance.get(key)
        if hit is None:
            hit = self._peer_distance[key] = min(p.distance(peer) for p in self.peers)
        return hit

    def peer_lacks(self, peer: Subject) -> list[Lack]:
        if self.admits_peer(peer):
            return []
        if not self.peers:
            return [Lack("peer", "nothing", f"{self.path} admits no peer (an empty rule)")]
        return min(self.peers, key=lambda p: p.distance(peer)).lacks(peer)

    def port_lacks(self, port: int, protocol: str, named_ports: NamedPorts) -> list[Lack]:
        if self.port_match(port, protocol, named_ports)[0]:
            return []
        shown = f"{port}/{protocol}" if not protocol.startswith("ICMP") else f"{protocol} type {port}"
        named = [c.name for b in self.ports for c in b.clauses if c.name]
        hint = ""
        if named:
            resolved = {n: [f"{p}/{pr}" for p, pr in named_ports.get(n, ())] for n in named}
            hint = "; named ports on the destination: " + ", ".join(
                f"{n}={'/'.join(v) if v else 'none'}" for n, v in resolved.items())
        return [Lack("port", "port", f"port {shown} (the rule allows {self.ports_text()}{hint})",
                      port=port, protocol=protocol, allowed=self.ports_text())]

    def to_dict(self) -> dict:
        return {"policy": self.policy.to_dict(), "ref": self.policy.ref, "path": self.path,
                "direction": self.direction, "action": self.action}


@dataclass
class CompiledPolicy:
    key: PolicyKey
    rules: tuple[Rule, ...] = ()
    notes: tuple[str, ...] = ()  # things we recognised but do not evaluate, malformed parts
    uses_services: bool = False  # toServices, CIDR groups: recompile when Services/slices/groups change
    obj: dict | None = field(default=None, repr=False)
    rejected: str = ""  # why Cilium's agent refuses the object (then it has no rules: it is not enforced)
    meant_for: tuple[Selector, ...] = ()  # a rejected policy's endpoint selectors: whom it would have applied to
