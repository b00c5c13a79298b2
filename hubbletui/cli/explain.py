"""`hubbletui explain`: every dropped flow of a recording, grouped and explained against the cluster's policies."""

from __future__ import annotations

import sys

import click
import orjson

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           exit_code_of, incomplete_reasons)
from hubbletui.cli.flags import split
from hubbletui.cli.input_options import InputFlags, bundle_option, load_input
from hubbletui.errors import ExitCode
from hubbletui.diagnose.diagnosis import diagnose
from hubbletui.render.drops_text import render_markdown, render_text


@click.command(help="Explain every dropped flow of a recording (jsonpb lines, '-' for stdin) against the "
                    "cluster's policies, grouped by source workload, destination workload, port, protocol and "
                    "drop reason. A policy drop the cluster state would allow is flagged as a disagreement. "
                    "Exit status 3 when the input holds no dropped flow.")
@click.option("--input-file", "input_file", metavar="FILE",
              help="A recording: `hubble observe -o jsonpb` output or Hubble exporter lines ('-' = stdin).")
@bundle_option
@cluster_options
@engine_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "md"]), default=None,
              help="text for people, json for programs, md for an issue or a pull request "
                   "(default: text on a terminal, json otherwise).")
def explain(output, **kwargs) -> int:
    from hubbletui.flows.recording import read_events

    inputs, cluster, engine_flags = split(kwargs, InputFlags, ClusterFlags, EngineFlags)
    if not inputs.input_dir and not inputs.input_file:
        raise click.UsageError("give the flows: --input-file FILE (with --cluster or --live) or --input DIR")
    output = output or ("text" if sys.stdout.isatty() else "json")
    loaded = load_input(inputs, cluster)
    state = loaded.state
    engine = build_engine(engine_flags, state)
    found = diagnose(engine, read_events(loaded.flows), loaded.timeline)
    groups = found.groups
    if output == "json":
        doc = {"cluster": state.source, "drops": sum(g.flows for g in groups), "groups": [g.to_dict() for g in groups],
               "disagreements": found.disagreements}
        if incomplete := incomplete_reasons(engine):
            doc["incomplete"] = incomplete
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    elif output == "md":
        click.echo(render_markdown(groups, state.source))
    else:
        click.echo(render_text(groups))
    if not groups:
        click.echo("hubbletui: no dropped flow in the input", err=True)
        return exit_code_of(engine, ExitCode.NOTHING_TO_FIX)
    return exit_code_of(engine, ExitCode.OK)
