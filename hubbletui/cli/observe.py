"""`hubbletui observe`: flows from a recording or a Hubble server, printed the way `hubble observe` prints them."""

from __future__ import annotations

import sys

import click
from google.protobuf import json_format

from hubbletui.cli.flags import split
from hubbletui.cli.flow_options import (FilterOrderCommand, ServerFlags, TimeFlags, build_query, color_option, filter_options,
                                        require_one_source, server_options, time_options, use_color)
from hubbletui.flows.filter_paths import filter_paths
from hubbletui.flows.model import Flow, NodeStatus
from hubbletui.flows.recording import event_to_dict, event_to_jsonpb, read_events
from hubbletui.flows.request import FilterSpec
from hubbletui.flows.select import select
from hubbletui.render.flowtext import compact_line, status_line
from hubbletui.render.hubble_text import TIME_FORMATS, HubblePrinter

DEFAULT_SERVER_COUNT = 20  # what a plain `hubble observe` asks a server for
HUBBLE_TEXT = ("compact", "table", "dict")  # the forms printed exactly as the hubble CLI prints them


@click.command(cls=FilterOrderCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--input-file", type=str, metavar="FILE|-", help="read a jsonpb recording (.gz ok; - for stdin)")
@server_options
@filter_options
@time_options
@click.option("--follow", "-f", is_flag=True, help="keep streaming new flows (server only)")
@click.option("--first", type=int, metavar="N", help="the first N flows")
@click.option("--last", type=int, metavar="N", help="the last N flows")
@click.option("--all", "all_flows", is_flag=True, help="all flows the server has")
@click.option("-o", "--output", type=click.Choice(["compact", "table", "dict", "json", "jsonpb", "wide"]),
              default=None, help="compact, table, dict and jsonpb as hubble prints them (compact on a terminal, "
                                 "jsonpb when piped); wide: ours, with drop reason and direction")
@click.option("--print-node-name", is_flag=True, help="print the node name in output")
@click.option("--time-format", type=click.Choice(TIME_FORMATS), default="StampMilli", show_default=True,
              help="time layout for compact, table and dict (always UTC, as hubble prints it)")
@click.option("--numeric", is_flag=True, help="print IP addresses instead of pod, service and DNS names")
@click.option("--ip-translation/--no-ip-translation", default=True, show_default=True,
              help="translate IP addresses to pod, service and DNS names")
@click.option("--debug", is_flag=True, help="also print informal node status (connected, gone) on stderr")
@color_option
@click.option("--print-raw-filters", is_flag=True, help="print the FlowFilters as JSON and exit")
@click.option("--field-mask", multiple=True, metavar="PATHS",
              help="with --server: only these flow fields (comma-separated, repeatable), as hubble asks for them")
def observe(input_file, server, follow, first, last, all_flows, output, print_node_name, time_format, numeric,
            ip_translation, debug, color, print_raw_filters, field_mask, **kwargs):
    """Print flows from a recording or a Hubble server, with `hubble observe`'s filters and formats.

    \b
      hubbletui observe --input-file flows.json --verdict DROPPED
      hubbletui observe --server localhost:4245 -n database -f
    """
    filters, times, server_flags = split(kwargs, FilterSpec, TimeFlags, ServerFlags)
    require_one_source(input_file, server)
    if first and last:
        raise click.BadParameter("--first and --last exclude each other")
    number = first or last
    query = build_query(filters, times, follow=follow, number=number, first=bool(first))
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
        from hubbletui.cli.server_source import server_events  # grpc only when asked for
        from hubbletui.sources.grpc_client import DISPLAY_FIELD_MASK

        if not (number or all_flows or follow or query.since_ns):
            query.number = DEFAULT_SERVER_COUNT
        paths = _field_mask(field_mask)
        if not paths and (output in HUBBLE_TEXT or output == "wide"):
            # jsonpb keeps full flows; the others show a few fields, plus what hubble's text prints
            paths = DISPLAY_FIELD_MASK + TEXT_EXTRA_FIELDS
        if paths:
            # and what the filters read, which the client checks again on what arrives
            needed = filter_paths([*query.whitelist, *query.blacklist])
            query.field_mask = paths + tuple(p for p in needed if p not in paths)
        events = server_events(server_flags, server, query)
        if output == "wide":
            events = _node_news_to_stderr(events)
    if output in HUBBLE_TEXT:
        printer = HubblePrinter(output, node_name=print_node_name, time_format=time_format,
                                translate=ip_translation and not numeric, debug=debug)
        _print_hubble(events, printer, streaming=follow)
    else:
        _print(events, output, use_color(color), streaming=follow, debug=debug)


# fields hubble's text prints beyond our display mask: the agent's summary, auth, trace id, L2, sock points
TEXT_EXTRA_FIELDS = ("Summary", "auth_type", "ip_trace_id", "ethernet", "debug_capture_point", "sock_xlate_point")


def _field_mask(values: tuple[str, ...]) -> tuple[str, ...]:
    """--field-mask as hubble reads it: comma-separated Flow field paths, checked before anything is sent
    (with --input-file hubble ignores it, and so do we)."""
    from google.protobuf.field_mask_pb2 import FieldMask

    from hubbletui.proto.flow import flow_pb2

    paths = tuple(p.strip() for value in values for p in value.split(",") if p.strip())
    if paths and not FieldMask(paths=list(paths)).IsValidForDescriptor(flow_pb2.Flow.DESCRIPTOR):
        raise click.BadParameter(f"not a path of a flow in {','.join(paths)}", param_hint="--field-mask")
    return paths


def _print_hubble(events, printer: HubblePrinter, streaming: bool) -> None:
    """hubble's own text; lost events go to stdout as hubble puts them, node news to stderr."""
    out, err = sys.stdout, sys.stderr
    if streaming and printer.output == "table":
        printer.output = "table-stream"
    dicts = (event_to_dict(event) for event in events)
    if printer.output == "table-stream":
        # a follow never ends, so no final alignment: each row as it comes, tab-separated
        printer.output = "table"
        header = False
        for response in dicts:
            cells = printer.flow(response) if "flow" in response else (
                printer.lost(response) if "lost_events" in response else None)
            if cells is None:
                text = printer.node_status(response) if "node_status" in response else None
                if text:
                    err.write(text)
                    err.flush()
                continue
            if not header:
                out.write("\t".join(["TIMESTAMP"] + (["NODE"] if printer.node_name else [])
                                    + ["SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"]) + "\n")
                header = True
            out.write("\t".join(cells) + "\n")
            out.flush()
        return
    for stream, text in printer.lines(dicts):
        target = out if stream == "out" else err
        target.write(text)
        if streaming:
            target.flush()


_NODE_TROUBLE = ("NODE_UNAVAILABLE", "NODE_ERROR")


def _node_news_to_stderr(events):
    """As `hubble observe` does: node status is talk (stderr), and only bad news; the rest is data."""
    for event in events:
        if type(event) is NodeStatus:
            if event.state in ("NODE_UNAVAILABLE", "NODE_ERROR", "NODE_GONE"):
                print(f"hubbletui: {status_line(event)}", file=sys.stderr)
            continue
        yield event


def _print(events, output: str, color: bool, streaming: bool, debug: bool = False) -> None:
    out = sys.stdout
    if output in ("json", "jsonpb"):
        # as hubble: flows and lost events are data (stdout); node status is talk, its line on stderr, and
        # only bad news (unavailable, error) unless --debug
        raw, err = out.buffer, sys.stderr.buffer
        for event in events:
            if type(event) is NodeStatus:
                if debug or event.state in _NODE_TROUBLE:
                    err.write(event_to_jsonpb(event))
                    err.flush()
                continue
            raw.write(event_to_jsonpb(event))
            if streaming:
                raw.flush()
        return
    for event in events:  # wide: our own line, drop reason and direction spelled out
        if isinstance(event, Flow):
            out.write(compact_line(event, color) + "\n")
        else:
            out.write(status_line(event) + "\n")
        if streaming:
            out.flush()
