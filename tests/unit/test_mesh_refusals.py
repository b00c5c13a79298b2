"""Mesh refusals (issue 7): connections Cilium forwarded and Istio refused, found from the policy and the packets.

The fixtures (tests/fixtures/mesh/, written by scripts/make_mesh_fixtures.py) are an Istio mesh snapshot and a
recording shaped after real Hubble lines; the story is in the script's docstring.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

import paths
from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.diagnose.connections import ConnectionTracker
from hubbletui.flows.conn import Conn, GroupKey, Port
from hubbletui.flows.model import L7, Endpoint, Flow
from hubbletui.flows.recording import read_events
from hubbletui.policy.engine import PolicyEngine
from hubbletui.diagnose.mesh_refusals import (AUTHZ_DENIED, MTLS_STRICT_PLAINTEXT, POLICY_WOULD_REFUSE, REFUSED,
                                            MeshRefusalDetector)

FIXTURES = paths.FIXTURES / "mesh"
MS = 1_000_000


@pytest.fixture(scope="module")
def events() -> list:
    return list(read_events(str(FIXTURES / "incident.jsonl")))


@pytest.fixture
def state() -> ClusterState:
    return load_snapshot(FIXTURES)


@pytest.fixture
def detector(state, events) -> MeshRefusalDetector:
    d = MeshRefusalDetector(PolicyEngine(state, follow=True))
    d.observe_events(events)
    return d


def by_pair(refusals) -> dict:
    return {(r.source, r.destination, r.port): r for r in refusals}


# ------------------------------------------------------------------------------------------------ fixtures

def test_fixtures_are_what_the_script_writes(tmp_path):
    subprocess.run([sys.executable, str(paths.ROOT / "scripts" / "make_mesh_fixtures.py"), str(tmp_path)], check=True)
    for name in ("cluster.yaml", "incident.jsonl"):
        assert (tmp_path / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name}: rerun the script"


def test_fixture_recording_reads_cleanly(events, state):
    assert len(events) > 400 and all(isinstance(e, Flow) for e in events)
    assert not state.warnings and state.counts()["PeerAuthentication"] == 2


# ------------------------------------------------------------------------------------------------ classification

def test_crashlooping_client_is_refused_by_authorization_policy(detector):
    refusal = by_pair(detector.refusals())[("shop/checkout", "shop/payments", 8080)]
    assert refusal.key == GroupKey(Conn("shop/checkout", "shop/payments", Port(8080, "TCP")), "FORWARDED", AUTHZ_DENIED)
    assert refusal.layer == "istio" and refusal.status == REFUSED and refusal.confidence == "high"
    assert refusal.source_principal == "cluster.local/ns/shop/sa/checkout"
    ev = refusal.evidence
    assert (ev.attempts, ev.handshakes, ev.quick_closes, ev.quick_resets) == (12, 12, 12, 8)
    assert ev.silent_closes == 0  # the sidecar finished its TLS handshake before refusing
    assert all(c.delay_ns < 5 * MS for c in ev.closes)
    decision = refusal.decision
    assert not decision.allowed and decision.action == "ALLOW"
    assert decision.applicable_allow == ("shop/payments-allow",)
    assert decision.nearest[0].fields == ("principals",)
    assert refusal.istio.layer == "istio" and refusal.istio.verdict == "denied"
    assert "no ALLOW policy admits cluster.local/ns/shop/sa/checkout on 8080" in refusal.summary
    assert refusal.conn == Conn("shop/checkout", "shop/payments", Port(8080, "TCP"))
    assert refusal.count == 12
    assert any("12 closed by the destination right after the handshake" in line for line in refusal.evidence_lines())
    assert any(line.startswith("nearest: shop/payments-allow rule 0 lacks principal")
               for line in refusal.detail_lines())


def test_admitted_workload_with_quick_closes_is_not_flagged(detector):
    evidence = detector.tracker.group(Conn("shop/frontend", "shop/payments", Port(8080, "TCP"))).freeze()
    assert evidence.quick_closes == 8  # payments closes its short connections within ms ...
    pairs = by_pair(detector.refusals())
    assert ("shop/frontend", "shop/payments", 8080) not in pairs  # ... and Istio admits frontend
    assert ("shop/frontend", "shop/catalog", 9080) not in pairs


def test_evidence_without_mesh_is_not_a_refusal(detector):
    evidence = detector.tracker.group(Conn("legacy/batch", "legacy/web", Port(8000, "TCP"))).freeze()
    assert evidence.quick_closes == 4 and evidence.silent_closes == 4
    assert ("legacy/batch", "legacy/web", 8000) not in by_pair(detector.refusals())


def test_plaintext_to_strict_mtls_workload(detector):
    refusal = by_pair(detector.refusals())[("legacy/batch", "shop/ledger", 5432)]
    assert refusal.reason == MTLS_STRICT_PLAINTEXT and refusal.status == REFUSED
    assert refusal.mtls.mode == "STRICT" and refusal.mtls.decided_by == "shop/ledger-strict"
    assert refusal.decision is None and refusal.source_principal is None
    assert refusal.istio.reason == "mtls-strict" and "no injection enabled" in refusal.istio.mesh.source_in_mesh
    assert refusal.summary.startswith("plaintext to a STRICT mTLS workload")
    assert refusal.evidence.silent_closes == 5


def test_http_403_for_a_principal_no_allow_admits(detector):
    refusal = by_pair(detector.refusals())[("shop/search", "shop/catalog", 9080)]
    assert refusal.reason == AUTHZ_DENIED and refusal.status == REFUSED
    assert refusal.evidence.http_403 == 6 and refusal.evidence.quick_closes == 0
    assert refusal.count == 6 and not refusal.requests


def test_conditional_deny_names_the_refused_requests(detector):
    refusal = by_pair(detector.refusals())[("shop/reviewer", "shop/catalog", 9080)]
    assert refusal.decision.action == "DENY"
    assert refusal.decision.matched == ("shop/catalog-deny-admin", 0)
    assert refusal.requests == ("GET /admin/stats",)


def test_policy_without_packet_evidence_is_low_confidence(detector):
    refusal = by_pair(detector.refusals())[("shop/checkout", "shop/audit", 9090)]
    assert refusal.status == POLICY_WOULD_REFUSE and refusal.confidence == "low"
    assert refusal.decision.action == "DENY"
    assert refusal.decision.matched == ("shop/audit-deny-checkout", 0)
    assert refusal.summary.startswith("policy would refuse")


def test_refusals_order_and_json(detector):
    refusals = detector.refusals()
    assert [r.status for r in refusals] == sorted((r.status for r in refusals), key=lambda s: s != REFUSED)
    assert len(refusals) == 5
    for refusal in refusals:
        data = json.loads(json.dumps(refusal.to_dict()))
        assert data["layer"] == "istio" and data["reason"] in (AUTHZ_DENIED, MTLS_STRICT_PLAINTEXT)
        assert data["evidence"]["lines"] == list(refusal.evidence_lines())


def test_fixing_the_policy_clears_the_refusal_as_state_changes(detector, state):
    policy = copy.deepcopy(state.get("AuthorizationPolicy", "shop", "payments-allow"))
    policy["spec"]["rules"][0]["from"][0]["source"]["principals"].append("cluster.local/ns/shop/sa/checkout")
    state.upsert(policy)
    strict = copy.deepcopy(state.get("PeerAuthentication", "shop", "ledger-strict"))
    strict["spec"]["mtls"]["mode"] = "PERMISSIVE"
    state.upsert(strict)
    pairs = by_pair(detector.refusals())
    assert ("shop/checkout", "shop/payments", 8080) not in pairs
    assert ("legacy/batch", "shop/ledger", 5432) not in pairs
    assert ("shop/search", "shop/catalog", 9080) in pairs


def test_a_fix_checked_on_a_what_if_view_admits_the_refused_source(detector):
    # how `suggest` checks an AuthorizationPolicy fix for a refusal (the integration proposed to its owner)
    from hubbletui.policy import istio_layer
    refusal = by_pair(detector.refusals())[("shop/checkout", "shop/payments", 8080)]
    engine = detector.engine
    nearest = refusal.decision.nearest[0].policy  # "shop/payments-allow"
    policy = copy.deepcopy(engine.state.get("AuthorizationPolicy", *nearest.split("/")))
    policy["spec"]["rules"][0]["from"][0]["source"]["principals"].append(refusal.source_principal)
    view = engine.what_if(upserts=[policy])
    assert istio_layer.evaluate(view, refusal.src, refusal.dst, refusal.port, "TCP").verdict == "allowed"
    assert view.trace(refusal.src, refusal.dst, refusal.port).verdict == "allowed"
    assert ("shop/checkout", "shop/payments", 8080) in by_pair(detector.refusals())  # the base is untouched


# A stale snapshot: the pods were replaced (new names) or are gone. The engine's subject_for_endpoint stands in
# the workload (its pod template) or, with no workload either, a subject made from Hubble's labels; the refusal
# must still be found from either.
@pytest.mark.parametrize("gone", [("Pod",), ("Pod", "Deployment")])
def test_stale_snapshot_still_finds_the_refusals(state, events, gone):
    for kind in gone:
        for obj in state.list(kind):
            state.delete(kind, (obj["metadata"]["namespace"], obj["metadata"]["name"]))
    detector = MeshRefusalDetector(PolicyEngine(state, follow=True))
    detector.observe_events(events)
    pairs = by_pair(detector.refusals())
    refusal = pairs[("shop/checkout", "shop/payments", 8080)]
    assert refusal.reason == AUTHZ_DENIED and refusal.source_principal == "cluster.local/ns/shop/sa/checkout"
    assert pairs[("legacy/batch", "shop/ledger", 5432)].reason == MTLS_STRICT_PLAINTEXT
    assert ("shop/frontend", "shop/payments", 8080) not in pairs


def test_classify_one_connection_without_evidence(detector, events):
    sample = next(e for e in events if e.source.pod.startswith("checkout") and e.dst_port == 8080)
    refusal = detector.classify(sample.source, sample.destination, 8080)
    assert refusal is not None and refusal.status == REFUSED  # the tracker holds its group's evidence
    fresh = MeshRefusalDetector(detector.engine)
    assert fresh.classify(sample.source, sample.destination, 8080).status == POLICY_WOULD_REFUSE
    admitted = next(e for e in events if e.source.pod.startswith("frontend") and e.dst_port == 8080)
    assert fresh.classify(admitted.source, admitted.destination, 8080) is None
    assert fresh.classify(sample.source, sample.destination, 8080, "UDP") is None


def test_sidecar_ports_are_not_refusals(state):
    detector = MeshRefusalDetector(PolicyEngine(state, follow=True))
    checkout, payments = endpoint("checkout", "10.0.1.11"), endpoint("payments", "10.0.2.20")
    for flow in connection(0, checkout, payments, 41001, 15090, ("RST",)):
        detector.observe(flow)
    assert detector.refusals() == []


def test_sniffed_port_needs_tcp_evidence(state):
    # port 7070 is declared by no Service: Istio sniffs. An ALLOW rule with methods admits checkout's HTTP
    # requests and never its TCP: only connections closed right after setup make it a refusal.
    state.upsert({"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                  "metadata": {"name": "payments-admin", "namespace": "shop"},
                  "spec": {"selector": {"matchLabels": {"app": "payments"}}, "rules": [
                      {"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/checkout"]}}],
                       "to": [{"operation": {"ports": ["7070"], "methods": ["GET"]}}]}]}})
    checkout, payments = endpoint("checkout", "10.0.1.11"), endpoint("payments", "10.0.2.20")
    detector = MeshRefusalDetector(PolicyEngine(state, follow=True))
    detector.observe(tcp(0, checkout, payments, 41001, 7070, ("SYN",), False))
    assert detector.refusals() == []
    for flow in connection(10 * MS, checkout, payments, 41002, 7070, ("RST",)):
        detector.observe(flow)
    (refusal,) = detector.refusals()
    assert refusal.port == 7070 and any("sniffs" in note for note in refusal.notes)


def test_store_ranks_refused_pods_through_mark_refusals(detector, events):
    # the TUI's integration, as proposed to its owner
    from hubbletui.flows.store import FlowStore, Refusal
    store = FlowStore(clock=lambda: 0.0)
    store.add_events(events, now=0.0)
    store.mark_refusals(Refusal(r.conn, r.summary, r.evidence_lines()) for r in detector.refusals())
    top = store.ranked_pods(limit=1)[0]
    assert top.pod.startswith("checkout") and top.is_refused


# ------------------------------------------------------------------------------------------------ the tracker

def endpoint(app: str, ip: str, namespace: str = "shop") -> Endpoint:
    labels = (f"k8s:app={app}", f"k8s:io.kubernetes.pod.namespace={namespace}",
              f"k8s:io.cilium.k8s.policy.serviceaccount={app}", "k8s:security.istio.io/tlsMode=istio")
    return Endpoint(namespace, f"{app}-5d8f7c9b6d-{app[:3]}{len(app)}x", labels, 1, (("Deployment", app),), ip, "")


def tcp(t: int, client: Endpoint, server: Endpoint, cport: int, sport: int, flags: tuple[str, ...], reply: bool,
        verdict: str = "FORWARDED", protocol: str = "TCP", l7: L7 | None = None) -> Flow:
    src, dst, sp, dp = (server, client, sport, cport) if reply else (client, server, cport, sport)
    return Flow(t, verdict, 0, "", "EGRESS", src, dst, protocol, sp, dp, flags, l7, "n", reply, 4, 0, "L3_L4",
                0, "TO_ENDPOINT", (), (), (), (), None)


def connection(t: int, client: Endpoint, server: Endpoint, cport: int, sport: int, close: tuple[str, ...],
               close_after_ns: int = 2 * MS, server_data: bool = False) -> list[Flow]:
    flows = [tcp(t, client, server, cport, sport, ("SYN",), False),
             tcp(t + 100_000, client, server, cport, sport, ("SYN", "ACK"), True),
             tcp(t + 200_000, client, server, cport, sport, ("ACK",), False)]
    if server_data:
        flows.append(tcp(t + 300_000, client, server, cport, sport, ("PSH", "ACK"), True))
    flows.append(tcp(t + 100_000 + close_after_ns, client, server, cport, sport, close, True))
    return flows


A, B = endpoint("client", "10.0.0.1"), endpoint("server", "10.0.0.2")
KEY = Conn("shop/client", "shop/server", Port(80, "TCP"))


def test_each_packet_counts_once_whatever_the_observation_points():
    tracker = ConnectionTracker()
    for flow in connection(0, A, B, 40000, 80, ("RST",)):
        tracker.observe(flow)
        tracker.observe(flow._replace(time_ns=flow.time_ns + 50_000, trace_point="TO_OVERLAY"))
    ev = tracker.group(KEY).freeze()
    assert (ev.attempts, ev.handshakes, ev.quick_closes, ev.quick_resets, ev.silent_closes) == (1, 1, 1, 1, 1)


def test_late_or_client_first_closes_are_not_quick_closes():
    tracker = ConnectionTracker()
    for flow in connection(0, A, B, 40001, 80, ("FIN", "ACK"), close_after_ns=200 * MS, server_data=True):
        tracker.observe(flow)
    second = 10**9
    client_first = connection(second, A, B, 40002, 80, ("FIN", "ACK"))
    client_first.insert(-1, tcp(second + MS, A, B, 40002, 80, ("FIN", "ACK"), False))
    for flow in client_first:
        tracker.observe(flow)
    ev = tracker.group(KEY).freeze()
    assert ev.attempts == 2 and ev.quick_closes == 0 and ev.carried_on == 2


def test_reset_instead_of_syn_ack_and_syn_ack_without_syn():
    tracker = ConnectionTracker()
    tracker.observe(tcp(0, A, B, 40003, 80, ("SYN",), False))
    tracker.observe(tcp(1000, A, B, 40003, 80, ("RST", "ACK"), True))
    for flow in connection(MS, A, B, 40004, 80, ("RST",))[1:]:  # the capture missed the SYN
        tracker.observe(flow)
    ev = tracker.group(KEY).freeze()
    assert ev.reset_at_connect == 1 and ev.attempts == 2 and ev.quick_closes == 1


def test_only_passed_tcp_flows_count_and_403s_need_http():
    tracker = ConnectionTracker()
    tracker.observe(tcp(0, A, B, 40005, 80, ("SYN",), False, verdict="DROPPED"))
    tracker.observe(tcp(0, A, B, 40005, 80, (), False, protocol="UDP"))
    assert tracker.groups() == []
    tracker.observe(tcp(0, A, B, 40006, 80, (), True, l7=L7("RESPONSE", "http", "GET", "http://server/x", 403, 1)))
    tracker.observe(tcp(0, A, B, 40006, 80, (), True, l7=L7("RESPONSE", "http", "GET", "http://server/y", 200, 1)))
    ev = tracker.group(KEY).freeze()
    assert ev.http_403 == 1 and ev.forbidden[0].url == "http://server/x" and tracker.group(KEY).http_seen


def test_port_reuse_after_settling_is_a_new_attempt():
    tracker = ConnectionTracker()
    for t in (0, 6 * 10**9):
        for flow in connection(t, A, B, 40007, 80, ("RST",)):
            tracker.observe(flow)
    assert tracker.group(KEY).freeze().attempts == 2


def test_tracker_tables_are_bounded_and_count_evictions():
    tracker = ConnectionTracker(max_connections=100, max_groups=10)
    for i in range(5_000):
        server = B._replace(workloads=(("Deployment", f"server{i % 50}"),))
        tracker.observe(tcp(i * 1000, A, server, 30000 + i % 30000, 80, ("SYN",), False))
    assert tracker.open_connections <= 100
    assert tracker.stats.connections_evicted == 4_900
    assert len(tracker.groups()) == 10 and tracker.stats.groups_evicted > 0
    # old connections are settled as new SYNs arrive: the table drains without hitting its cap
    settling = ConnectionTracker(max_connections=100)
    for i in range(1_000):
        settling.observe(tcp(i * 10**9, A, B, 30000 + i, 80, ("SYN",), False))
    assert settling.open_connections <= 7 and settling.stats.connections_evicted == 0
