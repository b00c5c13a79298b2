"""The headless API the CLI, the TUI and `demo --print-fixes` call: checked, ranked fixes per drop group.

    observed = ObservedTraffic(flows)                       # what works: a fix must not break it
    fixes = suggest_for_case(engine, case, observed, fmt="cilium", top=3)   # one group (a DropGroup)
    groups = suggest_all(engine, flows, fmt=None, top=3)    # every group in a recording

A fix is built one denying layer at a time, in the order a packet meets them (the source's egress, then the
destination's ingress; Istio for mesh refusals): candidates for the first layer, each completed by the best
candidate for what still denies on a what-if view with it applied. Only complete fixes that pass the check are
kept (see check.py), then ranked (rank.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hubbletui.errors import HubbleTuiError
from hubbletui.flows.model import Flow
from hubbletui.policy.engine import PolicyEngine
from hubbletui.policy.result import ALLOWED, LayerResult
from hubbletui.policy.subjects import Subject
from hubbletui.suggest.admission import refusal
from hubbletui.suggest.candidates_istio import istio_options
from hubbletui.suggest.candidates_label import label_options
from hubbletui.suggest.candidates_policy import new_policy_options
from hubbletui.suggest.candidates_rule_patch import rule_patch_options
from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.diagnose.groups import DropGroup
from hubbletui.suggest.check import Checker, case_pairs, upserts_of
from hubbletui.suggest.model import Change, GroupFixes, Suggestion
from hubbletui.suggest.observed import ObservedTraffic, Seen
from hubbletui.suggest.rank import ranked

FORMATS = ("cilium", "k8s", "istio", "all")
CILIUM_LAYERS = ("egress", "ingress")


def default_format(engine: PolicyEngine) -> str:
    """k8s when the cluster uses NetworkPolicies and no Cilium policy, else cilium."""
    kinds = {key.kind for key in engine.policies}
    return "k8s" if kinds == {"NetworkPolicy"} else "cilium"


@dataclass
class _Context:
    engine: PolicyEngine
    case: DropGroup
    fmt: str
    targets: tuple[str, ...]
    checker: Checker
    seen: list[Seen]
    first_pair: object
    top: int | None
    reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    found: list[Suggestion] = field(default_factory=list)  # checked so far: what later candidates must beat

    def outranked_at(self) -> int | None:
        """How many newly allowed pairs put a candidate out of the best ``top`` found so far (None: any count
        can still be shown)."""
        if self.top is None or len(self.found) < self.top:
            return None
        return sorted(s.blast.count for s in self.found)[self.top - 1] + 1


def suggest_for_case(engine: PolicyEngine, case: DropGroup, observed: ObservedTraffic | Iterable[Flow] = (),
                     fmt: str | None = None, top: int | None = None) -> GroupFixes:
    fmt = fmt or default_format(engine)
    if fmt not in FORMATS:
        raise HubbleTuiError(f"unknown fix format {fmt!r} (one of {', '.join(FORMATS)})")
    if not isinstance(observed, ObservedTraffic):
        observed = ObservedTraffic(observed)
    targets = ("istio",) if case.layer == "istio" else CILIUM_LAYERS
    pairs = case_pairs(engine, case)
    first_pair, (src, dst) = pairs[0]
    trace = engine.trace(src, dst, case.port.number, case.protocol)
    out = GroupFixes(case, case.explanation or trace.explanation(), trace=trace)
    if not any(layer.layer in targets and layer.verdict != ALLOWED for layer in trace.layers):
        where = "Istio admits" if case.layer == "istio" else "Cilium's policies allow"
        out.not_offered.append(f"{where} this connection in the cluster state: a stale snapshot, or a rule "
                               "hubbletui does not model; nothing to fix here")
        return out
    ctx = _Context(engine, case, fmt, targets, Checker(engine, case, targets, observed),
                   observed.baseline(engine), first_pair, top)
    _solve(ctx, (), 0)
    found = ranked(ctx.found)
    out.suggestions = found[:top] if top else found
    out.rejected = len(ctx.failures)
    out.not_offered = list(dict.fromkeys(ctx.reasons))
    if not found and ctx.failures:
        out.not_offered.append(f"{len(ctx.failures)} candidate(s) failed their check; the first: {ctx.failures[0]}")
    return out


def suggest_groups(engine: PolicyEngine, events: Iterable, fmt: str | None = None,
                   top: int | None = None, timeline: Timeline | None = None) -> tuple[list[GroupFixes], int]:
    """Fixes for every group of policy drops and mesh refusals among ``events`` (non-flows are skipped), and
    the number of drops whose reasons no policy change fixes. With the cluster's ``timeline`` (a bundle), a
    group a later change already resolved needs no fix and is left out."""
    flows = [f for f in events if isinstance(f, Flow)]
    found = diagnose(engine, flows, timeline)
    observed = ObservedTraffic(flows)
    return [suggest_for_case(engine, group, observed, fmt, top) for group in found.fixable
            if group.resolved_by is None], found.unfixable_drops


def suggest_all(engine: PolicyEngine, events: Iterable, fmt: str | None = None,
                top: int | None = None) -> list[GroupFixes]:
    return suggest_groups(engine, events, fmt, top)[0]


MAX_STEPS = 2  # a packet meets at most two Cilium layers; Istio is one


def _solve(ctx: _Context, prefix: tuple[Change, ...], step: int, bound: int | None = None) -> list[Suggestion]:
    """Check ``prefix`` if it leaves nothing denied, else extend it with the options for the next denying layer.

    At the first step every complete fix joins ``ctx.found``; at a later step only the best completion is
    returned, so a completion opening ``bound`` pairs (more than one already found) need not be counted further.
    """
    view = ctx.engine.what_if(upserts=upserts_of(prefix)) if prefix else ctx.engine
    src, dst = _pair(view, ctx)
    trace = view.trace(src, dst, ctx.case.port.number, ctx.case.protocol)
    remaining = [layer for layer in trace.layers if layer.layer in ctx.targets and layer.verdict != ALLOWED]
    if not remaining:
        return _checked(ctx, prefix, trace, bound)
    if step >= MAX_STEPS:
        return []
    completions: list[Suggestion] = []
    for option in _options(view, remaining[0], src, dst, ctx):
        if step == 0:
            ctx.found += _solve(ctx, prefix + option, 1)
        else:
            local = min(s.blast.count for s in completions) + 1 if completions else None
            completions += _solve(ctx, prefix + option, step + 1, local)
    return ranked(completions)[:1]


def _checked(ctx: _Context, changes: tuple[Change, ...], trace, bound: int | None) -> list[Suggestion]:
    if any(s.changes == changes for s in ctx.found):
        return []  # reached again through another layer's option
    refused = refusal(changes)
    if refused:
        ctx.failures.append(refused)
        return []
    limits = [n for n in (ctx.outranked_at(), bound) if n is not None]
    result = ctx.checker.check(changes, min(limits) if limits else None)
    if not result.ok:
        if not result.outranked:
            ctx.failures.append(result.failure)
        return []
    notes = [n for c in changes for n in c.notes] + _other_layers(trace, ctx.targets, ctx.case.layer == "istio")
    return [Suggestion(changes, ctx.case.fixes_text, result.blast, tuple(dict.fromkeys(notes)))]


def _pair(engine: PolicyEngine, ctx: _Context) -> tuple[Subject, Subject]:
    if ctx.first_pair is None:
        return engine.resolve(ctx.case.src), engine.resolve(ctx.case.dst)
    return engine.subject_for_endpoint(ctx.first_pair[0]), engine.subject_for_endpoint(ctx.first_pair[1])


def _other_layers(trace, targets: tuple[str, ...], forwarded: bool) -> list[str]:
    """A fix answers for its own layers: say what another layer will do. ``forwarded``: Hubble saw Cilium let
    these connections through, whatever the cluster state says."""
    denying = [layer for layer in trace.layers if layer.layer not in targets and layer.verdict != ALLOWED]
    if forwarded and denying:
        where = " and ".join(layer.layer for layer in denying)
        return [(f"Hubble saw these connections forwarded, yet the cluster state denies them at {where}: the "
                "snapshot may be older than the flows")]
    return [f"after this fix, {'Istio' if layer.layer == 'istio' else layer.layer} still refuses it: "
            f"{layer.explanation}" for layer in denying]


def _options(view: PolicyEngine, layer: LayerResult, src: Subject, dst: Subject,
             ctx: _Context) -> list[tuple[Change, ...]]:
    case = ctx.case
    if layer.layer == "istio":
        options, reasons = istio_options(view, layer, src, dst, case.port.number)
        ctx.reasons += reasons
        return options
    if ctx.fmt == "istio":
        ctx.reasons.append(f"{layer.layer} at {layer.endpoint} denies it, and --format istio offers only Istio "
                           "AuthorizationPolicy fixes")
        return []
    if layer.reason == "deny-rule":
        refs = ", ".join(hit.where for hit in layer.denied_by)
        ctx.reasons.append(f"an explicit deny rule matches at {layer.layer} ({refs}): deny rules win over every "
                           "allow, and hubbletui does not suggest weakening them")
        return []
    if layer.reason != "default-deny":
        ctx.reasons.append(f"{layer.layer} at {layer.endpoint}: {layer.explanation}")
        return []
    direction = layer.layer
    enforcer, peer = (src, dst) if direction == "egress" else (dst, src)
    # new policies first: they seldom open anything else, so later candidates' counting can stop early
    kinds = {"cilium": (False,), "k8s": (True,), "all": (False, True)}[ctx.fmt]
    results = [new_policy_options(view, direction, enforcer, peer, case.port.number, case.protocol, src, dst, netpol,
                                  ctx.seen) for netpol in kinds]
    results.append(rule_patch_options(view, direction, enforcer, peer, dst, case.port.number, case.protocol))
    results.append(label_options(view, direction, enforcer, peer, dst, case.port.number, case.protocol))
    options: list[tuple[Change, ...]] = []
    for found, reasons in results:
        options += found
        ctx.reasons += reasons
    return options
