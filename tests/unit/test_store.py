"""FlowStore: aggregation into keyed rows, drops charged to pods and ranked, caps with eviction counters,
rates, mesh-refusal marks; and the `/` filter words."""

from __future__ import annotations

import pytest

from hubbletui.flows.model import LostEvents, NodeStatus
from hubbletui.flows.query_text import QueryError, parse_query
from hubbletui.flows.conn import Conn, GroupKey, Port, orient
from hubbletui.flows.store import FlowStore, Refusal
from tui_support import T0, mkflow

EXPORTER = "database/fdb-exporter-5d9c8-abcde"


def test_rows_aggregate_by_workloads_port_verdict_reason():
    store = FlowStore(clock=lambda: 100.0)
    for i in range(5):
        store.add(mkflow(t=i, sport=40000 + i))
    store.add(mkflow(src="database/fdb-exporter-5d9c8-zzzzz", t=6))  # another replica, same workload
    store.add(mkflow(verdict="FORWARDED", t=7))
    assert len(store.rows) == 2
    row = store.rows[GroupKey(Conn("database/fdb-exporter", "database/fdb", Port(4500, "TCP")), "DROPPED", "POLICY_DENIED")]
    assert row.count == 6 and row.attempts == 6
    assert row.first_ns == T0 and row.last_ns == T0 + 6 * 10**9
    assert {"fdb-exporter-5d9c8-abcde", "fdb-exporter-5d9c8-zzzzz", "fdb-0"} <= row.pods
    assert store.stats.flows == 7 and store.stats.drops == 6


def test_replies_fold_into_the_connection_row():
    store = FlowStore()
    store.add(mkflow(verdict="FORWARDED", flags=("SYN",)))
    store.add(mkflow(src="database/fdb-0", dst=EXPORTER, port=40000, sport=4500, verdict="FORWARDED",
                     flags=("SYN", "ACK"), reply=True, src_workload="fdb", dst_workload="fdb-exporter"))
    # without is_reply, a packet from a low port to an ephemeral one is read as a reply
    store.add(mkflow(src="database/fdb-0", dst=EXPORTER, port=40000, sport=4500, verdict="FORWARDED",
                     flags=("ACK",), reply=None, src_workload="fdb", dst_workload="fdb-exporter"))
    assert list(store.rows) == [GroupKey(Conn("database/fdb-exporter", "database/fdb", Port(4500, "TCP")), "FORWARDED", "")]
    row = next(iter(store.rows.values()))
    assert row.count == 3 and row.attempts == 1
    assert row.src_ep.pod == EXPORTER.split("/")[1]  # the sample keeps the request's orientation


def test_drops_are_charged_to_the_initiating_pod_and_ranked():
    store = FlowStore()
    for i in range(10):
        store.add(mkflow(t=i))
    for i in range(3):  # prometheus dropped on ingress at the exporter: prometheus started it
        store.add(mkflow(src="monitoring/prometheus-0", dst=EXPORTER, port=9100, direction="INGRESS", t=i,
                         src_workload="prometheus", dst_workload="fdb-exporter"))
    store.add(mkflow(src="world", dst="database/fdb-0", port=443, direction="INGRESS", src_workload=None,
                     src_ip="203.0.113.9", t=1))
    ranked = store.ranked_pods()
    assert [p.ref for p in ranked] == [f"database/{EXPORTER.split('/')[1]}", "monitoring/prometheus-0",
                                       "database/fdb-0"]
    exporter = ranked[0]
    assert exporter.total == 10 and exporter.top_peer() == ("database/fdb-0", Port(4500, "TCP"), True)
    assert ranked[2].top_peer() == ("world", Port(443, "TCP"), False)  # no pod started it: the destination is charged
    assert exporter.recent(store.latest_ns) == 10
    assert exporter.per_minute(store.latest_ns) == 10.0
    assert exporter.top_rows()[0].port.text == "4500/TCP"


