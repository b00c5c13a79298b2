"""FlowStore: what the front ends show, kept bounded while flows stream in.

Headless (no Textual): the TUI drains its source into `add_events` about ten times a second and redraws only
what `take_changes` says moved. Four things are kept, each with a cap and a counter of what the cap evicted:

- a ring of the most recent flows (for the raw log, drill-in samples and late classification);
- aggregated rows, one per (initiator workload, responder workload, port/proto, verdict, reason), least
  recently seen evicted first. Replies are folded into the row of the connection they answer, so a row reads
  "client -> server:port" whichever way the packet went;
- drops by pod: each drop is charged to the pod that started the connection (its requests are the ones that
  fail, so that is the pod that crashloops), or to the destination pod when the initiator is not a pod (world,
  host). Ranked by drops in the last five minutes of flow time, then by total;
- mesh refusals: connections Cilium forwarded but Istio refuses. The classifier (issue 7) calls
  `mark_refusals`; from then on the connection's attempts count as drops of its initiator, marked as such.

Per-pod counts and ranks use flow time (a replay ranks as the incident did); flows/s and drops/s in the status
bar use the injected clock (arrival rate).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hubbletui.flows.conn import Conn, GroupKey, Port, opens_connection, orient
from hubbletui.flows.model import Endpoint, Event, Flow, LostEvents, NodeStatus

RING_SIZE = 10_000
MAX_ROWS = 5_000
MAX_PODS = 2_000
MAX_REFUSALS = 1_000
MAX_ATTEMPTS_SEEN = 20_000  # recent refused connection attempts, by 5-tuple, so each counts once
MAX_PEERS_PER_POD = 64
MAX_ROWS_PER_POD = 64
MAX_PODS_PER_ROW = 8
RANK_WINDOW_S = 300  # "recent" drops: the last five minutes of flow time rank the pods
RATE_WINDOW_POD_S = 60  # a pod's drops per minute: over the last minute
SLOT_S = 5
_SLOTS = RANK_WINDOW_S // SLOT_S
RATE_WINDOW_S = 5  # flows/s and drops/s: the last five seconds of arrivals
_NS = 1_000_000_000
CONNECTED = "NODE_CONNECTED"


RowKey = GroupKey  # a row: one connection with one verdict (and drop reason)
WOULD_DROP = frozenset(("DROPPED", "AUDIT"))  # AUDIT: policy audit mode passed it, enforcing would drop it


@dataclass(frozen=True)
class Refusal:
    """Why a forwarded connection is a drop after all: the layer that refused it, in words, with evidence."""

    conn: Conn
    summary: str  # "Istio AuthorizationPolicy database/fdb-allow admits no principal cluster.local/ns/..."
    evidence: tuple[str, ...] = ()  # "SYN, SYN-ACK, then RST from the destination after 2 ms", "HTTP 403 ..."
    layer: str = "istio"
    detail: Any = field(default=None, compare=False)  # the classifier's full finding, for the detail screen


class Row:
    """One aggregated row; `src_ep`/`dst_ep` are the initiator and responder as the latest flow named them."""

    __slots__ = ("key", "count", "attempts", "first_ns", "last_ns", "sample", "src_ep", "dst_ep", "direction",
                 "pods", "refusal", "_search")

    def __init__(self, key: RowKey, flow: Flow, src_ep: Endpoint, dst_ep: Endpoint):
        self.key = key
        self.count = 0
        self.attempts = 0  # flows that open a connection (see `opens_connection`)
        self.first_ns = flow.time_ns
        self.last_ns = flow.time_ns
        self.sample = flow
        self.src_ep = src_ep
        self.dst_ep = dst_ep
        self.direction = flow.direction
        self.pods: set[str] = set()  # a few pod refs of either side, for `pod:` filters on workload rows
        self.refusal: Refusal | None = None
        self._search = ""

    @property
    def is_drop(self) -> bool:
        return self.key.verdict in WOULD_DROP or self.refusal is not None

    @property
    def is_audit(self) -> bool:
        return self.key.verdict == "AUDIT"

    @property
    def namespaces(self) -> tuple[str, str]:
        return self.src_ep.namespace, self.dst_ep.namespace

    @property
    def search_text(self) -> str:
        """Lower-case text a free-text filter looks in."""
        if not self._search:
            refused = "refused istio mesh" if self.refusal else ""
            key = self.key
            self._search = " ".join((key.src, key.dst, key.port.text, key.verdict, key.reason, *self.pods,
                                     self.direction, refused)).lower()
        return self._search


class PodDrops:
    """Drops charged to one pod."""

    __slots__ = ("ref", "namespace", "pod", "workload", "endpoint", "total", "refused", "audited", "last_ns", "peers", "reasons",
                 "rows", "_stamps", "_counts", "_search")

    def __init__(self, ep: Endpoint):
        self.ref = f"{ep.namespace}/{ep.pod}"
        self.endpoint = ep  # as Hubble last named it (identity labels, workload): what policy lookups start from
        self.namespace = ep.namespace
        self.pod = ep.pod
        self.workload = ep.workload_name
        self.total = 0
        self.refused = 0  # of which mesh refusals
        self.audited = 0  # of which flows policy audit mode passed
        self.last_ns = 0
        self.peers: Counter[tuple[str, Port, bool]] = Counter()  # (peer ref, port, outgoing) -> drops
        self.reasons: Counter[str] = Counter()
        self.rows: dict[RowKey, int] = {}  # the drop rows this pod is charged for, with their counts
        self._stamps = [0] * _SLOTS  # flow-time slot number each count belongs to
        self._counts = [0] * _SLOTS
        self._search = ""

    def _charge(self, flow: Flow, key: RowKey, ep: Endpoint, peer: str, outgoing: bool, refused: bool) -> None:
        self.total += 1
        if refused:
            self.refused += 1
        elif key.verdict == "AUDIT":
            self.audited += 1
        if flow.time_ns > self.last_ns:
            self.last_ns = flow.time_ns
            self.endpoint = ep
        peers = self.peers
        peers[(peer, key.port, outgoing)] += 1
        if len(peers) > 2 * MAX_PEERS_PER_POD:
            self.peers = Counter(dict(peers.most_common(MAX_PEERS_PER_POD)))
        self.reasons["refused by istio" if refused else
                     f"{key.reason} (audit)" if key.verdict == "AUDIT" else key.reason] += 1
        rows = self.rows
        rows[key] = rows.get(key, 0) + 1
        if len(rows) > 2 * MAX_ROWS_PER_POD:
            self.rows = dict(sorted(rows.items(), key=lambda kv: -kv[1])[:MAX_ROWS_PER_POD])
        slot_no = flow.time_ns // (SLOT_S * _NS)
        i = slot_no % _SLOTS
        if self._stamps[i] != slot_no:
            if self._stamps[i] > slot_no:
                return  # older than the window the slot now holds: counted in total only
            self._stamps[i] = slot_no
            self._counts[i] = 0
        self._counts[i] += 1

    def recent(self, now_ns: int, window_s: int = RANK_WINDOW_S) -> int:
        """Drops in the last ``window_s`` seconds of flow time before ``now_ns`` (to the 5 s slot)."""
        newest = now_ns // (SLOT_S * _NS)
        slots = window_s // SLOT_S
        return sum(c for s, c in zip(self._stamps, self._counts, strict=True) if newest - s < slots)

    def per_minute(self, now_ns: int) -> float:
        return self.recent(now_ns, RATE_WINDOW_POD_S) * 60 / RATE_WINDOW_POD_S

    def top_peer(self) -> tuple[str, Port, bool] | None:
        """(peer ref, port, outgoing) this pod's drops involve most, or None."""
        if not self.peers:
            return None
        return self.peers.most_common(1)[0][0]

    def top_rows(self) -> list[RowKey]:
        return [k for k, _ in sorted(self.rows.items(), key=lambda kv: -kv[1])]

    @property
    def is_refused(self) -> bool:
        return self.refused > 0

    @property
    def search_text(self) -> str:
        if not self._search:
            self._search = f"{self.ref} {self.workload}".lower()
        return self._search + " " + " ".join(self.reasons).lower()


