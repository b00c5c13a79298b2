"""`hubbletui record`: flows from a Hubble server appended to a jsonpb recording, one flushed line at a time."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO

import click

from hubbletui.cli.flags import split
from hubbletui.cli.flow_options import (FilterOrderCommand, ServerFlags, TimeFlags, build_query, filter_options,
                                      server_options, time_options)
from hubbletui.errors import ExitCode, HubbleTuiError
from hubbletui.flows.model import Flow, LostEvents, NodeStatus
from hubbletui.flows.recording import event_to_jsonpb
from hubbletui.flows.request import FilterSpec
from hubbletui.render.flowtext import status_line

# node states worth a line on stderr while recording (NODE_CONNECTED greets every stream)
_NODE_NEWS = ("NODE_UNAVAILABLE", "NODE_ERROR", "NODE_GONE")


class AppendWriter:
    """Appends lines to a file with one unbuffered write each: a crash (even kill -9) loses at most the line
    being written, never what came before."""

    def __init__(self, path: str):
        self.path = path
        self._out: BinaryIO | None = None

    def __enter__(self) -> AppendWriter:
        if self.path == "-":
            self._out = sys.stdout.buffer
            return self
        try:
            self._out = open(self.path, "ab", buffering=0)
        except OSError as exc:
            raise HubbleTuiError(f"{self.path}: cannot open for appending: {exc.strerror}") from None
        if self._out.tell() > 0 and not self._ends_with_newline():
            # a previous run died mid-line: end that line, so it stays one malformed line rather than two
            self._out.write(b"\n")
        return self

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def write(self, line: bytes) -> None:
        try:
            self._out.write(line)
            if self.path == "-":
                self._out.flush()
        except OSError as exc:
            raise HubbleTuiError(f"{self.path}: write failed: {exc.strerror}") from None

    def __exit__(self, *exc) -> None:
        if self._out is not None and self.path != "-":
            self._out.close()


@click.command(cls=FilterOrderCommand, context_settings={"help_option_names": ["-h", "--help"]})
@server_options
@filter_options
@time_options
@click.option("--last", type=int, metavar="N", help="begin with the last N flows the server holds")
@click.option("--follow/--no-follow", default=None,
              help="keep recording until Ctrl-C (the default unless --until is given)")
@click.option("-o", "--output-file", "output", required=True, metavar="FILE|DIR",
              help="jsonpb file to append to (- for stdout); with --live, the bundle folder to write")
@click.option("--live", is_flag=True,
              help="Write an incident bundle to DIR: the flows, the cluster read through the Kubernetes API when "
                   "recording begins, and every change the watch sees while recording (get/list/watch only).")
@click.option("--context", metavar="NAME", help="With --live: the kubeconfig context.")
@click.option("--kubeconfig", metavar="FILE", help="With --live: the kubeconfig file.")
def record(server, last, follow, output, live, context, kubeconfig, **kwargs):
    """Append flows from a Hubble server to FILE as jsonpb lines (`hubble observe --input-file` reads them).

    \b
    Each line is written and flushed as it arrives; Ctrl-C ends the recording cleanly (exit code 130).
      hubbletui record --server localhost:4245 -n database -o incident.json
      hubbletui record --since 10m --until 5m --no-follow -o window.json
      hubbletui record --server localhost:4245 --live -o incident/   # then: hubbletui explain --input incident/
    """
    from hubbletui.cli.server_source import cli_source  # grpc only for this command

    filters, times, server_flags = split(kwargs, FilterSpec, TimeFlags, ServerFlags)
    if last is not None and last <= 0:
        raise click.BadParameter("must be a positive number", param_hint="--last")
    if follow is None:
        follow = not times.until
    if (context or kubeconfig) and not live:
        raise click.UsageError("--context and --kubeconfig go with --live")
    if live and output == "-":
        raise click.UsageError("--live writes a bundle folder: give -o DIR")
    query = build_query(filters, times, follow=follow, number=last)
    source = cli_source(server_flags, server, query)
    # the namespaces the filters name are read one by one where cluster-wide lists are forbidden
    namespaces = tuple(dict.fromkeys((*filters.namespace, *filters.from_namespace, *filters.to_namespace)))
    bundle = _start_bundle(output, context, kubeconfig, namespaces) if live else None
    try:
        flows, lost, interrupted = _record(source, bundle.flows_path if bundle else output)
    finally:
        if bundle is not None:
            bundle.close()
            bundle.timeline.state.stop()
    stats = source.stats
    notes = [f"{lost} events reported lost"] if lost else []
    if stats.reconnects:
        notes.append(f"{stats.reconnects} reconnects, {stats.duplicates_dropped} repeated flows dropped")
    if bundle is not None:
        notes.append(f"{bundle.changes} cluster change{'s' if bundle.changes != 1 else ''}")
    where = "stdout" if output == "-" else output
    print(f"hubbletui: recorded {flows} flows to {where}{' (interrupted)' if interrupted else ''}"
          f"{'; ' + '; '.join(notes) if notes else ''}", file=sys.stderr)
    # what was recorded is kept, but a script must be able to tell an interrupted recording from a finished one
    return ExitCode.INTERRUPTED if interrupted else ExitCode.OK


def _start_bundle(directory: str, context: str | None, kubeconfig: str | None, namespaces: tuple[str, ...]):
    """Read the cluster, start watching it, and write the bundle's starting state; changes follow as they come."""
    from hubbletui.cli.cluster_options import report_load
    from hubbletui.cluster.bundle import BundleWriter
    from hubbletui.cluster.live import load_live

    state = load_live(context=context, kubeconfig=kubeconfig, watch=True, namespaces=namespaces)
    report_load(state)
    try:
        return BundleWriter(directory, state)
    except BaseException:
        state.stop()
        raise


def _record(source, output: str) -> tuple[int, int, bool]:
    """Append the source's flows to ``output`` until it ends or Ctrl-C: (flows, events lost, interrupted)."""
    from hubbletui.cli.server_source import blocking_events

    flows = lost = 0
    interrupted = False
    with AppendWriter(output) as writer:
        try:
            for event in blocking_events(source):
                if type(event) is Flow:
                    writer.write(event_to_jsonpb(event))
                    flows += 1
                elif type(event) is LostEvents:
                    writer.write(event_to_jsonpb(event))
                    lost += event.num_lost
                elif type(event) is NodeStatus and event.state in _NODE_NEWS:
                    print(f"hubbletui: {status_line(event)}", file=sys.stderr)
        except KeyboardInterrupt:
            interrupted = True
    return flows, lost, interrupted
