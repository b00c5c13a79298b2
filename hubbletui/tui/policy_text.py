"""The policy view of one pod as Text, from the policy graph: the policies that select it per direction (and
Istio's, when it is in the mesh), what it may reach and what may reach it (runs in a worker; no Textual)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from hubbletui.errors import HubbleTuiError
from hubbletui.policy import istio
from hubbletui.policy.istio_layer import k8s_labels, membership
from hubbletui.untrusted import printable

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.flows.model import Endpoint
    from hubbletui.policy.engine import PolicyEngine
    from hubbletui.policy.graph import PolicyGraph
    from hubbletui.policy.subjects import Subject

DIRECTIONS = ("ingress", "egress")
MAX_PEERS = 60


class _Lines:
    def __init__(self) -> None:
        self.text = Text()

    def __call__(self, *parts: tuple[str, str] | str, indent: int = 0) -> None:
        self.text.append(" " * indent)
        for part in parts:
            if isinstance(part, tuple):
                self.text.append(printable(part[0]), part[1])
            else:
                self.text.append(printable(part))
        self.text.append("\n")


def policy_view(graph: PolicyGraph, ref: str, endpoint: Endpoint | None = None) -> Text:
    """``endpoint``: the pod as Hubble named it, when flows did; a pod the cluster state lacks (newer than a
    snapshot) is then judged by its identity labels or its workload's template, as the engine decides."""
    engine = graph.engine
    line = _Lines()
    try:
        subject = engine.subject_for_endpoint(endpoint) if endpoint is not None else engine.resolve(ref)
    except HubbleTuiError as exc:
        line((f"policy view of {ref}", "bold"))
        line((str(exc), "red"))
        return line.text
    workload = f", workload {subject.workload_ref}" if subject.workload_ref != subject.id else ""
    line((f"policy view of {subject.id}", "bold"), (f"  ({subject.kind}{workload})", "dim"))
    for note in subject.notes:
        line(("note: ", "yellow"), note)
    for note in engine.rejected_for(subject):
        line(("rejected: ", "red"), note)
    line()
    for direction in DIRECTIONS:
        _selecting(line, engine, graph, subject, direction)
    _istio(line, engine, subject)
    line()
    others = len(engine.endpoints()) - 1
    reach = _peers(graph.what_may_be_reached_from(subject), subject)
    reached = _peers(graph.what_may_reach(subject), subject)
    for title, pairs in (("may reach", reach), ("may be reached by", reached)):
        line((f"{title} ({len(pairs)} of {others} workloads and entities):", "bold cyan"))
        for peer, ports in pairs[:MAX_PEERS]:
            line(peer, ("  " + ports, "dim"), indent=2)
        if len(pairs) > MAX_PEERS:
            line((f"… {len(pairs) - MAX_PEERS} more", "dim"), indent=2)
        if not pairs:
            line(("nothing", "dim"), indent=2)
    line.text.rstrip()
    return line.text


def _selecting(line: _Lines, engine: PolicyEngine, graph: PolicyGraph, subject: Subject, direction: str) -> None:
    rules = engine.selecting_rules(subject, direction)
    isolated = engine.is_isolated(subject, direction)
    if isolated:
        by = ", ".join(graph.what_isolates(subject, direction)) or "policy enforcement mode always"
        line((f"{direction}: ", "bold cyan"), ("isolated (default deny)", "bold yellow"), (f" by {by}", "dim"))
    else:
        line((f"{direction}: ", "bold cyan"), ("open (not isolated)", "green"))
    if not rules:
        line(("no policy selects it for " + direction, "dim"), indent=2)
    for rule in rules:
        action = "deny " if rule.action == "deny" else ""
        line((f"{action}{rule.ref}", "bold red" if action else ""), indent=2)
        line(("peers: ", "dim"), rule.peers_text(), ("  ports: ", "dim"), rule.ports_text(), indent=6)


def _istio(line: _Lines, engine: PolicyEngine, subject: Subject) -> None:
    mesh = membership(engine, subject)
    if mesh is None:
        return
    if not mesh.in_mesh:
        line(("istio: ", "bold cyan"), ("not in the mesh", "dim"), (f" ({mesh.reason})", "dim"))
        return
    root = engine.istio_root_namespace
    labels = k8s_labels(subject)
    applying = [p for p in engine.policy_objects("AuthorizationPolicy")
                if istio.policy_applies(p, root, subject.namespace, labels)]
    line(("istio: ", "bold cyan"), "in the mesh", (f" ({mesh.reason})", "dim"))
    if not applying:
        line(("no AuthorizationPolicy applies: every principal is admitted", "dim"), indent=2)
    for policy in applying:
        action = str((policy.get("spec") or {}).get("action") or "ALLOW")
        line((f"{action} ", "bold red" if action == "DENY" else ""), f"AuthorizationPolicy/{istio.policy_ref(policy)}",
             indent=2)


def _peers(pairs: list, subject: Subject) -> list[tuple[str, str]]:
    return sorted((peer.workload_ref, ports.text()) for peer, ports in pairs
                  if peer.workload_ref != subject.workload_ref)
