"""One engine per run, and each question asked of it answered once: counted on the built-in demo, and the memo
forgets when the cluster state moves (a stale answer would be a wrong verdict)."""

from __future__ import annotations

from hubbletui import demo
from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.flows.recording import read_events
from hubbletui.policy import engine as engine_module
from hubbletui.policy.engine import PolicyEngine
from hubbletui.suggest.fixes import suggest_groups


def test_suggest_on_the_demo_builds_one_engine_and_answers_repeats_from_the_memo(monkeypatch):
    built = []
    real_init = engine_module.PolicyEngine.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(engine_module.PolicyEngine, "__init__", counting)
    engine = PolicyEngine(load_snapshot(str(demo.cluster_path())))
    groups, _ = suggest_groups(engine, read_events(str(demo.recording_path())))
    assert len(built) == 1  # the mesh-refusal detector and the checker use the run's engine
    assert [g.suggestions != [] for g in groups].count(True) >= 3  # the story's three fixes are found
    counts = engine.memo.counts
    # the same traces and views are asked for from several places; each was computed once
    assert counts["trace-repeat"] > 0 and counts["view-repeat"] > 0
    asked_again = suggest_groups(engine, read_events(str(demo.recording_path())))[0]
    assert [g.to_dict() for g in asked_again] == [g.to_dict() for g in groups]


def test_the_memo_forgets_when_the_followed_state_changes():
    state = ClusterState()
    for obj in ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app", "labels": {}}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "app",
                                                                 "labels": {"app": "a"}},
                 "status": {"podIP": "10.0.0.1"}},
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b", "namespace": "app",
                                                                 "labels": {"app": "b"}},
                 "status": {"podIP": "10.0.0.2"}}):
        state.upsert(obj)
    engine = PolicyEngine(state, follow=True)
    assert engine.trace("app/a", "app/b", 80).verdict == "allowed"
    state.upsert({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                  "metadata": {"name": "deny", "namespace": "app"},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    assert engine.trace("app/a", "app/b", 80).verdict == "denied"
    view = engine.what_if(deletes=[("NetworkPolicy", "app", "deny")])
    assert engine.what_if(deletes=[("NetworkPolicy", "app", "deny")]) is view
    assert view.trace("app/a", "app/b", 80).verdict == "allowed"
