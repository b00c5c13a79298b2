"""A bundle's change log round-trips through a real file, and a truncated log is read up to the damage."""

from hubbletui.cluster.changelog import read_changes, replay_into, write_change
from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import Timeline


def deployment(labels):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "exporter", "namespace": "obs"},
            "spec": {"template": {"metadata": {"labels": labels}}}}


def test_round_trip_and_truncation(tmp_path):
    clock = [100.0]
    live = ClusterState()
    live.upsert(deployment({"app": "e"}))
    tl = Timeline(live, clock=lambda: clock[0])
    path = tmp_path / "changes.jsonl"
    with path.open("w") as out:
        unsubscribe = live.subscribe(lambda _c: write_change(out, tl.entries()[-1]))
        for t, labels in ((110.0, {"app": "e", "role": "m"}), (120.0, {"app": "e", "role": "n"})):
            clock[0] = t
            live.upsert(deployment(labels))
        unsubscribe()
    text = path.read_text()
    path.write_text(text[: len(text) - 20])  # the recorder died mid-line

    changes, warnings = read_changes(path.open(), str(path))
    assert [c.time for c in changes] == [110.0]
    assert len(warnings) == 1 and warnings[0].startswith(f"{path}:2: skipped change:")

    replayed = ClusterState()
    replayed.upsert(deployment({"app": "e"}))
    tl2 = Timeline(replayed, clock=lambda: 999.0)
    replay_into(tl2, changes)
    assert [(e.time, e.action) for e in tl2.entries()] == [(110.0, "modified")]
    assert tl2.state_at(105).get("Deployment", "obs", "exporter")["spec"]["template"]["metadata"]["labels"] == {
        "app": "e"}