@dataclass
class StoreStats:
    flows: int = 0  # flows added in all
    drops: int = 0  # of which drops, mesh refusal attempts included
    ring_evicted: int = 0  # flows pushed out of the ring of recent flows
    rows_evicted: int = 0  # aggregated rows evicted at the cap ...
    rows_evicted_flows: int = 0  # ... and the flows they had counted
    pods_evicted: int = 0
    refusals_evicted: int = 0
    lost_events: int = 0  # what Hubble reported lost (LostEvents)
    node_states: dict[str, str] = field(default_factory=dict)

    @property
    def unavailable_nodes(self) -> list[str]:
        return sorted(n for n, s in self.node_states.items() if s != CONNECTED)


@dataclass
class Changes:
    """What moved since the last `take_changes`: front ends redraw only these."""

    rows: set[RowKey] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)
    removed_rows: set[RowKey] = field(default_factory=set)
    removed_pods: set[str] = field(default_factory=set)
    flows: int = 0

    def __bool__(self) -> bool:
        return bool(self.rows or self.pods or self.removed_rows or self.removed_pods or self.flows)


class RateMeter:
    """Events per second over the last ``window`` whole seconds of a clock."""

    def __init__(self, window: int = RATE_WINDOW_S):
        self.window = window
        self._slots: deque[list[int]] = deque()

    def add(self, count: int, now: float) -> None:
        sec = int(now)
        slots = self._slots
        if slots and slots[-1][0] == sec:
            slots[-1][1] += count
        else:
            slots.append([sec, count])
        while slots and slots[0][0] <= sec - self.window - 1:
            slots.popleft()

    def rate(self, now: float) -> float:
        # the current second is still filling: average over the whole seconds before it, plus it
        sec = int(now)
        total = sum(c for s, c in self._slots if sec - self.window < s <= sec)
        return total / self.window


