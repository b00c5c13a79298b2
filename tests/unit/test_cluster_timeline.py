"""The cluster timeline: old/new versions per change, a view as of a time, and its bounded window."""

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import Timeline, changed_fields


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def cnp(egress):
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "database"},
            "spec": {"endpointSelector": {}, "egress": egress}}


def pod(name, labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels}}


def test_view_puts_back_the_version_each_object_had_at_that_time():
    state, clock = ClusterState(), Clock()
    state.upsert(cnp([]))
    state.upsert(pod("exporter-1", {"app": "exporter"}))
    tl = Timeline(state, clock=clock)
    clock.t = 1010
    state.upsert(cnp([{"toEndpoints": [{}]}]))
    clock.t = 1020
    state.delete("Pod", ("shop", "exporter-1"))
    state.upsert(pod("exporter-2", {"app": "exporter", "team": "obs"}))

    before = tl.state_at(1005)
    assert before.get("CiliumNetworkPolicy", "database", "default-deny")["spec"]["egress"] == []
    assert [p["metadata"]["name"] for p in before.list("Pod")] == ["exporter-1"]
    middle = tl.state_at(1015)
    assert middle.get("CiliumNetworkPolicy", "database", "default-deny")["spec"]["egress"] == [{"toEndpoints": [{}]}]
    assert [p["metadata"]["name"] for p in middle.list("Pod")] == ["exporter-1"]
    now = tl.state_at(1020)
    assert [p["metadata"]["name"] for p in now.list("Pod")] == ["exporter-2"]
    assert before.complete and now.complete

    modified = tl.entries()[0]
    assert modified.describe() == "CiliumNetworkPolicy database/default-deny was modified: spec.egress changed"
    assert [e.action for e in tl.entries(since=1010)] == ["deleted", "created"]


def test_window_bounds_by_count_and_age_and_says_when_a_time_is_older():
    state, clock = ClusterState(), Clock()
    tl = Timeline(state, max_changes=3, max_age_s=100, clock=clock)
    for i in range(5):
        clock.t = 1000 + i
        state.upsert(pod(f"p{i}", {"i": str(i)}))
    assert len(tl.entries()) == 3 and tl.evicted == 2
    assert not tl.state_at(1000.5).complete
    assert tl.state_at(1002).complete
    clock.t = 1200
    state.upsert(pod("late", {}))
    assert [e.key[1] for e in tl.entries()] == ["late"]


def test_an_identical_resend_is_not_a_change_and_fields_ignore_bookkeeping():
    state, clock = ClusterState(), Clock()
    tl = Timeline(state, clock=clock)
    state.upsert(pod("a", {"x": "1"}))
    state.upsert(pod("a", {"x": "1"}))
    assert len(tl.entries()) == 1
    old = pod("a", {"x": "1"}) | {"status": {"phase": "Pending"}}
    new = pod("a", {"x": "2"}) | {"status": {"phase": "Running"}}
    new["metadata"]["resourceVersion"] = "9"
    assert changed_fields(old, new) == ["metadata.labels"]


def test_views_in_any_time_order_match_a_replay_of_the_log_and_survive_later_changes():
    # each object keeps its own change list: a view asked for out of order, or held while changes keep
    # coming, must still answer exactly what the cluster was at its time
    state, clock = ClusterState(), Clock()
    state.upsert(pod("a", {"gen": "0"}))
    tl = Timeline(state, max_changes=4, max_age_s=1e9, clock=clock)
    for gen in range(1, 7):
        clock.t = 1000 + gen
        state.upsert(pod("a", {"gen": str(gen)}))
    held = tl.state_at(1003.5)
    clock.t = 1010
    state.delete("Pod", ("shop", "a"))
    for t, want in ((1006.5, "6"), (1003.5, "3"), (1004, "4"), (1005.2, "5")):
        assert tl.state_at(t).get("Pod", "shop", "a")["metadata"]["labels"]["gen"] == want
    assert held.get("Pod", "shop", "a")["metadata"]["labels"]["gen"] == "3"
    assert [p["metadata"]["labels"]["gen"] for p in held.list("Pod")] == ["3"]
    assert tl.state_at(1010).get("Pod", "shop", "a") is None and tl.state_at(1010).list("Pod") == []
    # four changes kept (gens 4..6 and the delete): a time before gen 4 is outside the window
    assert not tl.state_at(1002.5).complete and tl.state_at(1003).complete
