"""`hubbletui verify`: replay the recorded connections against the cluster before and after a proposed change.

Before is the engine of the cluster state; after is its what-if view with the change's objects upserted and its
deletions removed, or, given the state as it would be (`after`), that state's engine (with any change on top). Every working connection (forwarded, opening) is traced on both: one allowed at a layer
before and denied there after would break. Every group of policy drops is traced on both: denied before and
allowed at every layer after is fixed. Connections are kept once per identity pair and port (ObservedTraffic),
so the replay costs distinct connections, not flows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.flows.model import Flow
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import ALLOWED, TraceResult
from hubbletui.suggest.check import case_pairs
from hubbletui.suggest.observed import ObservedTraffic


@dataclass(frozen=True)
class Outcome:
    """One recorded connection (or group of drops) and its verdict before and after."""

    text: str
    before: str  # allowed | denied
    after: str
    why: str = ""  # after's explanation when it denies
    flows: int = 0  # dropped flows of a group; 0 for a working connection (one stands for many)

    def to_dict(self) -> dict:
        out = {"connection": self.text, "before": self.before, "after": self.after}
        if self.why:
            out["why"] = self.why
        if self.flows:
            out["dropped_flows"] = self.flows
        return out


@dataclass
class Verification:
    breaks: list[Outcome] = field(default_factory=list)  # allowed before, denied after
    fixes: list[Outcome] = field(default_factory=list)  # dropped before, allowed after
    kept: list[Outcome] = field(default_factory=list)  # same verdict before and after
    connections_over_cap: int = 0  # working connections beyond ObservedTraffic's cap: not replayed

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_dict(self) -> dict:
        return {"ok": self.ok, "breaks": [o.to_dict() for o in self.breaks],
                "fixes": [o.to_dict() for o in self.fixes], "unchanged": len(self.kept),
                "connections_not_replayed": self.connections_over_cap}


def _denial(result: TraceResult) -> str:
    for layer in result.layers:
        if layer.verdict != ALLOWED:
            return f"denied at {layer.layer}: {layer.explanation}"
    return ""


def verify(engine: PolicyEngine, events: Iterable, upserts: Iterable[dict] = (),
           deletes: Iterable[tuple[str, str, str]] = (), timeline: Timeline | None = None,
           after: PolicyEngine | None = None) -> Verification:
    flows = [f for f in events if isinstance(f, Flow)]
    found = diagnose(engine, flows, timeline)
    observed = ObservedTraffic(flows)
    upserts, deletes = list(upserts), list(deletes)
    base = after if after is not None else engine
    after = base.what_if(upserts=upserts, deletes=deletes) if upserts or deletes else base
    out = Verification(connections_over_cap=observed.dropped_over_cap)
    for seen in observed.baseline(engine):
        if not seen.allowed:
            continue
        src, dst = after.subject_for_endpoint(seen.src_ep), after.subject_for_endpoint(seen.dst_ep)
        result = after.trace(src, dst, seen.port, seen.protocol)
        lost = [layer for layer in result.layers if layer.layer in seen.allowed and layer.verdict != ALLOWED]
        if lost:
            out.breaks.append(Outcome(seen.text, "allowed", "denied",
                                      f"denied at {lost[0].layer}: {lost[0].explanation}"))
        else:
            out.kept.append(Outcome(seen.text, "allowed", "allowed"))
    for group in found.fixable:
        still = ""
        for pair, _ in case_pairs(engine, group):
            if pair is None:
                src, dst = after.resolve(group.src), after.resolve(group.dst)
            else:
                src, dst = after.subject_for_endpoint(pair[0]), after.subject_for_endpoint(pair[1])
            still = _denial(after.trace(src, dst, group.port.number, group.protocol))
            if still:
                break
        outcome = Outcome(group.fixes_text, "denied", "denied" if still else "allowed", still, group.count)
        (out.kept if still else out.fixes).append(outcome)
    return out
