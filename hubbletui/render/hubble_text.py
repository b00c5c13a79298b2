"""Flows as the hubble CLI (v1.19.4) prints them: `-o compact`, `-o table` and `-o dict`, byte for byte.

People compare our lines with hubble's, grep them and paste them into tickets, so these forms follow the
CLI's printer (cilium/cilium hubble/pkg/printer/printer.go) rather than our own taste; our richer line stays
in render/flowtext.py (`-o wide`, the TUI). Everything works on the GetFlowsResponse JSON object (the
recording's own line, or MessageToDict of a live message), because hubble prints fields our decoded Flow
does not keep (the agent's `Summary`, services, DNS names, auth type, IP trace id).

One deliberate difference: text that came off the network passes through `untrusted.printable`, so a
control character prints as an escape instead of reaching the terminal (hubble lets ESC through).
"""

from __future__ import annotations

import calendar
import posixpath
import time
from collections.abc import Iterable, Iterator

from hubbletui.render.hubble_names import DROP_REASON_TEXT, RESERVED_IDENTITY_TEXT, TRACE_POINT_TEXT
from hubbletui.untrusted import printable

# Go layouts the CLI's --time-format names (pkg/time and hubble's defaults); UTC always, as Go's
# timestamppb.AsTime() is.
TIME_FORMATS = ("StampMilli", "YearMonthDay", "YearMonthDayHour", "YearMonthDayHourMinute", "RFC3339",
                "RFC3339Milli", "RFC3339Micro", "RFC3339Nano", "RFC1123Z")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Cilium's api.PolicyMatchType.String(): 5 and 6 came with the protocol-only rules.
_MATCH_TYPE = {0: "none", 1: "L3-Only", 2: "L3-L4", 3: "L4-Only", 4: "all", 5: "L3-Proto", 6: "Proto-Only"}
_SOCK_XLATE = {"SOCK_XLATE_POINT_POST_DIRECTION_FWD": "post-xlate-fwd",
               "SOCK_XLATE_POINT_POST_DIRECTION_REV": "post-xlate-rev",
               "SOCK_XLATE_POINT_PRE_DIRECTION_FWD": "pre-xlate-fwd",
               "SOCK_XLATE_POINT_PRE_DIRECTION_REV": "pre-xlate-rev"}
_SOCK_XLATE_NAMES = ("SOCK_XLATE_POINT_UNKNOWN", "SOCK_XLATE_POINT_PRE_DIRECTION_FWD",
                     "SOCK_XLATE_POINT_POST_DIRECTION_FWD", "SOCK_XLATE_POINT_PRE_DIRECTION_REV",
                     "SOCK_XLATE_POINT_POST_DIRECTION_REV")
_VERDICTS = ("VERDICT_UNKNOWN", "FORWARDED", "DROPPED", "ERROR", "AUDIT", "REDIRECTED", "TRACED", "TRANSLATED")
_DIRECTIONS = ("TRAFFIC_DIRECTION_UNKNOWN", "INGRESS", "EGRESS")
_L7_TYPES = ("UNKNOWN_L7_TYPE", "REQUEST", "RESPONSE", "SAMPLE")
_AUTH_TYPES = ("DISABLED", "SPIRE", "TEST_ALWAYS_FAIL")
_NODE_STATES = ("UNKNOWN_NODE_STATE", "NODE_CONNECTED", "NODE_UNAVAILABLE", "NODE_GONE", "NODE_ERROR")
_POLICY_VERDICT_WORD = {"FORWARDED": "ALLOWED", "REDIRECTED": "ALLOWED", "DROPPED": "DENIED", "ERROR": "DENIED",
                        "AUDIT": "AUDITED"}
_MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z, the smallest timestamp Go's IsValid accepts
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
TABLE_HEADER = ("TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY")
DICT_SEPARATOR = "------------"


