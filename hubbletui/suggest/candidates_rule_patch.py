"""Candidate fixes of kind rule-patch: extend a rule of a policy that already selects the pod.

A rule that admits the peer but not the port gets the port; a rule that covers the port but not the peer gets
the peer. A rule that lacks both is not extended: that would be a new rule, and a new policy says it better.
Patches are JSON patches of "add" operations, so that they touch nothing else of the policy.

What a patch opens grows with the rule's reach: a port added opens it between every pod the rule selects and
every peer it admits, a peer added reaches every pod it selects. Only the narrowest few rules are offered
(each candidate costs a full check); a wide rule's patch could only rank below them.
"""

from __future__ import annotations

import copy

from hubbletui.policy.cilium_validate import EGRESS_L3, INGRESS_L3
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.rules import ALLOW, INGRESS, Rule
from hubbletui.policy.subjects import Subject
from hubbletui.suggest import jsonpatch
from hubbletui.suggest.model import RULE_PATCH, Change, ObjectRef, Patch
from hubbletui.suggest.peers import cilium_peer, leaf_count, netpol_peer

NARROWEST = 3  # rules extended per direction


def rule_patch_options(engine: PolicyEngine, direction: str, enforcer: Subject, peer: Subject, dst: Subject,
                       port: int, protocol: str) -> tuple[list[tuple[Change, ...]], list[str]]:
    extendable = []
    for rule in engine.selecting_rules(enforcer, direction):
        if rule.action != ALLOW or not (rule.all_peers or rule.peers):
            continue
        compiled = engine.policies.get(rule.policy)
        if compiled is None or compiled.obj is None:
            continue
        peer_ok = rule.admits_peer(peer)
        if peer_ok != rule.port_match(port, protocol, dst.named_ports)[0]:
            extendable.append((_reach(engine, rule, peer_ok), rule.ref, rule, compiled, peer_ok))
    options: list[tuple[Change, ...]] = []
    reasons: list[str] = []
    for _, _, rule, compiled, peer_ok in sorted(extendable, key=lambda item: item[:2])[:NARROWEST]:
        try:
            op, what = (_add_port(rule, compiled.obj, port, protocol) if peer_ok else
                        _add_peer(engine, rule, compiled.obj, peer))
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            reasons.append(f"{rule.ref}: its YAML is not as compiled ({exc})")
            continue
        if op is None:
            reasons.append(f"{rule.ref} could be extended, but {what}")
            continue
        ref = ObjectRef(rule.policy.kind, rule.policy.namespace, rule.policy.name)
        after = jsonpatch.apply(compiled.obj, [op])
        summary = f"add {what} to {rule.ref}"
        # never a peer added to a rule that admits every peer: each patch only widens an allow rule
        options.append((Change(RULE_PATCH, ref, summary, (after,), leaf_count(op["value"]),
                               patch=Patch(ref, "json", [op]), widens=True),))
    return options, reasons


def _reach(engine: PolicyEngine, rule: Rule, adding_port: bool) -> int:
    """How many (selected, peer) pairs the patch would touch, over one subject per workload."""
    index = engine.endpoint_index()
    selected = len(index.select(rule.subject))
    if not adding_port:
        return selected
    if rule.all_peers:
        return selected * len(index.all)
    admitted = 0
    for p in rule.peers:
        if p.kind in ("endpoints", "entities", "services"):
            admitted += sum(len(index.select(selector)) for selector in p.selectors)
        else:
            admitted += 1  # an address range or a name outside the cluster
    return selected * admitted


def _add_port(rule: Rule, obj: dict, port: int, protocol: str) -> tuple[dict | None, str]:
    what = f"port {port}/{protocol}"
    if protocol.startswith("ICMP"):
        return None, "ICMP is matched by icmps fields, not ports"
    tokens = jsonpatch.tokens_of_path(rule.path)
    entry = jsonpatch.get(obj, tokens)
    if rule.policy.kind == "NetworkPolicy":
        return {"op": "add", "path": jsonpatch.pointer([*tokens, "ports", "-"]),
                "value": {"port": port, "protocol": protocol}}, what
    clause = {"port": str(port), "protocol": protocol}
    for i, to_port in enumerate(entry.get("toPorts") or []):
        if isinstance(to_port, dict) and not to_port.get("rules") and to_port.get("ports"):
            path = jsonpatch.pointer([*tokens, "toPorts", i, "ports", "-"])
            return {"op": "add", "path": path, "value": clause}, what
    # every port entry carries L7 rules: a new entry keeps this port at L4
    return {"op": "add", "path": jsonpatch.pointer([*tokens, "toPorts", "-"]), "value": {"ports": [clause]}}, what


def _add_peer(engine: PolicyEngine, rule: Rule, obj: dict, peer: Subject) -> tuple[dict | None, str]:
    what = f"peer {peer.workload_ref}"
    tokens = jsonpatch.tokens_of_path(rule.path)
    entry = jsonpatch.get(obj, tokens)
    if rule.policy.kind == "NetworkPolicy":
        spec = netpol_peer(engine, peer, rule.policy.namespace)
        if spec is None:
            return None, f"a NetworkPolicy cannot name {peer.id}"
        field = "from" if rule.direction == INGRESS else "to"
        return {"op": "add", "path": jsonpatch.pointer([*tokens, field, "-"]), "value": spec}, what
    spec = cilium_peer(engine, peer, rule.direction, rule.policy.namespace)
    if spec is None or spec.field == "FQDNs":
        return None, f"no peer field of this rule can name {peer.id}"
    field = spec.cnp_field(rule.direction)
    others = [f for f in (INGRESS_L3 if rule.direction == INGRESS else (*EGRESS_L3, "toFQDNs"))
              if f != field and entry.get(f)]
    if others:
        # Cilium refuses a rule that mixes peer kinds (rule_validation.go): the peer gets a rule of its own in
        # the same section, with the same ports
        sibling = {field: [spec.value]}
        for key in ("toPorts", "icmps"):
            if entry.get(key):
                sibling[key] = copy.deepcopy(entry[key])
        return {"op": "add", "path": jsonpatch.pointer([*tokens[:-1], "-"]), "value": sibling}, \
            f"{what} (as a rule of its own: {others[0]} cannot share a rule with {field})"
    if field in entry:
        return {"op": "add", "path": jsonpatch.pointer([*tokens, field, "-"]), "value": spec.value}, what
    return {"op": "add", "path": jsonpatch.pointer([*tokens, field]), "value": [spec.value]}, what
