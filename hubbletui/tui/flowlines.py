"""Rows and lines of the main screen as Text: drops by pod, aggregated flows, raw log lines."""

from __future__ import annotations

from rich.text import Text

from hubbletui.flows.decode import dns_names
from hubbletui.flows.model import Flow
from hubbletui.cluster.timeline import TimelineEntry, changed_fields
from hubbletui.flows.store import PodDrops, Row, RowKey
from hubbletui.render.flowtext import endpoint_text, event_type_text, summary_text
from hubbletui.tui.cells import DROP_ROW_STYLE, REFUSED_STYLE, VERDICT_STYLE, Num, Stamp, cell, clock_time
from hubbletui.diagnose.pod_status import PodStatus

POD_COLUMNS = [("rank", "#", 3), ("pod", "POD", 29), ("ns", "NAMESPACE", 11), ("drops", "DROPS", 5),
               ("rate", "/MIN", 4), ("last", "LAST SEEN", 9), ("peer", "TOP PEER", 22), ("port", "PORT", 8),
               ("status", "POD STATUS", 27), ("mesh", "MESH", 11), ("loop", "RESOLVED", 10)]
CHANGE_COLUMNS = [("rank", "#", 3), ("time", "TIME", 8), ("action", "CHANGE", 8), ("kind", "KIND", 21),
                  ("object", "OBJECT", 40), ("fields", "WHAT CHANGED", 24), ("touched", "DROPS", 50)]
ROW_COLUMNS = [("rank", "#", 4), ("src", "SOURCE", 30), ("dst", "DESTINATION", 30), ("port", "PORT", 10),
               ("verdict", "VERDICT", 10), ("reason", "REASON", 22), ("count", "COUNT", 8),
               ("last", "LAST SEEN", 9)]


RESOLVED_STYLE = "bold green"


def pod_cells(pod: PodDrops, now_ns: int, status: PodStatus | None, have_cluster: bool,
              gone_ns: int | None = None, resolved: tuple[int, int, int] | None = None) -> tuple:
    """`gone_ns`: when the cluster's history saw the pod deleted; `resolved`: (rows resolved, rows, time of the
    latest resolving change in ns), from the loop tracker."""
    peer = pod.top_peer()
    if peer is None:
        peer_cell, port_cell = cell("-"), cell("-")
    else:
        ref, port, outgoing = peer
        peer_cell = cell(("→ " if outgoing else "← ") + ref)
        port_cell = cell(port.text)
    if status is not None:
        status_cell = cell(str(status), "bold red" if status.trouble else "")
    elif gone_ns is not None:
        status_cell = cell(f"deleted {clock_time(gone_ns)}", "dim")
    else:
        status_cell = cell("not in cluster" if have_cluster else "no cluster", "dim")
    # the last column says how the pod's drops differ from plain drops: refused by the mesh, or only audited
    if pod.refused:
        mesh = cell(f"refused ×{pod.refused:,}", REFUSED_STYLE)
    else:
        mesh = cell(f"audit ×{pod.audited:,}", VERDICT_STYLE["AUDIT"]) if pod.audited else cell("")
    rate = pod.per_minute(now_ns)
    return (cell(pod.pod, "bold"), cell(pod.namespace), Num(pod.total, style="bold red"),
            Num(rate, f"{rate:,.0f}"), Stamp(pod.last_ns), peer_cell, port_cell, status_cell, mesh,
            _resolved_cell(resolved))


def _resolved_cell(resolved: tuple[int, int, int] | None):
    if resolved is None or not resolved[0]:
        return cell("")
    done, rows, at_ns = resolved
    if done < rows:
        return Num(done, f"{done} of {rows}", "green")
    return Stamp(at_ns, RESOLVED_STYLE)


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


def change_cells(entry: TimelineEntry, resolved: list[RowKey], started: list[RowKey]) -> tuple:
    """A cluster change, and the drop rows it resolved (green) or that started right after it (red)."""
    ns, name = entry.key
    fields = ", ".join(changed_fields(entry.old, entry.new))
    if resolved:
        drops = cell(f"resolved {_rows_text(resolved)}", RESOLVED_STYLE)
    elif started:
        drops = cell(f"started {_rows_text(started)}", "bold red")
    else:
        drops = cell("")
    return (Stamp(int(entry.time * 1e9)), cell(entry.action), cell(entry.kind),
            cell(f"{ns}/{name}" if ns else name), cell(fields or "-", "" if fields else "dim"), drops)


def _rows_text(keys: list[RowKey]) -> str:
    first = keys[0]
    more = f" (+{len(keys) - 1} more)" if len(keys) > 1 else ""
    return f"{first.src} → {first.dst} {first.port.text}{more}"