def _get(obj, snake: str, camel: str | None = None):
    """A field by its proto name or its JSON (lowerCamel) name: recordings carry either."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(snake)
    if value is None and camel:
        value = obj.get(camel)
    return value


def _enum(value, names: tuple[str, ...]) -> str:
    """An enum as Go's String() gives it: the name, or the number for one the table does not know."""
    if value is None:
        return names[0]
    if isinstance(value, int):
        return names[value] if 0 <= value < len(names) else str(value)
    return str(value)


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------------------
# time


def parse_timestamp(value) -> tuple[int, int] | None:
    """RFC 3339 text (proto JSON) or {"seconds", "nanos"} into (seconds, nanos); None when absent or invalid."""
    if value is None:
        return None
    if isinstance(value, dict):
        secs, nanos = _int(value.get("seconds")), _int(value.get("nanos"))
    else:
        text = str(value)
        try:
            date, _, clock = text.partition("T")
            year, month, day = (int(p) for p in date.split("-"))
            offset = 0
            if clock.endswith(("Z", "z")):
                clock = clock[:-1]
            else:
                sign_at = max(clock.rfind("+"), clock.rfind("-"))
                if sign_at > 0:
                    zone = clock[sign_at:]
                    clock = clock[:sign_at]
                    hours, _, minutes = zone[1:].partition(":")
                    offset = (int(hours) * 3600 + int(minutes or 0) * 60) * (1 if zone[0] == "+" else -1)
            hms, _, frac = clock.partition(".")
            hour, minute, second = (int(p) for p in hms.split(":"))
            nanos = int((frac + "000000000")[:9]) if frac else 0
            secs = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
        except ValueError:
            return None
    if not (_MIN_SECONDS <= secs <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        return None
    return secs, nanos


def _fraction(nanos: int, digits: int, trim: bool) -> str:
    text = f"{nanos:09d}"[:digits]
    if trim:
        text = text.rstrip("0")
        return f".{text}" if text else ""
    return f".{text}"


def format_timestamp(value, layout: str = "StampMilli") -> str:
    """Go's Time.Format of the UTC time for one of hubble's --time-format names; "N/A" when not valid."""
    parsed = parse_timestamp(value)
    if parsed is None:
        return "N/A"
    secs, nanos = parsed
    t = time.gmtime(secs)
    ymd = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
    hms = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    if layout == "StampMilli":
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {hms}{_fraction(nanos, 3, False)}"
    if layout == "YearMonthDay":
        return ymd
    if layout == "YearMonthDayHour":
        return f"{ymd}T{t.tm_hour:02d}Z"
    if layout == "YearMonthDayHourMinute":
        return f"{ymd}T{t.tm_hour:02d}:{t.tm_min:02d}Z"
    if layout == "RFC3339":
        return f"{ymd}T{hms}Z"
    if layout == "RFC3339Milli":
        return f"{ymd}T{hms}{_fraction(nanos, 3, True)}Z"
    if layout == "RFC3339Micro":
        return f"{ymd}T{hms}{_fraction(nanos, 6, True)}Z"
    if layout == "RFC3339Nano":
        return f"{ymd}T{hms}{_fraction(nanos, 9, True)}Z"
    if layout == "RFC1123Z":
        return f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} {hms} +0000"
    raise ValueError(f"unknown time format {layout!r}; one of {', '.join(TIME_FORMATS)}")


# ---------------------------------------------------------------------------------------------------------
# the columns of a flow


def _ports(flow: dict) -> tuple[str, str]:
    l4 = _get(flow, "l4")
    if not isinstance(l4, dict):
        return "", ""
    for proto in ("TCP", "UDP", "SCTP"):
        layer = l4.get(proto)
        if isinstance(layer, dict):
            return (str(_int(_get(layer, "source_port", "sourcePort"))),
                    str(_int(_get(layer, "destination_port", "destinationPort"))))
    return "", ""


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _hostname(ip: str, port: str, ns: str, pod: str, svc: str, names, translate: bool) -> str:
    host = ip
    if translate:
        if pod:
            host = posixpath.normpath(f"{ns}/{pod}") if ns else pod  # Go's path.Join drops an empty ns
        elif svc:
            host = posixpath.normpath(f"{ns}/{svc}") if ns else svc
        elif names:
            host = ",".join(str(n) for n in names)
    if port and port != "0":
        return _join_host_port(host, port)
    return host


