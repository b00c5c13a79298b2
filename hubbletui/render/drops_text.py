"""`explain`'s reports: every group of drops as text for a terminal, or Markdown for an issue."""

from __future__ import annotations

from hubbletui.diagnose.groups import DISAGREEMENT, DropGroup
from hubbletui.render.flowtext import format_time
from hubbletui.render.markdown import md_text as md
from hubbletui.render.trace_lines import brief_layer_lines, plain
from hubbletui.untrusted import printable


def _when(group: DropGroup) -> str:
    first, last = format_time(group.first_ns), format_time(group.last_ns)
    return first if first == last else f"{first} .. {last}"


def _loop(group: DropGroup) -> list[str]:
    """What the cluster's history says: the change the drops followed, the change that ended them."""
    def at(attribution) -> str:
        return format_time(int(attribution.change.time * 1e9))

    out = []
    if group.started_after:
        out.append(f"{group.started_after.started_after_text()} ({at(group.started_after)})")
    if group.resolved_by:
        out.append(f"{group.resolved_by.resolved_by_text()} ({at(group.resolved_by)})")
    return out


def render_text(groups: list[DropGroup]) -> str:
    p = printable
    if not groups:
        return "no dropped flows"
    lines = []
    for group in groups:
        flag = ("  [AUDIT]" if group.audit else f"  [AUDIT {group.audited}]" if group.audited else "") + \
            ("  [DISAGREEMENT]" if group.status == DISAGREEMENT else "") + ("  [RESOLVED]" if group.resolved_by else "")
        lines.append(f"{p(group.key.text())}: {group.flows} flows, {_when(group)}{flag}")
        lines += [f"  {p(text)}" for text in _loop(group)]
        if group.layer == "istio":
            lines.append("  refused by Istio: Cilium forwarded it, the destination's sidecar said no")
        elif group.layer:
            lines.append(f"  {'audited (enforcing drops it)' if group.audit else 'dropped'} at {group.layer}")
        lines.append(f"  {p(group.explanation)}")
        layer = group.trace.layer(group.layer) if group.trace and group.layer else None
        if layer is not None:
            lines += [plain((line,)) for line in brief_layer_lines(layer)]
        for note in group.notes:
            lines.append(f"  note: {p(note)}")
        lines.append("")
    disagreements = sum(1 for g in groups if g.status == DISAGREEMENT)
    audited = sum(g.audited for g in groups)
    lines.append(f"{len(groups)} groups, {sum(g.flows for g in groups)} dropped flows"
                 + (f" ({audited} audited: passed in audit mode, enforcing drops them)" if audited else "")
                 + f", {disagreements} disagreements")
    return "\n".join(lines)


def render_markdown(groups: list[DropGroup], source: str) -> str:
    lines = [f"# Dropped flows explained ({md(source)})", ""]
    if not groups:
        return "\n".join(lines + ["No dropped flows."])
    lines += ["| source | destination | port | reason | flows | audit | layer | status |",
              "|---|---|---|---|---|---|---|---|"]
    for g in groups:
        port = g.key.port.text
        lines.append(f"| {md(g.key.src)} | {md(g.key.dst)} | {md(port)} | {md(g.key.reason)} | {g.flows} | "
                     f"{'yes' if g.audit else g.audited or '-'} | "
                     f"{md(g.layer or '-')} | {'**disagreement**' if g.status == DISAGREEMENT else md(g.status)}"
                     f"{' (resolved)' if g.resolved_by else ''} |")
    for g in groups:
        lines += ["", f"## {md(g.key.text())}", "", md(g.explanation)]
        lines += [f"- {md(text)}" for text in _loop(g)]
        layer = g.trace.layer(g.layer) if g.trace and g.layer else None
        if layer is not None and layer.nearest:
            lines.append("")
            for line in brief_layer_lines(layer, indent=0):
                if line.segments[0][0] == "nearest: ":
                    lines.append("- nearest: " + md(line.segments[1][0]))
        for note in g.notes:
            lines.append(f"- note: {md(note)}")
    return "\n".join(lines)
