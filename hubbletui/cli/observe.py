"""`hubbletui observe`: flows from a recording or a Hubble server, printed the way `hubble observe` prints them."""

from __future__ import annotations

import sys

import click
from google.protobuf import json_format

from hubbletui.cli.flow_options import (build_query, color_option, filter_options, require_one_source,
                                        server_options, time_options, use_color)
from hubbletui.flows.model import Flow, NodeStatus
from hubbletui.flows.recording import event_to_jsonpb, read_events
from hubbletui.flows.select import select
from hubbletui.render.flowtext import TABLE_HEADER, compact_line, status_line, table_row

DEFAULT_SERVER_COUNT = 20  # what a plain `hubble observe` asks a server for


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input-file", type=str, metavar="FILE|-", help="read a jsonpb recording (.gz ok; - for stdin)")
@server_options
@filter_options
@time_options
@click.option("--follow", "-f", is_flag=True, help="keep streaming new flows (server only)")
@click.option("--first", type=int, metavar="N", help="the first N flows")
@click.option("--last", type=int, metavar="N", help="the last N flows")
@click.option("--all", "all_flows", is_flag=True, help="all flows the server has")
@click.option("-o", "--output", type=click.Choice(["compact", "table", "json", "jsonpb"]), default=None,
              help="compact on a terminal, jsonpb when piped")
@color_option
@click.option("--print-raw-filters", is_flag=True, help="print the FlowFilters as JSON and exit")
def observe(input_file, server, follow, first, last, all_flows, output, color, print_raw_filters, **kwargs):
    """Print flows from a recording or a Hubble server, with `hubble observe`'s filters and formats.

    \b
      hubbletui observe --input-file flows.json --verdict DROPPED
      hubbletui observe --server localhost:4245 -n database -f
    """
    require_one_source(input_file, server)
    if first and last:
        raise click.BadParameter("--first and --last exclude each other")
    number = first or last
    query = build_query(kwargs, follow=follow, number=number, first=bool(first))
    if print_raw_filters:
        for name, filters in (("allowlist", query.whitelist), ("denylist", query.blacklist)):
            for flt in filters:
                click.echo(f"{name}: {json_format.MessageToJson(flt, indent=None, preserving_proto_field_name=True)}")
        return
    output = output or ("compact" if sys.stdout.isatty() else "jsonpb")
    if input_file is None and server is None and not sys.stdin.isatty() and not follow:
        input_file = "-"  # `... | hubbletui observe` reads the pipe, as `--input-file -` would
    if input_file is not None:
        events = select(read_events(input_file), query)
    else:
        from hubbletui.sources.grpc_client import DISPLAY_FIELD_MASK, server_events  # grpc only when asked for

        if not (number or all_flows or follow or query.since_ns):
            query.number = DEFAULT_SERVER_COUNT
        if output in ("compact", "table"):
            query.field_mask = DISPLAY_FIELD_MASK  # jsonpb keeps full flows; the others show a few fields
        events = _node_news_to_stderr(server_events(kwargs, server, query))
    _print(events, output, use_color(color), streaming=follow)


def _node_news_to_stderr(events):
    """As `hubble observe` does: node status is talk (stderr), and only bad news; the rest is data."""
    for event in events:
        if type(event) is NodeStatus:
            if event.state in ("NODE_UNAVAILABLE", "NODE_ERROR", "NODE_GONE"):
                print(f"hubbletui: {status_line(event)}", file=sys.stderr)
            continue
        yield event


def _print(events, output: str, color: bool, streaming: bool) -> None:
    out = sys.stdout
    if output in ("json", "jsonpb"):
        raw = out.buffer
        for event in events:
            raw.write(event_to_jsonpb(event))
            if streaming:
                raw.flush()
        return
    if output == "compact":
        for event in events:
            if isinstance(event, Flow):
                out.write(compact_line(event, color) + "\n")
                if streaming:
                    out.flush()
            else:
                print(status_line(event), file=sys.stderr)
        return
    rows = []
    for event in events:
        if isinstance(event, Flow):
            if streaming:
                out.write("\t".join(table_row(event)) + "\n")
                out.flush()
            else:
                rows.append(table_row(event))
        else:
            print(status_line(event), file=sys.stderr)
    if not streaming:
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(TABLE_HEADER)]
        for row in [TABLE_HEADER, *rows]:
            out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() + "\n")