def host_names(flow: dict, translate: bool = True) -> tuple[str, str]:
    ip = _get(flow, "IP", "ip")
    if not isinstance(ip, dict):
        eth = _get(flow, "ethernet")
        if isinstance(eth, dict):
            return printable(str(eth.get("source") or "")), printable(str(eth.get("destination") or ""))
        return "", ""
    sides = []
    src_port, dst_port = _ports(flow)
    for end, svc_key, svc_camel, names_key, names_camel, address, port in (
            ("source", "source_service", "sourceService", "source_names", "sourceNames", "source", src_port),
            ("destination", "destination_service", "destinationService", "destination_names",
             "destinationNames", "destination", dst_port)):
        endpoint = _get(flow, end) or {}
        ns = str(_get(endpoint, "namespace") or "")
        pod = str(_get(endpoint, "pod_name", "podName") or "")
        svc_name = ""
        service = _get(flow, svc_key, svc_camel)
        if isinstance(service, dict):
            ns = str(service.get("namespace") or "")
            svc_name = str(service.get("name") or "")
        names = _get(flow, names_key, names_camel) or ()
        sides.append(printable(_hostname(str(ip.get(address) or ""), port, ns, pod, svc_name, names, translate)))
    return sides[0], sides[1]


def identity_text(number: int) -> str:
    name = RESERVED_IDENTITY_TEXT.get(number)
    return f"({name})" if name is not None else f"(ID:{number})"


def flow_type(flow: dict) -> str:
    """hubble's TYPE column (GetFlowType)."""
    l7 = _get(flow, "l7")
    if isinstance(l7, dict):
        kind = _enum(_get(l7, "type"), _L7_TYPES).lower()
        protocol = "l7"
        if isinstance(l7.get("http"), dict):
            protocol = "http"
        elif isinstance(l7.get("dns"), dict):
            protocol = "dns"
            kind += " " + str(_get(l7["dns"], "observation_source", "observationSource") or "")
        elif isinstance(l7.get("kafka"), dict):
            protocol = "kafka"
        return f"{protocol}-{kind}"
    event = _get(flow, "event_type", "eventType") or {}
    kind, sub = _int(_get(event, "type")), _int(_get(event, "sub_type", "subType"))
    if kind == 4:  # trace
        return TRACE_POINT_TEXT.get(sub & 0xFF, str(sub & 0xFF))
    if kind == 1:  # drop
        return DROP_REASON_TEXT.get(sub & 0xFF, f"{sub & 0xFF}, 0")
    if kind == 5:  # policy verdict
        match = _int(_get(flow, "policy_match_type", "policyMatchType"))
        direction = _enum(_get(flow, "traffic_direction", "trafficDirection"), _DIRECTIONS)
        return f"policy-verdict:{_MATCH_TYPE.get(match, 'unknown')} {direction}"
    if kind == 3:  # capture
        point = _get(flow, "debug_capture_point", "debugCapturePoint")
        return str(point) if point and not isinstance(point, int) else "DBG_CAPTURE_POINT_UNKNOWN"
    if kind == 7:  # trace-sock
        point = _enum(_get(flow, "sock_xlate_point", "sockXlatePoint"), _SOCK_XLATE_NAMES)
        return _SOCK_XLATE.get(point, point)
    return "UNKNOWN"


def verdict_word(flow: dict) -> str:
    verdict = _enum(_get(flow, "verdict"), _VERDICTS)
    event = _get(flow, "event_type", "eventType") or {}
    if _int(_get(event, "type")) == 5:
        return _POLICY_VERDICT_WORD.get(verdict, verdict)
    return verdict


def summary(flow: dict) -> str:
    """The agent's own summary (the flow's `Summary`), after the IP trace id and before the auth type."""
    parts = ""
    trace = _get(flow, "ip_trace_id", "ipTraceId")
    if isinstance(trace, dict) and _int(_get(trace, "trace_id", "traceId")) > 0:
        parts = f"IP Trace ID: {_int(_get(trace, 'trace_id', 'traceId'))}; "
    parts += printable(str(flow.get("Summary") or flow.get("summary") or ""))
    auth = _enum(_get(flow, "auth_type", "authType"), _AUTH_TYPES)
    if auth != "DISABLED":
        parts += f"; Auth: {auth}"
    return parts


