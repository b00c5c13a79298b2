"""`hubbletui explain`: every dropped flow of a recording, grouped and explained against the cluster's policies."""

from __future__ import annotations

import re
import sys

import click
import orjson

from hubbletui.cli.cluster_options import build_engine, cluster_options, engine_options, load_cluster
from hubbletui.errors import ExitCode
from hubbletui.diagnose.explain import DISAGREEMENT, DropGroup, explain_flows
from hubbletui.render.flowtext import format_time
from hubbletui.untrusted import printable


@click.command(help="Explain every dropped flow of a recording (jsonpb lines, '-' for stdin) against the "
                    "cluster's policies, grouped by source workload, destination workload, port, protocol and "
                    "drop reason. A policy drop the cluster state would allow is flagged as a disagreement. "
                    "Exit status 3 when the input holds no dropped flow.")
@click.option("--input-file", "input_file", required=True, metavar="FILE",
              help="A recording: `hubble observe -o jsonpb` output or Hubble exporter lines ('-' = stdin).")
@cluster_options
@engine_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "md"]), default=None,
              help="text for people, json for programs, md for an issue or a pull request "
                   "(default: text on a terminal, json otherwise).")
def explain(**kwargs) -> int:
    from hubbletui.flows.recording import read_events

    output = kwargs.pop("output") or ("text" if sys.stdout.isatty() else "json")
    input_file = kwargs.pop("input_file")
    state = load_cluster(kwargs)
    engine = build_engine(kwargs, state)
    groups = explain_flows(engine, read_events(input_file))
    if output == "json":
        doc = {"cluster": state.source, "drops": sum(g.flows for g in groups), "groups": [g.to_dict() for g in groups],
               "disagreements": sum(1 for g in groups if g.status == DISAGREEMENT)}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    elif output == "md":
        click.echo(render_markdown(groups, state.source))
    else:
        click.echo(render_text(groups))
    if not groups:
        click.echo("hubbletui: no dropped flow in the input", err=True)
        return ExitCode.NOTHING_TO_FIX
    return ExitCode.OK


def _when(group: DropGroup) -> str:
    first, last = format_time(group.first_ns), format_time(group.last_ns)
    return first if first == last else f"{first} .. {last}"


def render_text(groups: list[DropGroup]) -> str:
    p = printable
    if not groups:
        return "no dropped flows"
    lines = []
    for group in groups:
        flag = "  [DISAGREEMENT]" if group.status == DISAGREEMENT else ""
        lines.append(f"{p(group.key.text())}: {group.flows} flows, {_when(group)}{flag}")
        if group.layer == "istio":
            lines.append("  refused by Istio: Cilium forwarded it, the destination's sidecar said no")
        elif group.layer:
            lines.append(f"  dropped at {group.layer}")
        lines.append(f"  {p(group.explanation)}")
        layer = group.trace.layer(group.layer) if group.trace and group.layer else None
        if layer is not None:
            for near in layer.nearest[:3]:
                lacks = "; ".join(lack["text"] for lack in near["lacks"])
                lines.append(f"  nearest: {p(near['ref'])} {p(near['path'])} lacks {p(lacks)}")
            for hit in layer.denied_by:
                lines.append(f"  denied by: {p(hit['ref'])} {p(hit['path'])}")
        for note in group.notes:
            lines.append(f"  note: {p(note)}")
        lines.append("")
    disagreements = sum(1 for g in groups if g.status == DISAGREEMENT)
    lines.append(f"{len(groups)} groups, {sum(g.flows for g in groups)} dropped flows, "
                 f"{disagreements} disagreements")
    return "\n".join(lines)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def md(text: str) -> str:
    """Untrusted text as literal Markdown: control characters shown, markup characters escaped."""
    return _MD_SPECIAL.sub(r"\\\1", printable(str(text)))


def render_markdown(groups: list[DropGroup], source: str) -> str:
    lines = [f"# Dropped flows explained ({md(source)})", ""]
    if not groups:
        return "\n".join(lines + ["No dropped flows."])
    lines += ["| source | destination | port | reason | flows | layer | status |", "|---|---|---|---|---|---|---|"]
    for g in groups:
        port = f"{g.key.port}/{g.key.protocol}"
        lines.append(f"| {md(g.key.src)} | {md(g.key.dst)} | {md(port)} | {md(g.key.reason)} | {g.flows} | "
                     f"{md(g.layer or '-')} | {'**disagreement**' if g.status == DISAGREEMENT else md(g.status)} |")
    for g in groups:
        lines += ["", f"## {md(g.key.text())}", "", md(g.explanation)]
        layer = g.trace.layer(g.layer) if g.trace and g.layer else None
        if layer is not None and layer.nearest:
            lines.append("")
            for near in layer.nearest[:3]:
                lacks = "; ".join(lack["text"] for lack in near["lacks"])
                lines.append(f"- nearest: {md(near['ref'])} {md(near['path'])}: lacks {md(lacks)}")
        for note in g.notes:
            lines.append(f"- note: {md(note)}")
    return "\n".join(lines)
