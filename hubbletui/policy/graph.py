"""The policy graph: subjects, namespaces, policies and rules as networkx nodes, with the edges that say who
selects whom and who admits whom.

Nodes (``kind`` attribute): ``subject`` (one per workload or bare pod and identity, plus world, host,
remote-node, kube-apiserver), ``namespace``, ``policy``, ``rule``. Edges (``rel`` attribute):

- namespace -> subject ``contains``;  policy -> rule ``has``;
- rule -> subject ``selects`` (``direction`` ingress|egress, ``action`` allow|deny, ``isolates``): the rule
  applies to that subject's traffic in that direction;
- rule -> subject ``allows`` / ``denies`` (``direction``, ``ports`` text): the rule names that subject as a peer.

So "what isolates X" is the ``selects`` in-edges with ``isolates``, "what may reach X" follows ``selects`` back to
the rules and their ``allows`` edges out to peers (then checks the peer's own egress), and "which rule comes
nearest to admitting A -> B" ranks the rules adjacent to A or B. With ``follow=True`` the graph subscribes to its
engine and rebuilds only the policies and namespaces a change touched.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from hubbletui.flows.labels import LabelIndex
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.ports import PortSet
from hubbletui.policy.rules import ALLOW, EGRESS, INGRESS, PolicyKey, Rule
from hubbletui.policy.subjects import Subject


def subject_node(subject: Subject) -> tuple[str, str]:
    return ("subject", subject.id)


def rule_node(rule: Rule) -> tuple[str, str]:
    return ("rule", rule.ref)


def policy_node(key: PolicyKey) -> tuple[str, str]:
    return ("policy", key.ref)


def _by_id(subject: Subject) -> str:
    return subject.id


class PolicyGraph:
    def __init__(self, engine: PolicyEngine, follow: bool = False):
        self.engine = engine
        self.g = nx.MultiDiGraph()
        self._by_namespace: dict[str, set[tuple[str, str]]] = {}
        self._outside: set[tuple[str, str]] = set()  # subjects in no namespace: world, host, ...
        self._rules: dict[tuple[str, str], Rule] = {}
        self._label_index: LabelIndex | None = None
        for subject in engine.endpoints():
            self._add_subject(subject)
        for compiled in engine.policies.values():
            self._add_policy(compiled.key)
        if follow:
            engine.subscribe(self._on_change)

    # building ----------------------------------------------------------------------------------------
    def _add_subject(self, subject: Subject) -> None:
        self._label_index = None
        node = subject_node(subject)
        self.g.add_node(node, kind="subject", subject=subject, ref=subject.workload_ref,
                        labels=subject.labels.hubble_form())
        if subject.namespace:
            ns_node = ("namespace", subject.namespace)
            if ns_node not in self.g:
                self.g.add_node(ns_node, kind="namespace",
                                labels=self.engine.inventory.namespace_labels(subject.namespace))
            self.g.add_edge(ns_node, node, rel="contains")
            self._by_namespace.setdefault(subject.namespace, set()).add(node)
        else:
            self._outside.add(node)

    def _subjects_in(self, namespaces: Iterable[str] | None) -> list[Subject]:
        """Subjects of ``namespaces`` (all when None) and every subject outside namespaces (world, host, ...)."""
        chosen = self._by_namespace.keys() if namespaces is None else namespaces
        nodes = sorted(n for ns in chosen for n in self._by_namespace.get(ns, ())) + sorted(self._outside)
        return [self.g.nodes[n]["subject"] for n in nodes]

    def _index(self) -> LabelIndex:
        if self._label_index is None:
            self._label_index = LabelIndex((s, s.labels) for s in self._subjects_in(None))
        return self._label_index

    def _add_policy(self, key: PolicyKey) -> None:
        compiled = self.engine.policies.get(key)
        if compiled is None:
            return
        p_node = policy_node(key)
        self.g.add_node(p_node, kind="policy", key=key, notes=list(compiled.notes))
        index = self._index()
        outside = [self.g.nodes[n]["subject"] for n in sorted(self._outside)]
        for rule in compiled.rules:
            r_node = rule_node(rule)
            self._rules[r_node] = rule
            self.g.add_node(r_node, kind="rule", rule=rule, direction=rule.direction, action=rule.action)
            self.g.add_edge(p_node, r_node, rel="has")
            selected = [s for s in rule.selected_in(index) if s.is_endpoint]
            self._link(rule, r_node, selected, rule.admitted_in(index, outside))

    def _link(self, rule: Rule, r_node, selected: Iterable[Subject], admitted: Iterable[Subject]) -> None:
        selects = {"rel": "selects", "direction": rule.direction, "action": rule.action,
                   "isolates": rule.default_deny}
        peer = {"rel": "allows" if rule.action == ALLOW else "denies", "direction": rule.direction,
                "ports": rule.ports_text()}
        self.g.add_edges_from((r_node, subject_node(s), dict(selects)) for s in sorted(selected, key=_by_id))
        self.g.add_edges_from((r_node, subject_node(s), dict(peer)) for s in sorted(admitted, key=_by_id))

    # following changes --------------------------------------------------------------------------------
    def _on_change(self, engine: PolicyEngine, policy_keys: set[PolicyKey], namespaces: set[str]) -> None:
        for key in policy_keys:
            p_node = policy_node(key)
            if p_node in self.g:
                for r_node in list(self.g.successors(p_node)):
                    self._rules.pop(r_node, None)
                    self.g.remove_node(r_node)
                self.g.remove_node(p_node)
            self._add_policy(key)
        fresh: list[Subject] = []
        for ns in namespaces:
            for node in self._by_namespace.pop(ns, set()):
                self.g.remove_node(node)
            ns_node = ("namespace", ns)
            if ns_node in self.g:
                self.g.remove_node(ns_node)
            fresh += [s for s in engine.inventory.representatives() if s.namespace == ns]
        for subject in fresh:
            self._add_subject(subject)
        if fresh:
            for r_node, rule in self._rules.items():
                self._link(rule, r_node, [s for s in fresh if s.is_endpoint and rule.selects(s)],
                           [s for s in fresh if rule.admits_peer(s)])

    # queries -----------------------------------------------------------------------------------------------
    def subject(self, ref: str | Subject) -> Subject:
        """The graph's subject for a REF: the representative of the pod's workload and identity."""
        found = self.engine.resolve(ref)
        node = subject_node(found)
        if node in self.g:
            return self.g.nodes[node]["subject"]
        for other in self._by_namespace.get(found.namespace, ()):
            s = self.g.nodes[other]["subject"]
            if s.workload and s.workload == found.workload and s.labels.key == found.labels.key:
                return s
        return found

    def _rules_into(self, subject: Subject, rel: str, direction: str) -> list[Rule]:
        node = subject_node(subject)
        if node not in self.g:
            return []
        return [self._rules[u] for u, _, d in self.g.in_edges(node, data=True)
                if d["rel"] == rel and d["direction"] == direction]

    def what_isolates(self, ref: str | Subject, direction: str = INGRESS) -> list[str]:
        """Policy refs that put ``ref`` into default deny for ``direction``."""
        subject = self.subject(ref)
        node = subject_node(subject)
        if node not in self.g:
            return []
        policies = {}
        for rule_n, _, d in self.g.in_edges(node, data=True):
            if d["rel"] == "selects" and d["direction"] == direction and d["isolates"]:
                for p_node in self.g.predecessors(rule_n):
                    policies[self.g.nodes[p_node]["key"].ref] = None
        return sorted(policies)

    def what_may_reach(self, ref: str | Subject) -> list[tuple[Subject, PortSet]]:
        """Every subject that may open a connection to ``ref``, with the ports (both sides' policies)."""
        target = self.subject(ref)
        sources = self._peers_of(target, INGRESS)
        return self._with_ports(((s, target) for s in sources if s.id != target.id), key=0)

    def what_may_be_reached_from(self, ref: str | Subject) -> list[tuple[Subject, PortSet]]:
        """Every subject ``ref`` may open a connection to, with the ports."""
        source = self.subject(ref)
        targets = self._peers_of(source, EGRESS)
        return self._with_ports(((source, t) for t in targets if t.id != source.id), key=1)

    def _peers_of(self, subject: Subject, direction: str) -> list[Subject]:
        """Peers the allow rules selecting ``subject`` in ``direction`` name (everyone when it is open)."""
        if not self.engine.is_isolated(subject, direction):
            return self._all_subjects()
        selecting = [r for r in self._rules_into(subject, "selects", direction) if r.action == ALLOW]
        if any(r.all_peers for r in selecting):
            return self._all_subjects()
        candidates = {v for r in selecting for _, v, d in self.g.out_edges(rule_node(r), data=True)
                      if d["rel"] == "allows"}
        return [self.g.nodes[n]["subject"] for n in sorted(candidates)]

    def _all_subjects(self) -> list[Subject]:
        return self._subjects_in(None)

    def _with_ports(self, pairs: Iterable[tuple[Subject, Subject]], key: int) -> list[tuple[Subject, PortSet]]:
        out = []
        for src, dst in pairs:
            ports = self.engine.connections(src, dst)
            if ports:
                out.append(((src, dst)[key], ports))
        return out

    def nearest_rules(self, src: str | Subject, dst: str | Subject, port: int, protocol: str = "TCP",
                      limit: int = 5) -> list[dict]:
        """For a denied connection: the rules adjacent to either side that come nearest to admitting it, with
        what each lacks, at the layer that denies (egress at src, else ingress at dst). Empty when allowed."""
        result = self.engine.trace(self.subject(src), self.subject(dst), port, protocol)
        deciding = result.deciding_layer
        if deciding is None or deciding.layer not in (INGRESS, EGRESS):
            return []
        enforcer, peer = (result.src, result.dst) if deciding.layer == EGRESS else (result.dst, result.src)
        direction = deciding.layer
        adjacent = {u for u, _, d in self.g.in_edges(subject_node(enforcer), data=True)
                    if d["rel"] == "selects" and d["direction"] == direction}
        adjacent |= {u for u, _, d in self.g.in_edges(subject_node(peer), data=True)
                     if d["rel"] == "allows" and d["direction"] == direction}
        rules = [self._rules[n] for n in sorted(adjacent)]
        return self.engine.nearest_rules(direction, enforcer, peer, result.dst, result.port, result.protocol,
                                         limit=limit, candidates=rules)

    def stats(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for _, data in self.g.nodes(data=True):
            kinds[data["kind"]] = kinds.get(data["kind"], 0) + 1
        rels: dict[str, int] = {}
        for _, _, data in self.g.edges(data=True):
            rels[data["rel"]] = rels.get(data["rel"], 0) + 1
        return {**{f"nodes.{k}": v for k, v in sorted(kinds.items())},
                **{f"edges.{k}": v for k, v in sorted(rels.items())}}
