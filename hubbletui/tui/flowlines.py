"""Rows and lines of the main screen as Text: drops by pod, aggregated flows, raw log lines."""

from __future__ import annotations

from rich.text import Text

from hubbletui.flows.decode import dns_names
from hubbletui.flows.model import Flow
from hubbletui.flows.store import PodDrops, Row
from hubbletui.render.flowtext import endpoint_text, event_type_text, summary_text
from hubbletui.tui.cells import DROP_ROW_STYLE, REFUSED_STYLE, VERDICT_STYLE, Num, Stamp, cell
from hubbletui.diagnose.pod_status import PodStatus

POD_COLUMNS = [("rank", "#", 3), ("pod", "POD", 29), ("ns", "NAMESPACE", 11), ("drops", "DROPS", 5),
               ("rate", "/MIN", 4), ("last", "LAST SEEN", 9), ("peer", "TOP PEER", 22), ("port", "PORT", 8),
               ("status", "POD STATUS", 27), ("mesh", "MESH", 11)]
ROW_COLUMNS = [("rank", "#", 4), ("src", "SOURCE", 30), ("dst", "DESTINATION", 30), ("port", "PORT", 10),
               ("verdict", "VERDICT", 10), ("reason", "REASON", 22), ("count", "COUNT", 8),
               ("last", "LAST SEEN", 9)]


def pod_cells(pod: PodDrops, now_ns: int, status: PodStatus | None, have_cluster: bool) -> tuple:
    peer = pod.top_peer()
    if peer is None:
        peer_cell, port_cell = cell("-"), cell("-")
    else:
        ref, port, outgoing = peer
        peer_cell = cell(("→ " if outgoing else "← ") + ref)
        port_cell = cell(port.text)
    if status is not None:
        status_cell = cell(str(status), "bold red" if status.trouble else "")
    else:
        status_cell = cell("not in cluster" if have_cluster else "no cluster", "dim")
    # the last column says how the pod's drops differ from plain drops: refused by the mesh, or only audited
    if pod.refused:
        mesh = cell(f"refused ×{pod.refused:,}", REFUSED_STYLE)
    else:
        mesh = cell(f"audit ×{pod.audited:,}", VERDICT_STYLE["AUDIT"]) if pod.audited else cell("")
    rate = pod.per_minute(now_ns)
    return (cell(pod.pod, "bold"), cell(pod.namespace), Num(pod.total, style="bold red"),
            Num(rate, f"{rate:,.0f}"), Stamp(pod.last_ns), peer_cell, port_cell, status_cell, mesh)


def row_cells(row: Row) -> tuple:
    key = row.key
    style = DROP_ROW_STYLE if row.is_drop else ""
    if row.refusal is not None:
        verdict = cell("REFUSED", REFUSED_STYLE)
        reason = cell(f"{row.refusal.layer} refused", REFUSED_STYLE)
    else:
        verdict = cell(key.verdict, VERDICT_STYLE.get(key.verdict, ""))
        reason = cell(key.reason or "-", style)
    return (cell(key.src, style), cell(key.dst, style), cell(key.port.text, style), verdict, reason,
            Num(row.count, style="bold" if row.is_drop else ""), Stamp(row.last_ns))


def log_line(flow: Flow, time_text: str) -> Text:
    """One raw flow: time, source -> destination, type, verdict and reason, summary. Never markup."""
    src_names, dst_names = dns_names(flow)
    src = endpoint_text(flow.source, flow.src_port, src_names)
    dst = endpoint_text(flow.destination, flow.dst_port, dst_names)
    arrow = " <- " if flow.is_reply else " -> "
    left, right = (dst, src) if flow.is_reply else (src, dst)
    verdict = flow.verdict + (f" {flow.reason_name}" if flow.would_drop and flow.reason_name else "")
    line = Text(no_wrap=True, overflow="ellipsis", end="")
    line.append(time_text, "dim")
    line.append(" ")
    line.append(left)
    line.append(arrow, "dim")
    line.append(right)
    line.append(f" {event_type_text(flow)} ", "dim")
    line.append(verdict, VERDICT_STYLE.get(flow.verdict, ""))
    line.append(f" ({summary_text(flow)})", "dim")
    return line
