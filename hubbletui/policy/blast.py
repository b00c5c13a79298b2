"""Blast radius: which connections a what-if view allows that its base denied.

Only pairs a change can affect are evaluated: the peers and subjects of the rules added or removed, and for a
subject whose labels changed, the peers of the rules whose answer for it changed (or everyone, when its isolation
changed). Each candidate pair is then compared by its full connection set (both directions, all ports), so the
answer does not depend on how candidates were found, only its cost does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hubbletui.policy.ports import PortSet
from hubbletui.policy.rules import ALLOW, DENY, EGRESS, INGRESS, Rule
from hubbletui.policy.subjects import Subject

if TYPE_CHECKING:
    from hubbletui.policy.engine import PolicyEngine

Pair = tuple[str, str]  # (source id, destination id)


@dataclass(frozen=True)
class NewlyAllowed:
    """One pair a what-if change opens: ``ports`` were denied before and are allowed after."""

    src: Subject
    dst: Subject
    ports: PortSet

    def to_dict(self) -> dict:
        return {"src": self.src.workload_ref, "dst": self.dst.workload_ref, "ports": self.ports.to_dict(),
                "text": f"{self.src.workload_ref} -> {self.dst.workload_ref}: {self.ports.text()}"}


class _Members:
    """The endpoints before and after the change, and rule answers over all of them at once: the base's label
    index answers for every subject the change left alone, the few changed ones are asked one by one."""

    def __init__(self, view: PolicyEngine, base: PolicyEngine):
        self.after = {s.id: s for s in view.endpoints()}
        self.before = {s.id: s for s in base.endpoints()}
        self.index = base.endpoint_index()
        self.changed = {sid for sid, s in self.after.items() if s.namespace in view.changed_namespaces
                        and (sid not in self.before or self.before[sid].labels.key != s.labels.key
                             or self.before[sid].named_ports != s.named_ports)}
        self._outside = [s for s in self.after.values() if not s.is_endpoint]

    def admitted(self, rule: Rule) -> set[str]:
        """Ids of the subjects (after the change) ``rule`` admits as a peer."""
        if rule.all_peers:
            return set(self.after)
        ids: set[str] = set()
        for peer in rule.peers:
            if peer.kind in ("endpoints", "entities", "services"):
                for selector in peer.selectors:
                    ids |= self.index.select(selector)
        ids = {i for i in ids if i in self.after and i not in self.changed}
        ids |= {i for i in self.changed if rule.admits_peer(self.after[i])}
        ids |= {s.id for s in self._outside if rule.admits_peer(s)}
        return ids

    def selected(self, rule: Rule) -> set[str]:
        """Ids of the endpoints (after the change) ``rule`` selects."""
        ids = {i for i in self.index.select(rule.subject) if i in self.after and i not in self.changed
               and self.after[i].is_endpoint}
        ids |= {i for i in self.changed if self.after[i].is_endpoint and rule.selects(self.after[i])}
        return ids


def newly_allowed(view: PolicyEngine, limit: int | None = None) -> list[NewlyAllowed]:
    base = view.base
    if base is None:
        return []
    members = _Members(view, base)
    after, before = members.after, members.before
    pairs: set[Pair] = set()
    for key in view.changed_policies:
        old_rules = base.policies[key].rules if key in base.policies else ()
        new_rules = view.policies[key].rules if key in view.policies else ()
        for rule in new_rules:
            if rule.action == ALLOW:
                pairs |= _rule_pairs(rule, members)
        for rule in old_rules:
            if rule.action == DENY:
                pairs |= _rule_pairs(rule, members)
            elif rule.default_deny:
                pairs |= _unisolated(view, rule, members)
    for sid in sorted(members.changed):
        pairs |= _subject_pairs(view, base, after[sid], before.get(sid), members)
    out = []
    for src_id, dst_id in sorted(pairs):
        if src_id == dst_id or src_id not in after or dst_id not in after:
            continue
        opened = view.connections(after[src_id], after[dst_id])
        if opened and src_id in before and dst_id in before:
            opened = opened - base.connections(before[src_id], before[dst_id])
        if opened:
            out.append(NewlyAllowed(after[src_id], after[dst_id], opened))
            if limit is not None and len(out) >= limit:
                break
    return out


def _rule_pairs(rule: Rule, members: _Members) -> set[Pair]:
    selected = members.selected(rule)
    if not selected:
        return set()
    peers = members.admitted(rule)
    if rule.direction == INGRESS:
        return {(p, s) for s in selected for p in peers}
    return {(s, p) for s in selected for p in peers}


def _everyone(subject_id: str, direction: str, ids: Iterable[str]) -> set[Pair]:
    """Every pair in which ``subject_id`` is the side enforcing ``direction``."""
    return {(other, subject_id) for other in ids} if direction == INGRESS else {(subject_id, other) for other in ids}


def _unisolated(view: PolicyEngine, rule: Rule, members: _Members) -> set[Pair]:
    """A removed isolating rule opens everything to the subjects that are no longer isolated."""
    pairs: set[Pair] = set()
    for sid in members.selected(rule):
        if not view.is_isolated(members.after[sid], rule.direction):
            pairs |= _everyone(sid, rule.direction, members.after)
    return pairs


def _subject_pairs(view: PolicyEngine, base: PolicyEngine, new: Subject, old: Subject | None,
                   members: _Members) -> set[Pair]:
    """Pairs that a subject's new labels (or ports) can open: the peers of every rule whose answer for it changed
    as the selected side, the subjects of every rule whose answer for it changed as a peer."""
    if old is None or old.named_ports != new.named_ports:
        return _everyone(new.id, INGRESS, members.after) | _everyone(new.id, EGRESS, members.after)
    pairs: set[Pair] = set()
    for direction in (INGRESS, EGRESS):
        if base.is_isolated(old, direction) and not view.is_isolated(new, direction):
            pairs |= _everyone(new.id, direction, members.after)
    selecting = set(view.selecting_rules(new, INGRESS) + view.selecting_rules(new, EGRESS))
    selected_before = set(base.selecting_rules(old, INGRESS) + base.selecting_rules(old, EGRESS))
    for rule in selecting ^ selected_before:
        peers = members.admitted(rule)
        pairs |= {(p, new.id) if rule.direction == INGRESS else (new.id, p) for p in peers}
    for rule in view.rules_admitting_namespace(new.namespace):
        if rule.admits_peer(new) != rule.admits_peer(old):
            pairs |= {(new.id, s) if rule.direction == INGRESS else (s, new.id) for s in members.selected(rule)}
    return pairs
