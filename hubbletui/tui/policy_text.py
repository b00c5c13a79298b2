"""The policy view of one pod as Text: the policies that select it per direction, and the connections the
policy engine allows to and from every other workload (runs in a worker thread; no Textual)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from hubbletui.errors import HubbleTuiError
from hubbletui.render.safe import printable

DIRECTIONS = ("ingress", "egress")
MAX_PEERS = 60


def policy_view(engine: Any, ref: str, endpoint: Any = None) -> Text:
    """``endpoint``: the pod as Hubble named it, when flows did; a pod the cluster state lacks (newer than a
    snapshot) is then judged by its identity labels or its workload's template, as the engine decides."""
    text = Text()

    def line(*parts: tuple[str, str] | str, indent: int = 0) -> None:
        text.append(" " * indent)
        for part in parts:
            if isinstance(part, tuple):
                text.append(printable(part[0]), part[1])
            else:
                text.append(printable(part))
        text.append("\n")

    try:
        subject = engine.subject_for_endpoint(endpoint) if endpoint is not None else engine.resolve(ref)
    except HubbleTuiError as exc:
        line((f"policy view of {ref}", "bold"))
        line((str(exc), "red"))
        return text
    line((f"policy view of {subject.id}", "bold"), (f"  ({subject.kind}", "dim"),
         (f", workload {subject.workload_ref}" if subject.workload_ref != subject.id else "", "dim"), (")", "dim"))
    for note in subject.notes:
        line(("note: ", "yellow"), note)
    text.append("\n")
    for direction in DIRECTIONS:
        rules = engine.selecting_rules(subject, direction)
        isolated = engine.is_isolated(subject, direction)
        state = ("isolated (default deny)", "bold yellow") if isolated else ("open (not isolated)", "green")
        line((f"{direction}: ", "bold cyan"), state)
        if not rules:
            line(("no policy selects it for " + direction, "dim"), indent=2)
        for rule in rules:
            action = "deny " if rule.action == "deny" else ""
            line((f"{action}{rule.ref}", "bold red" if action else ""), indent=2)
            line(("peers: ", "dim"), rule.peers_text(), ("  ports: ", "dim"), rule.ports_text(), indent=6)
    text.append("\n")
    others = [s for s in engine.endpoints() if s.id != subject.id and s.workload_ref != subject.workload_ref]
    reach, reached = [], []
    for other in others:
        out_ports = engine.connections(subject, other)
        in_ports = engine.connections(other, subject)
        if out_ports:
            reach.append((other.workload_ref, out_ports.text()))
        if in_ports:
            reached.append((other.workload_ref, in_ports.text()))
    for title, pairs in (("may reach", reach), ("may be reached by", reached)):
        line((f"{title} ({len(pairs)} of {len(others)} workloads and entities):", "bold cyan"))
        for peer, ports in sorted(pairs)[:MAX_PEERS]:
            line(peer, ("  " + ports, "dim"), indent=2)
        if len(pairs) > MAX_PEERS:
            line((f"… {len(pairs) - MAX_PEERS} more", "dim"), indent=2)
        if not pairs:
            line(("nothing", "dim"), indent=2)
    text.rstrip()
    return text
