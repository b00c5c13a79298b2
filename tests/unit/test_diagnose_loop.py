"""started_after / resolved_by over a real timeline, with a policy predicate standing in for the engine."""

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import Timeline
from hubbletui.diagnose.loop import resolved_by, started_after


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def deployment(labels):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "exporter", "namespace": "obs"},
            "spec": {"template": {"metadata": {"labels": labels}}}}


def labelled(view) -> bool:
    d = view.get("Deployment", "obs", "exporter")
    return bool(d) and d["spec"]["template"]["metadata"]["labels"].get("role") == "metrics"


def test_started_after_names_the_change_just_before_the_first_drop():
    state, clock = ClusterState(), Clock()
    state.upsert(deployment({"app": "exporter", "role": "metrics"}))
    tl = Timeline(state, clock=clock)
    clock.t = 1010
    state.upsert(deployment({"app": "exporter"}))
    att = started_after(tl, int(1013 * 1e9))
    assert att is not None and att.started_after_text() == (
        "started 3 s after Deployment obs/exporter was modified: spec.template changed")
    assert started_after(tl, int(1100 * 1e9)) is None  # too long after to be the cause


def test_resolved_by_is_the_first_change_that_allows_and_only_if_it_still_does():
    state, clock = ClusterState(), Clock()
    state.upsert(deployment({"app": "exporter"}))
    tl = Timeline(state, clock=clock)
    clock.t = 1020
    state.upsert(deployment({"app": "exporter", "x": "1"}))  # unrelated change
    clock.t = 1030
    state.upsert(deployment({"app": "exporter", "x": "1", "role": "metrics"}))
    att = resolved_by(tl, int(1005 * 1e9), labelled)
    assert att is not None and att.change.time == 1030 and att.seconds == 25
    clock.t = 1040
    state.upsert(deployment({"app": "exporter"}))  # the fix is undone
    assert resolved_by(tl, int(1005 * 1e9), labelled) is None