def test_ranking_prefers_recent_drops_in_flow_time():
    store = FlowStore()
    for i in range(50):  # an old burst ...
        store.add(mkflow(src="a/old-1", src_workload="old", t=i * 0.1))
    for i in range(5):  # ... and a pod dropping now, 10 minutes later
        store.add(mkflow(src="b/new-1", src_workload="new", t=600 + i))
    store.add(mkflow(src="c/mid-1", src_workload="mid", t=500))  # in the ranking window, not the rate's
    assert [p.ref for p in store.ranked_pods()] == ["b/new-1", "c/mid-1", "a/old-1"]
    assert store.pods["a/old-1"].recent(store.latest_ns) == 0
    assert store.pods["c/mid-1"].per_minute(store.latest_ns) == 0 and store.pods["b/new-1"].per_minute(
        store.latest_ns) == 5


def test_caps_evict_least_recent_and_count_it():
    store = FlowStore(ring_size=100, max_rows=10, max_pods=5)
    for i in range(30):
        store.add(mkflow(src=f"ns/pod-{i}", src_workload=None, t=i))
    assert len(store.ring) == 30 and store.stats.ring_evicted == 0
    assert len(store.rows) == 10 and store.stats.rows_evicted == 20 and store.stats.rows_evicted_flows == 20
    assert len(store.pods) == 5 and store.stats.pods_evicted == 25
    assert "ns/pod-29" in store.pods and "ns/pod-0" not in store.pods
    for i in range(200):
        store.add(mkflow(t=100 + i))
    assert len(store.ring) == 100 and store.stats.ring_evicted == 130
    changes = store.take_changes()
    assert GroupKey(Conn("ns/pod-0", "database/fdb", Port(4500, "TCP")), "DROPPED", "POLICY_DENIED") in changes.removed_rows


def test_changes_say_what_moved():
    store = FlowStore()
    store.add(mkflow())
    first = store.take_changes()
    assert first.flows == 1 and len(first.rows) == 1 and first.pods == {EXPORTER}
    assert not store.take_changes()
    store.add(mkflow(verdict="FORWARDED"))
    second = store.take_changes()
    assert second.pods == set() and len(second.rows) == 1


def test_rates_use_the_clock_over_a_window():
    now = [1000.0]
    store = FlowStore(clock=lambda: now[0])
    store.add_events([mkflow(verdict="FORWARDED") for _ in range(40)] + [mkflow() for _ in range(10)])
    assert store.flow_rate.rate(now[0]) == 50 / 5
    assert store.drop_rate.rate(now[0]) == 10 / 5
    now[0] += 10
    assert store.flow_rate.rate(now[0]) == 0


def test_status_events_count_losses_and_unavailable_nodes():
    store = FlowStore()
    store.add_events([LostEvents(T0, "HUBBLE_RING_BUFFER", 12, 1, "n1", None),
                      NodeStatus(T0, "NODE_UNAVAILABLE", ("worker-2", "worker-3"), "", "", None),
                      NodeStatus(T0, "NODE_CONNECTED", ("worker-3",), "", "", None)])
    assert store.stats.lost_events == 12
    assert store.stats.unavailable_nodes == ["worker-2"]


def _refused_attempts(store, n, t0=0.0):
    for i in range(n):
        t = t0 + i
        client_port = 41000 + int(t0) * 10 + i  # a new connection each time
        store.add(mkflow(verdict="FORWARDED", flags=("SYN",), t=t, sport=client_port))
        store.add(mkflow(src="database/fdb-0", dst=EXPORTER, port=client_port, sport=4500, verdict="FORWARDED",
                         flags=("SYN", "ACK"), reply=True, t=t + 0.001, src_workload="fdb",
                         dst_workload="fdb-exporter"))
        store.add(mkflow(src="database/fdb-0", dst=EXPORTER, port=client_port, sport=4500, verdict="FORWARDED",
                         flags=("RST",), reply=True, t=t + 0.003, src_workload="fdb", dst_workload="fdb-exporter"))


