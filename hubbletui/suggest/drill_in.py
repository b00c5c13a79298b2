"""What the drop detail screen shows for one row: its analysis, and the checked fixes in one format.

Headless, for the TUI's worker thread: the analysis (`hubbletui.diagnose.analysis`) names the group, and the
fixes are looked for only when a policy change can fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubbletui.errors import HubbleTuiError
from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.analysis import Analysis, Evidence, analyse
from hubbletui.flows.store import Row, RowKey
from hubbletui.policy.engine import PolicyEngine
from hubbletui.suggest.fixes import default_format, suggest_for_case
from hubbletui.suggest.model import GroupFixes, Suggestion
from hubbletui.suggest.observed import ObservedTraffic

FORMATS = ("cilium", "k8s", "istio")  # what `f` cycles through


@dataclass
class DrillIn:
    analysis: Analysis
    fmt: str = ""  # the fix format; "" without a cluster
    fixes: GroupFixes | None = None  # when fixes were looked for
    resolved: str = ""  # not looked for: a later cluster change resolved the group (what it was)

    @property
    def key(self) -> RowKey:
        return self.analysis.key

    @property
    def suggestions(self) -> list[Suggestion]:
        return list(self.fixes.suggestions) if self.fixes is not None else []


def drill_in(row: Row, engine: PolicyEngine | None, evidence: Evidence, fmt: str | None = None,
             timeline: Timeline | None = None) -> DrillIn:
    analysis = analyse(row, engine, evidence, timeline)
    if engine is None:
        return DrillIn(analysis)
    out = DrillIn(analysis, fmt or default_format(engine))
    group = analysis.fixable
    if group is None:
        return out
    if group.resolved_by is not None:  # a later change already lets it through: nothing to fix (as `suggest`)
        out.resolved = group.resolved_by.resolved_by_text()
        return out
    try:
        out.fixes = suggest_for_case(engine, group, ObservedTraffic(evidence.working), out.fmt)
    except HubbleTuiError as exc:
        analysis.notes.append(f"could not look for fixes: {exc}")
    except Exception as exc:  # noqa: BLE001 - one odd group must not take the screen down; say what failed
        analysis.notes.append(f"looking for fixes failed: {type(exc).__name__}: {exc}")
    else:
        if analysis.trace is None:
            analysis.trace = out.fixes.trace
    return out
