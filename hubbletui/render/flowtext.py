"""Flows as one line of text: `observe -o compact` and `-o table`, the TUI's raw log, and explanations.

Every string that came off the network passes through `printable`, and colour is added only by ANSI
codes we emit ourselves around it.
"""

from __future__ import annotations

import time

from hubbletui.flows.decode import dns_names
from hubbletui.flows.enums import EVENT_TYPE_NAME, TRACE_SUB_TYPES
from hubbletui.flows.model import Endpoint, Flow, LostEvents, NodeStatus
from hubbletui.untrusted import printable

_TRACE_NAME = {number: name for name, number in TRACE_SUB_TYPES.items()}
_VERDICT_COLOR = {"DROPPED": "31", "ERROR": "31", "AUDIT": "33", "FORWARDED": "32", "REDIRECTED": "36",
                  "TRACED": "32", "TRANSLATED": "32"}


def format_time(ns: int) -> str:
    secs, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%b %d %H:%M:%S", time.localtime(secs)) + f".{rest // 1_000_000:03d}"


def endpoint_text(ep: Endpoint, port: int, names: tuple[str, ...] = ()) -> str:
    if ep.pod:
        name = f"{ep.namespace}/{ep.pod}"
    elif names:
        name = names[0]
    elif ep.ip:
        name = ep.ip
    else:
        name = ep.ref
    name = printable(name)
    if port:
        name = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
    if ep.identity:
        reserved = ep.ref if not ep.pod and any(lbl.startswith("reserved:") for lbl in ep.labels) else ""
        return f"{name} ({printable(reserved)})" if reserved else f"{name} (ID:{ep.identity})"
    return name


def event_type_text(flow: Flow) -> str:
    name = EVENT_TYPE_NAME.get(flow.event_type, "")
    if name == "trace":
        return _TRACE_NAME.get(flow.event_sub_type, "trace")
    if name == "policy-verdict":
        return "policy-verdict"
    if name == "l7" and flow.l7 is not None:
        return f"{flow.l7.protocol}-{flow.l7.type.lower()}" if flow.l7.protocol else "l7"
    if name == "drop" or (not name and flow.verdict == "DROPPED"):
        return "drop"
    return name or (flow.flow_type.lower() or "-")


def summary_text(flow: Flow) -> str:
    if flow.l7 is not None and flow.l7.protocol:
        l7 = flow.l7
        if l7.protocol == "http":
            code = f" {l7.code}" if l7.code else ""
            return printable(f"HTTP {l7.method} {l7.target}{code}".strip())
        if l7.protocol == "dns":
            return printable(f"DNS {l7.type.lower()} {l7.target} {l7.method}".strip())
        return printable(f"Kafka {l7.method} {l7.target}".strip())
    if flow.protocol == "TCP":
        return f"TCP Flags: {', '.join(flow.tcp_flags)}" if flow.tcp_flags else "TCP"
    if flow.protocol.startswith("ICMP"):
        return f"{flow.protocol} type {flow.dst_port}"
    return flow.protocol or "-"


def verdict_text(flow: Flow) -> str:
    parts = [flow.verdict]
    if flow.drop_reason_name and flow.verdict in ("DROPPED", "ERROR", "AUDIT"):
        parts.append(flow.drop_reason_name)
    if flow.direction:
        parts.append(flow.direction)
    return " ".join(parts)


def _color(text: str, code: str, on: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if on and code else text


def compact_line(flow: Flow, color: bool = False) -> str:
    """One line per flow, the shape of `hubble observe -o compact`: drops stand out in colour and by reason."""
    src_names, dst_names = dns_names(flow)
    src = endpoint_text(flow.source, flow.src_port, src_names)
    dst = endpoint_text(flow.destination, flow.dst_port, dst_names)
    arrow = "<-" if flow.is_reply else "->"
    left, right = (dst, src) if flow.is_reply else (src, dst)
    verdict = _color(verdict_text(flow), _VERDICT_COLOR.get(flow.verdict, ""), color)
    return (f"{format_time(flow.time_ns)}: {left} {arrow} {right} {event_type_text(flow)} {verdict} "
            f"({summary_text(flow)})")


TABLE_HEADER = ("TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY")


def table_row(flow: Flow) -> tuple[str, ...]:
    src_names, dst_names = dns_names(flow)
    return (format_time(flow.time_ns), endpoint_text(flow.source, flow.src_port, src_names),
            endpoint_text(flow.destination, flow.dst_port, dst_names), event_type_text(flow),
            verdict_text(flow), summary_text(flow))


def status_line(event: NodeStatus | LostEvents) -> str:
    if isinstance(event, NodeStatus):
        nodes = ", ".join(printable(n) for n in event.node_names) or "-"
        message = f": {printable(event.message)}" if event.message else ""
        return f"{format_time(event.time_ns)}: {event.state} {nodes}{message}"
    cpu = f" on CPU {event.cpu}" if event.cpu is not None else ""
    return f"{format_time(event.time_ns)}: LOST {event.num_lost} events ({event.source}{cpu})"