def test_mesh_refusals_count_as_drops_of_the_initiator_from_the_ring_and_after():
    store = FlowStore()
    _refused_attempts(store, 4)
    assert store.pods == {} and store.stats.drops == 0
    conn = Conn("database/fdb-exporter", "database/fdb", Port(4500, "TCP"))
    store.mark_refusal(conn, "AuthorizationPolicy database/fdb admits no rule for the exporter's principal",
                       ["4 connections reset by the destination within 3 ms"])
    pod = store.pods[EXPORTER]
    assert pod.total == 4 and pod.refused == 4 and pod.is_refused
    row = store.rows[GroupKey(conn, "FORWARDED", "")]
    assert row.is_drop and row.refusal.layer == "istio"
    _refused_attempts(store, 2, t0=10)
    assert pod.total == 6 and store.stats.drops == 6
    # Hubble reports the same SYN again at another observation point: still one attempt
    store.add(mkflow(verdict="FORWARDED", flags=("SYN",), t=11.0005, sport=41101))
    assert pod.total == 6
    # marking again updates the evidence without counting the ring twice
    store.mark_refusals([Refusal(conn, "updated", ("6 resets",))])
    assert pod.total == 6 and row.refusal.summary == "updated"
    assert parse_query("verdict:refused").match_row(row)
    assert parse_query("verdict:refused").match_pod(pod)


def test_orient_names_icmp_by_the_request_type_and_turns_replies_around():
    request = mkflow(verdict="FORWARDED", reply=None)._replace(protocol="ICMPv4", dst_port=8, src_port=0,
                                                                tcp_flags=())
    reply = request._replace(source=request.destination, destination=request.source, dst_port=0)
    assert orient(request).port.text == "ICMPv4 type 8" and not orient(request).reply
    turned = orient(reply)
    assert turned.reply and turned.conn == orient(request).conn  # the echo reply belongs to the request's row


def test_recent_flows_and_flows_of_a_connection():
    store = FlowStore()
    _refused_attempts(store, 3)
    store.add(mkflow(dst="database/other-0", dst_workload="other", t=20))
    conn = Conn("database/fdb-exporter", "database/fdb", Port(4500, "TCP"))
    assert len(store.flows_of(conn)) == 9
    last = store.recent_flows(2)
    assert last[-1].destination.pod == "other-0" and len(last) == 2


# ---------------------------------------------------------------------------------------------------------
# the `/` filter


def test_query_words_and_prefixes():
    store = FlowStore()
    store.add(mkflow())
    store.add(mkflow(src="monitoring/prometheus-0", dst=EXPORTER, port=9100, direction="INGRESS",
                     src_workload="prometheus", dst_workload="fdb-exporter", verdict="FORWARDED"))
    rows = list(store.rows.values())

    def shown(text):
        q = parse_query(text)
        return [r.key.port.text for r in rows if q.match_row(r)]

    assert shown("") == ["4500/TCP", "9100/TCP"]
    assert shown("ns:monitoring") == ["9100/TCP"]
    assert shown("ns:database") == ["4500/TCP", "9100/TCP"]
    assert shown("verdict:drop") == ["4500/TCP"]
    assert shown("verdict:FORWARDED pod:prom") == ["9100/TCP"]
    assert shown("port:4500") == ["4500/TCP"]
    assert shown("denied") == ["4500/TCP"]
    assert shown("!denied") == ["9100/TCP"]
    assert shown("fdb-0") == ["4500/TCP"]
    assert shown("http://x:1/[bold]") == []  # a colon that is no known prefix is plain text


def test_query_errors_are_one_line():
    with pytest.raises(QueryError, match="verdict:x"):
        parse_query("verdict:x")
    with pytest.raises(QueryError, match="port"):
        parse_query("port:http")
    with pytest.raises(QueryError, match="value"):
        parse_query("ns:")
    assert parse_query('"two words"').text == ("two words",)
    assert parse_query('"unbalanced').text == ('"unbalanced',)


def test_query_matches_flows_and_pods():
    flow = mkflow()
    q = parse_query("ns:database verdict:dropped exporter")
    assert q.match_flow(flow) and not parse_query("ns:monitoring").match_flow(flow)
    store = FlowStore()
    store.add(flow)
    pod = store.pods[EXPORTER]
    assert q.match_pod(pod) and not parse_query("verdict:forwarded").match_pod(pod)
    assert parse_query("port:4500").match_pod(pod)
