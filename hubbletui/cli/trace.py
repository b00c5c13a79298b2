"""`hubbletui trace`: would this connection be allowed? One query from flags, or many from a JSON-lines file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import click
import orjson

from hubbletui.cli.cluster_options import (ClusterFlags, EngineFlags, build_engine, cluster_options, engine_options,
                                           load_cluster, namespace_option, report_incomplete)
from hubbletui.cli.flags import split
from hubbletui.errors import ExitCode, HubbleTuiError
from hubbletui.policy.ports import normalise_protocol
from hubbletui.policy.result import summary_dict
from hubbletui.render.trace_lines import render_trace
from hubbletui.untrusted import json_safe


def parse_dport(text: str, default_protocol: str = "TCP") -> tuple[int, str]:
    """'8080' -> (8080, 'TCP'); '53/udp' -> (53, 'UDP'); 'icmp' or '8/icmp' -> (8, 'ICMPv4') (ICMP type)."""
    number, sep, proto = str(text).strip().partition("/")
    if not sep and not number.isdigit():
        number, proto = "", number  # "icmp": a protocol alone
    try:
        protocol = normalise_protocol(proto) if proto else normalise_protocol(default_protocol)
    except ValueError as exc:
        raise HubbleTuiError(str(exc)) from None
    if not number:
        if not protocol.startswith("ICMP"):
            raise HubbleTuiError(f"no port in {text!r}: give N[/tcp|/udp|/sctp]")
        return (8 if protocol == "ICMPv4" else 128), protocol  # echo request: what ping sends
    if not number.isdigit() or int(number) > 65535:
        raise HubbleTuiError(f"{text!r} is not a port: give N[/tcp|/udp|/sctp] with N in 0-65535")
    return int(number), protocol


@click.command(help="Trace a connection through Cilium's policies (egress at the source, ingress at the "
                    "destination) and Istio's where the destination has a sidecar. REF is ns/pod, ns/workload, "
                    "ns/Kind/name, an entity (world, host, remote-node, kube-apiserver, ...) or an IP. "
                    "With --batch, FILE holds JSON lines {\"src\", \"dst\", \"dport\", \"protocol\"} and one JSON "
                    "line is printed per query, in order.")
@cluster_options
@namespace_option
@engine_options
@click.option("--src", metavar="REF", help="The connecting side.")
@click.option("--dst", metavar="REF", help="The side connected to.")
@click.option("--dport", metavar="N[/PROTO]", help="Destination port, e.g. 8080, 53/udp, 9000/sctp, icmp.")
@click.option("--batch", "batch", metavar="FILE", help="Queries as JSON lines ('-' reads stdin).")
@click.option("--detail", is_flag=True,
              help="With --batch: answer each query with the full record of a single trace (nearest rules, "
                   "notes, both sides' labels) instead of the short form.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default=None,
              help="text for people, json for programs (default: text on a terminal, json otherwise).")
def trace(src, dst, dport, batch, detail, output, **kwargs) -> int:
    cluster, engine_flags = split(kwargs, ClusterFlags, EngineFlags)
    output = output or ("text" if sys.stdout.isatty() else "json")
    if batch and (src or dst or dport):
        raise click.UsageError("--batch takes its queries from FILE: leave out --src/--dst/--dport")
    if not batch and not (src and dst and dport):
        raise click.UsageError("give --src REF --dst REF --dport N[/proto], or --batch FILE")
    port, protocol = parse_dport(dport) if dport else (0, "TCP")
    # the namespaces of the two sides are worth reading where cluster-wide lists are forbidden
    engine = build_engine(engine_flags, load_cluster(cluster.reading(_ref_namespace(r) for r in (src, dst))))
    if batch:
        return _run_batch(engine, batch, output, detail)
    try:
        result = engine.trace(src, dst, port, protocol)
    except HubbleTuiError as exc:
        if engine.incomplete:  # "no such pod" may only mean it could not be read: say so on the same line
            raise HubbleTuiError(f"{exc}; the cluster state is incomplete "
                                 f"({'; '.join(engine.incomplete.values())})") from None
        raise
    if output == "json":
        sys.stdout.buffer.write(json_safe(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2)) + b"\n")
    else:
        click.echo(render_trace(result))
    return ExitCode.INCOMPLETE if report_incomplete(result.incomplete) else ExitCode.OK


def _ref_namespace(ref: str | None) -> str:
    """The namespace of an ns/name reference; "" for an entity, an IP or no reference."""
    namespace, sep, _ = (ref or "").partition("/")
    return namespace if sep and ":" not in namespace and not namespace[:1].isdigit() else ""


def _run_batch(engine, path: str, output: str, detail: bool) -> int:
    out = sys.stdout.buffer
    failures = 0
    incomplete: list[str] = []
    stream = _open(path)
    try:
        for number, query, error in _queries(stream, path):
            if error is None:
                try:
                    port, protocol = _query_port(query)
                    result = engine.trace(query["src"], query["dst"], port, protocol, nearest=detail)
                except HubbleTuiError as exc:
                    error = str(exc)
            if error is not None:
                failures += 1
                record = {"query": query, "line": number, "verdict": "error", "error": error}
                line = f"line {number}: error: {error}"
            else:
                record = {"query": query, **(result.to_dict() if detail else summary_dict(result))}
                incomplete += [why for why in result.incomplete if why not in incomplete]
                line = f"{result.src.id} -> {result.dst.id} {result.port_label}: {result.answer}"
            if output == "json":
                out.write(json_safe(orjson.dumps(record)) + b"\n")
            else:
                out.write(line.encode("utf-8", "replace") + b"\n")
    finally:
        if stream is not sys.stdin:
            stream.close()
    if failures:
        click.echo(f"hubbletui: {failures} queries could not be answered (\"verdict\": \"error\")", err=True)
    return ExitCode.INCOMPLETE if report_incomplete(incomplete) else ExitCode.OK


def _open(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise HubbleTuiError(f"{path}: {exc.strerror or exc}") from None


def _queries(stream: TextIO, path: str) -> Iterator[tuple[int, dict | None, str | None]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            query = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, None, f"{path}:{number}: not JSON ({exc})"
            continue
        if not isinstance(query, dict) or not query.get("src") or not query.get("dst") \
                or query.get("dport") is None:
            yield number, query if isinstance(query, dict) else None, \
                f"{path}:{number}: a query needs \"src\", \"dst\" and \"dport\""
            continue
        yield number, query, None


def _query_port(query: dict) -> tuple[int, str]:
    dport = query["dport"]
    protocol = query.get("protocol") or "TCP"
    if isinstance(dport, int) and not isinstance(dport, bool):
        return parse_dport(f"{dport}/{protocol}")
    return parse_dport(str(dport), protocol)