class FlowStore:
    def __init__(self, *, ring_size: int = RING_SIZE, max_rows: int = MAX_ROWS, max_pods: int = MAX_PODS,
                 clock: Callable[[], float] = time.time):
        self.clock = clock
        self.ring: deque[Flow] = deque(maxlen=ring_size)
        self.rows: OrderedDict[RowKey, Row] = OrderedDict()  # least recently seen first
        self.pods: OrderedDict[str, PodDrops] = OrderedDict()
        self.refusals: OrderedDict[Conn, Refusal] = OrderedDict()
        self._attempts_seen: OrderedDict[tuple, None] = OrderedDict()
        self.max_rows = max_rows
        self.max_pods = max_pods
        self.stats = StoreStats()
        self.latest_ns = 0  # newest flow time seen: "now" for per-pod windows
        self.flow_rate = RateMeter()
        self.drop_rate = RateMeter()
        self._changes = Changes()

    # ---------------------------------------------------------------------------------------------------
    # input

    def add_events(self, events: Iterable[Event], now: float | None = None) -> int:
        """Add flows and status events; returns how many flows were added."""
        now = self.clock() if now is None else now
        flows = drops = 0
        for event in events:
            if isinstance(event, Flow):
                flows += 1
                drops += self._add(event)
            elif isinstance(event, LostEvents):
                self.stats.lost_events += event.num_lost
            elif isinstance(event, NodeStatus):
                for node in event.node_names:
                    self.stats.node_states[node] = event.state
        if flows:
            self.flow_rate.add(flows, now)
            self._changes.flows += flows
        if drops:
            self.drop_rate.add(drops, now)
        return flows

    def add(self, flow: Flow, now: float | None = None) -> None:
        self.add_events((flow,), now)

    def _add(self, flow: Flow) -> int:
        stats = self.stats
        stats.flows += 1
        ring = self.ring
        if len(ring) == ring.maxlen:
            stats.ring_evicted += 1
        ring.append(flow)
        if flow.time_ns > self.latest_ns:
            self.latest_ns = flow.time_ns

        src, dst, port, reply = orient(flow)
        verdict = flow.verdict
        is_drop = verdict in WOULD_DROP
        key = RowKey(Conn(src.workload_ref, dst.workload_ref, port), verdict, flow.reason_name if is_drop else "")
        row = self.rows.get(key)
        if row is None:
            row = self._new_row(key, flow, src, dst)
        else:
            self.rows.move_to_end(key)
        row.count += 1
        if flow.time_ns >= row.last_ns:
            row.last_ns = flow.time_ns
            if not reply:
                row.sample, row.src_ep, row.dst_ep, row.direction = flow, src, dst, flow.direction
        elif flow.time_ns < row.first_ns:
            row.first_ns = flow.time_ns
        pods = row.pods
        if len(pods) < MAX_PODS_PER_ROW:
            before = len(pods)
            if src.pod:
                pods.add(src.pod)
            if dst.pod:
                pods.add(dst.pod)
            if len(pods) != before:
                row._search = ""
        attempt = opens_connection(flow, reply)
        if attempt:
            row.attempts += 1
        self._changes.rows.add(key)

        if is_drop:
            stats.drops += 1
            self._charge(flow, key, src, dst, refused=False)
            return 1
        if row.refusal is not None and attempt and self._first_sighting(flow, src, dst):
            stats.drops += 1
            self._charge(flow, key, src, dst, refused=True)
            return 1
        return 0

    def _first_sighting(self, flow: Flow, src: Endpoint, dst: Endpoint) -> bool:
        """Hubble reports one packet at several observation points (leaving a node, arriving at the other):
        a refused connection attempt counts once per connection (its 5-tuple), not once per report."""
        five = (src.ip, flow.src_port, dst.ip, flow.dst_port, flow.protocol)
        seen = self._attempts_seen
        if five in seen:
            return False
        seen[five] = None
        if len(seen) > MAX_ATTEMPTS_SEEN:
            seen.popitem(last=False)
        return True

    def _new_row(self, key: RowKey, flow: Flow, src: Endpoint, dst: Endpoint) -> Row:
        row = Row(key, flow, src, dst)
        if key.verdict not in WOULD_DROP:
            row.refusal = self.refusals.get(key.conn)
        self.rows[key] = row
        if len(self.rows) > self.max_rows:
            old_key, old = self.rows.popitem(last=False)
            self.stats.rows_evicted += 1
            self.stats.rows_evicted_flows += old.count
            self._changes.rows.discard(old_key)
            self._changes.removed_rows.add(old_key)
        return row

    def _charge(self, flow: Flow, key: RowKey, src: Endpoint, dst: Endpoint, refused: bool) -> None:
        if src.pod:
            pod_ep, peer, outgoing = src, dst, True
        elif dst.pod:
            pod_ep, peer, outgoing = dst, src, False
        else:
            return
        ref = f"{pod_ep.namespace}/{pod_ep.pod}"
        pod = self.pods.get(ref)
        if pod is None:
            pod = self.pods[ref] = PodDrops(pod_ep)
            if len(self.pods) > self.max_pods:
                old_ref, _ = self.pods.popitem(last=False)
                self.stats.pods_evicted += 1
                self._changes.pods.discard(old_ref)
                self._changes.removed_pods.add(old_ref)
        else:
            self.pods.move_to_end(ref)
        pod._charge(flow, key, pod_ep, peer.ref, outgoing, refused)
        self._changes.pods.add(ref)

    # ---------------------------------------------------------------------------------------------------
    # mesh refusals (issue 7): the classifier watches the same flows and marks the connections it finds refused

    def mark_refusal(self, conn: Conn, summary: str, evidence: Iterable[str] = (), layer: str = "istio",
                     detail: Any = None) -> None:
        self.mark_refusals([Refusal(conn, summary, tuple(evidence), layer, detail)])

    def mark_refusals(self, refusals: Iterable[Refusal]) -> None:
        """Mark connections as refused by the mesh; their attempts so far (those still in the ring) and from
        now on count as drops of the initiating pod. Marking a connection again only updates its evidence."""
        fresh: dict[Conn, Refusal] = {}
        marked: dict[Conn, Refusal] = {}
        for refusal in refusals:
            before = self.refusals.get(refusal.conn)
            if before is None:
                fresh[refusal.conn] = refusal
            if refusal != before:
                marked[refusal.conn] = refusal
            self.refusals[refusal.conn] = refusal
            self.refusals.move_to_end(refusal.conn)
        for key, row in self.rows.items() if marked else ():
            refusal = marked.get(key.conn)
            if refusal is not None and key.verdict not in WOULD_DROP:
                row.refusal = refusal
                row._search = ""
                self._changes.rows.add(key)
        while len(self.refusals) > MAX_REFUSALS:
            self.refusals.popitem(last=False)
            self.stats.refusals_evicted += 1
        if not fresh:
            return
        for flow in self.ring:
            if flow.verdict in WOULD_DROP:
                continue
            oriented = orient(flow)
            conn = oriented.conn
            if conn in fresh and opens_connection(flow, oriented.reply) \
                    and self._first_sighting(flow, oriented.initiator, oriented.responder):
                self.stats.drops += 1
                self._charge(flow, RowKey(conn, flow.verdict, ""), oriented.initiator, oriented.responder,
                             refused=True)

    # ---------------------------------------------------------------------------------------------------
    # output

    def take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def pod_rank(self) -> Callable[[PodDrops], tuple]:
        """The ranking key of pods (higher first): recent drops, then all drops, then the latest drop."""
        now = self.latest_ns

        def rank(p: PodDrops) -> tuple:
            return p.recent(now), p.total, p.last_ns, p.ref

        return rank

    @staticmethod
    def row_rank(order: str = "count") -> Callable[[Row], tuple]:
        """The ranking key of rows (higher first): by count (drops first among equals) or by last seen."""
        if order == "last":
            return lambda r: (r.last_ns, r.count, r.key)
        return lambda r: (r.count, r.is_drop, r.last_ns, r.key)

    def ranked_pods(self, limit: int | None = None,
                    where: Callable[[PodDrops], bool] | None = None) -> list[PodDrops]:
        """Pods by `pod_rank`."""
        pods: Iterable[PodDrops] = self.pods.values()
        if where is not None:
            pods = filter(where, pods)
        rank = self.pod_rank()
        if limit is None:
            return sorted(pods, key=rank, reverse=True)
        return heapq.nlargest(limit, pods, key=rank)

    def top_rows(self, limit: int | None = None, where: Callable[[Row], bool] | None = None,
                 order: str = "count") -> list[Row]:
        """Rows by `row_rank`."""
        rows: Iterable[Row] = self.rows.values()
        if where is not None:
            rows = filter(where, rows)
        rank = self.row_rank(order)
        if limit is None:
            return sorted(rows, key=rank, reverse=True)
        return heapq.nlargest(limit, rows, key=rank)

    def recent_flows(self, limit: int, where: Callable[[Flow], bool] | None = None) -> list[Flow]:
        """Up to ``limit`` newest flows of the ring (oldest first), optionally filtered."""
        out: list[Flow] = []
        for flow in reversed(self.ring):
            if where is None or where(flow):
                out.append(flow)
                if len(out) >= limit:
                    break
        out.reverse()
        return out

    def flows_of(self, conn: Conn, limit: int = 500) -> list[Flow]:
        """Flows of one connection still in the ring (both directions), oldest first."""
        return self.recent_flows(limit, lambda f: orient(f).conn == conn)

    def rows_of(self, conn: Conn) -> Iterator[Row]:
        return (row for key, row in self.rows.items() if key.conn == conn)
