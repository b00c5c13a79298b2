"""One pass over the events of a run: every group of drops and of refused connections, explained once.

`explain` prints the whole `Diagnosis`, `suggest` fixes its fixable groups, and both use the run's one engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.attribution import attribute
from hubbletui.diagnose.explain import explain_group, refusal_group
from hubbletui.diagnose.groups import DropGroup, DropNamer, add_flow, source_in_trouble
from hubbletui.diagnose.implied import ImpliedGaps
from hubbletui.diagnose.mesh_refusals import MeshRefusalDetector
from hubbletui.flows.conn import GroupKey
from hubbletui.flows.model import Flow
from hubbletui.policy.as_of import OLDER_THAN_WINDOW, EngineAt
from hubbletui.policy.engine import PolicyEngine


@dataclass
class Diagnosis:
    groups: list[DropGroup]  # every group, explained: most flows first
    drops: int  # dropped (or audited) flows seen

    @property
    def fixable(self) -> list[DropGroup]:
        """The groups a policy change can fix: those whose source pod is in trouble first, then by size."""
        return sorted((g for g in self.groups if g.fixable), key=lambda g: (not g.in_trouble, -g.count, g.key))

    @property
    def unfixable_drops(self) -> int:
        """Drops no policy change fixes: other drop reasons, and dropped replies."""
        return self.drops - sum(g.count for g in self.groups if g.fixable and g.refusal is None)

    @property
    def disagreements(self) -> int:
        return sum(1 for g in self.groups if g.is_disagreement)


def diagnose(engine: PolicyEngine, events: Iterable, timeline: Timeline | None = None) -> Diagnosis:
    """Group every dropped flow and every connection Istio refuses among ``events`` (one pass; non-flows are
    skipped), and explain each group with the run's one engine. With the cluster's ``timeline``, each flow is
    named and each group explained by the state as of its time, and each group says which change it followed
    and which one resolved it."""
    at = EngineAt(engine, timeline)
    engine_at = at.at if timeline is not None else None
    namer, detector = DropNamer(engine, engine_at), MeshRefusalDetector(engine, engine_at=engine_at)
    implied = ImpliedGaps(engine)
    groups: dict[GroupKey, DropGroup] = {}
    samples: dict[tuple, Flow] = {}  # the first forwarded flow of each connection, for refused groups
    drops = 0
    for flow in events:
        if not isinstance(flow, Flow):
            continue
        detector.observe(flow)
        implied.observe(flow)
        if flow.would_drop:
            drops += 1
            add_flow(groups, namer.key(flow), flow)
        else:
            samples.setdefault((flow.source.workload_ref, flow.destination.workload_ref, flow.dst_port), flow)
    # before any group is explained, so that every answer built on the lacking state says so
    engine.mark_incomplete({why: why for why in implied.reasons()})
    found = [_explained(at, g) for g in groups.values()]
    for refusal in detector.refusals():
        sample = samples.get((refusal.source, refusal.destination, refusal.port))
        if sample is not None:
            stats = detector.tracker.group(refusal.conn)
            pair = (stats.source, stats.destination) if stats is not None else (sample.source, sample.destination)
            found.append(refusal_group(refusal, sample, pair))
    for group in found:
        group.in_trouble = source_in_trouble(engine, group.src)
        attribute(group, at)
    found.sort(key=lambda g: (-g.flows, g.key))
    return Diagnosis(found, drops)


def _explained(at: EngineAt, group: DropGroup) -> DropGroup:
    """The group explained by the state as of its sample (its first flow)."""
    explain_group(at.at(group.sample.time_ns), group)
    if not at.complete_at(group.sample.time_ns):
        group.notes.append(OLDER_THAN_WINDOW)
    return group
