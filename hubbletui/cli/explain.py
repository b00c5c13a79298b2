"""`hubbletui explain`: every dropped flow of a recording, grouped and explained against the cluster's policies."""

from __future__ import annotations

import sys

import click
import orjson

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           exit_code_of, flow_namespaces, incomplete_reasons)
from hubbletui.cli.flags import split
from hubbletui.cli.flow_options import FilterOrderCommand, TimeFlags, build_query, filter_options, time_options
from hubbletui.flows.request import FilterSpec
from hubbletui.cli.input_options import InputFlags, bundle_option, load_input
from hubbletui.errors import ExitCode
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.render.drops_text import render_markdown, render_text
from hubbletui.untrusted import json_safe


@click.command(cls=FilterOrderCommand, help="Explain every dropped flow of a recording (jsonpb lines, '-' for stdin) against the "
                    "cluster's policies, grouped by source workload, destination workload, port, protocol and "
                    "drop reason. Flows Cilium's policy audit mode passed (verdict AUDIT) are explained as the "
                    "drops enforcing would make, marked audit; `--verdict AUDIT` keeps only them. A policy drop "
                    "the cluster state would allow is flagged as a disagreement. "
                    "Exit status 3 when the input holds no dropped flow.")
@click.option("--input-file", "input_file", metavar="FILE",
              help="A recording: `hubble observe -o jsonpb` output or Hubble exporter lines ('-' = stdin).")
@filter_options(exclude=("--cluster",))
@time_options
@bundle_option
@cluster_options
@engine_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "md"]), default=None,
              help="text for people, json for programs, md for an issue or a pull request "
                   "(default: text on a terminal, json otherwise).")
def explain(output, **kwargs) -> int:
    from hubbletui.flows.recording import read_events
    from hubbletui.flows.select import select

    filters, times, inputs, cluster, engine_flags = split(kwargs, FilterSpec, TimeFlags, InputFlags, ClusterFlags,
                                                          EngineFlags)
    if not inputs.input_dir and not inputs.input_file:
        raise click.UsageError("give the flows: --input-file FILE (with --cluster or --live) or --input DIR")
    output = output or ("text" if sys.stdout.isatty() else "json")
    query = build_query(filters, times)
    loaded = load_input(inputs, cluster.reading(flow_namespaces(filters)))
    state = loaded.state
    engine = build_engine(engine_flags, state)
    found = diagnose(engine, select(read_events(loaded.flows), query), loaded.timeline)
    groups = found.groups
    if output == "json":
        doc = {"cluster": state.source, "drops": sum(g.flows for g in groups), "groups": [g.to_dict() for g in groups],
               "disagreements": found.disagreements, "audited": sum(g.audited for g in groups)}
        if incomplete := incomplete_reasons(engine):
            doc["incomplete"] = incomplete
        sys.stdout.buffer.write(json_safe(orjson.dumps(doc, option=orjson.OPT_INDENT_2)) + b"\n")
    elif output == "md":
        click.echo(render_markdown(groups, state.source))
    else:
        click.echo(render_text(groups))
    if not groups:
        click.echo("hubbletui: no dropped flow in the input", err=True)
        return exit_code_of(engine, ExitCode.NOTHING_TO_FIX)
    return exit_code_of(engine, ExitCode.OK)