# ---------------------------------------------------------------------------------------------------------
# whole records


class HubblePrinter:
    """Turns GetFlowsResponse objects into hubble's text, with the CLI's options.

    `lines(responses)` yields (stream, text) pairs: stream is "out" or "err" as hubble writes them (node
    status is talk for stderr, shown only when bad); table output is aligned once all rows are in, as Go's
    tabwriter does when the printer closes.
    """

    def __init__(self, output: str = "compact", *, node_name: bool = False, time_format: str = "StampMilli",
                 translate: bool = True, debug: bool = False):
        if output not in ("compact", "table", "dict"):
            raise ValueError(f"not a text output: {output}")
        if time_format not in TIME_FORMATS:  # an unknown layout fails here, before any flow
            raise ValueError(f"unknown time format {time_format!r}; one of {', '.join(TIME_FORMATS)}")
        self.output, self.node_name, self.time_format = output, node_name, time_format
        self.translate, self.debug = translate, debug
        self.count = 0  # records printed on stdout, for the dict separator and the table header

    def _ts(self, value) -> str:
        return format_timestamp(value, self.time_format)

    def flow(self, response: dict) -> str | list[str]:
        f = _get(response, "flow") or {}
        src, dst = host_names(f, self.translate)
        node = printable(str(_get(f, "node_name", "nodeName") or ""))
        if self.output == "compact":
            src_id = identity_text(_int(_get(_get(f, "source") or {}, "identity")))
            dst_id = identity_text(_int(_get(_get(f, "destination") or {}, "identity")))
            reply = _get(f, "is_reply", "isReply")
            arrow = "->"
            if reply is None:
                arrow = "<>"  # the agent could not tell which way
            elif reply is True or (isinstance(reply, dict) and reply.get("value")):
                src, dst, src_id, dst_id, arrow = dst, src, dst_id, src_id, "<-"
            where = f" [{node}]" if self.node_name else ""
            return (f"{self._ts(_get(f, 'time'))}{where}: {src} {src_id} {arrow} {dst} {dst_id} "
                    f"{flow_type(f)} {verdict_word(f)} ({summary(f)})\n")
        cells = [self._ts(_get(f, "time"))] + ([node] if self.node_name else []) + [
            src, dst, flow_type(f), verdict_word(f), summary(f)]
        if self.output == "table":
            return cells
        return self._dict(cells)

    def _dict(self, cells: list[str]) -> str:
        keys = ["  TIMESTAMP: "] + (["       NODE: "] if self.node_name else []) + [
            "     SOURCE: ", "DESTINATION: ", "       TYPE: ", "    VERDICT: ", "    SUMMARY: "]
        head = DICT_SEPARATOR + "\n" if self.count else ""
        return head + "".join(k + c + "\n" for k, c in zip(keys, cells))

    def lost(self, response: dict) -> str | list[str]:
        lost = _get(response, "lost_events", "lostEvents") or {}
        source = printable(str(_get(lost, "source") or "UNKNOWN_LOST_EVENTS_SOURCE"))
        num = _int(_get(lost, "num_events_lost", "numEventsLost"))
        cpu = _get(lost, "cpu")
        cpu = _int(cpu.get("value") if isinstance(cpu, dict) else cpu)
        ts = self._ts(_get(response, "time"))
        first, last = _get(lost, "first"), _get(lost, "last")
        if first is not None and last is not None:  # v1.19 tells the window the losses fell in
            num = f"{num} (first: {self._ts(first)}, last: {self._ts(last)})"
        if self.output == "compact":
            return f"{ts} EVENTS LOST: {source} CPU({cpu}) {num}\n"
        node = printable(str(_get(response, "node_name", "nodeName") or "")) or "-"
        if self.output == "table":
            return [ts] + ([node] if self.node_name else []) + [source, "-", "EVENTS LOST", "-",
                                                               f"CPU({cpu}) - {num}"]
        head = DICT_SEPARATOR + "\n" if self.count else ""
        node = f"       NODE: {node}\n" if self.node_name else ""
        return (f"{head}  TIMESTAMP: {ts}\n{node}     SOURCE: {source}\n       TYPE: EVENTS LOST\n"
                f"    VERDICT: -\n    SUMMARY: CPU({cpu}) - {num}\n")

    def node_status(self, response: dict) -> str | None:
        status = _get(response, "node_status", "nodeStatus") or {}
        state = _enum(_get(status, "state_change", "stateChange"), _NODE_STATES)
        if not self.debug and state not in ("NODE_ERROR", "NODE_UNAVAILABLE"):
            return None  # hubble keeps informal node news for --debug
        names = [printable(str(n)) for n in (_get(status, "node_names", "nodeNames") or ())]
        joined = _join_cut_off(names, ", ", 50)
        message = printable(str(_get(status, "message") or ""))
        ts = self._ts(_get(response, "time"))
        if self.output == "dict":
            quoted = _go_quote(message) if message else "N/A"
            return f"  TIMESTAMP: {ts}\n      STATE: {state}\n      NODES: {joined}\n    MESSAGE: {quoted}\n"
        prefix = f"{ts} [{printable(str(_get(response, 'node_name', 'nodeName') or ''))}]"
        count = len(names)
        text = {"NODE_CONNECTED": f"{prefix}: Receiving flows from {count} nodes: {joined}",
                "NODE_UNAVAILABLE": f"{prefix}: {count} nodes are unavailable: {joined}",
                "NODE_GONE": f"{prefix}: {count} nodes removed from cluster: {joined}",
                "NODE_ERROR": f"{prefix}: Error {_go_quote(message)} on {count} nodes: {joined}"}
        return text.get(state, f"{prefix}: unknown node status event: {state}") + "\n"

    def lines(self, responses: Iterable[dict]) -> Iterator[tuple[str, str]]:
        rows: list[list[str]] = []
        for response in responses:
            if _get(response, "flow") is not None:
                out = self.flow(response)
            elif _get(response, "lost_events", "lostEvents") is not None:
                out = self.lost(response)
            elif _get(response, "node_status", "nodeStatus") is not None:
                text = self.node_status(response)
                if text is not None:
                    if self.output == "dict" and self.count:
                        text = DICT_SEPARATOR + "\n" + text
                    elif self.output == "dict":
                        self.count += 1
                    yield "err", text
                continue
            else:
                continue
            if isinstance(out, list):
                if not rows:
                    rows.append(["TIMESTAMP"] + (["NODE"] if self.node_name else []) + list(TABLE_HEADER[1:]))
                rows.append(out)
            else:
                yield "out", out
            self.count += 1
        if rows:
            yield "out", tab_align(rows)


def tab_align(rows: list[list[str]], padding: int = 3, min_width: int = 2) -> str:
    """Go's text/tabwriter with hubble's settings (minwidth 2, padding 3, spaces): every cell but the last
    of a line is padded to its column's width; widths count characters, not bytes, as tabwriter does."""
    columns = max(len(r) for r in rows) - 1
    widths = [max(min_width, max(len(r[i]) for r in rows if len(r) > i + 1) + padding) for i in range(columns)]
    lines = []
    for row in rows:
        head = "".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1]))
        lines.append(head + row[-1] + "\n")
    return "".join(lines)


def _join_cut_off(elems: list[str], sep: str, target: int) -> str:
    """hubble's joinWithCutOff: at least one name, then as many as fit in `target` characters."""
    length, end = 0, len(elems)
    for i, elem in enumerate(elems):
        length += len(elem) + len(sep)
        if length > target and i > 0:
            end = i
            break
    joined = sep.join(elems[:end])
    omitted = len(elems) - end
    return f"{joined} (and {omitted} more)" if omitted else joined


def _go_quote(text: str) -> str:
    """Go's strconv.Quote for printable text: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
