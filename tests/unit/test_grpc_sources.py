"""The other sources behind the one interface: a recording (paced, unpaced, looping) and the list-backed fake."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from grpc_support import T0, SteppedClock, flow_line, mixed_lines, write_recording
from hubbletui.flows.decode import event_from_json
from hubbletui.flows.model import Flow, NodeStatus
from hubbletui.flows.request import FilterSpec, FlowQuery, build_filters
from hubbletui.flows.timefmt import parse_rfc3339_ns
from hubbletui.sources.base import ENDED, FAILED, RETRYING, STREAMING, FlowSource, SourceState
from hubbletui.sources.blocking import iterate_blocking
from hubbletui.sources.fake import FakeSource
from hubbletui.sources.recording_source import RecordingSource
from hubbletui.flows.replay_time import play_offsets, shift_event


async def drain(source, limit: int | None = None):
    items = []
    events = source.events()
    async for item in events:
        items.append(item)
        if limit is not None and sum(isinstance(i, Flow) for i in items) >= limit:
            break
    await events.aclose()
    return items


def test_every_source_offers_the_protocol(tmp_path):
    from hubbletui.sources.dial import DialOptions
    from hubbletui.sources.grpc_client import GrpcSource

    for source in (FakeSource([]), RecordingSource(tmp_path / "x.json"), GrpcSource(DialOptions())):
        assert isinstance(source, FlowSource) and source.describe()


def test_play_offsets_never_run_backwards():
    events = [event_from_json(flow_line(t)) for t in (T0, T0 + 50, T0 + 20, T0 + 90)]
    assert play_offsets(events) == [0, 50, 50, 90]


def test_shift_event_moves_the_flow_and_its_json():
    flow = event_from_json(flow_line(T0))
    moved = shift_event(flow, 5_000_000_000)
    assert moved.time_ns == T0 + 5_000_000_000
    assert parse_rfc3339_ns(moved.raw["flow"]["time"]) == parse_rfc3339_ns(moved.raw["time"]) == moved.time_ns
    assert flow.raw["flow"]["time"] != moved.raw["flow"]["time"]  # the original is untouched


async def test_recording_unpaced_with_filters_and_malformed_lines(tmp_path):
    path = write_recording(tmp_path / "rec.json", mixed_lines(30))
    with path.open("ab") as fh:
        fh.write(b"{not json\n")
    whitelist, _ = build_filters(FilterSpec(verdict=("DROPPED",)))
    reports = []
    source = RecordingSource(path, speed=None, query=FlowQuery(whitelist=whitelist), report=reports.append)
    items = await drain(source)
    flows = [i for i in items if isinstance(i, Flow)]
    assert len(flows) == 10 and all(f.verdict == "DROPPED" for f in flows)
    assert items[0] == SourceState(STREAMING, source.describe()) and items[-1].state == ENDED
    assert source.stats.flows == 10 and source.stats.malformed == 1 and "rec.json:31" in reports[0]


async def test_recording_paced_by_recorded_gaps_times_speed(tmp_path):
    lines = [flow_line(T0 + i * 100_000_000, sport=i) for i in range(5)]  # 0.4 s recorded
    clock = SteppedClock()
    source = RecordingSource(write_recording(tmp_path / "rec.json", lines), speed=4, clock=clock)  # 0.1 s played
    stamps = [round(clock.now() - 100.0, 6) async for item in source.events() if isinstance(item, Flow)]
    assert stamps == [0.0, 0.025, 0.05, 0.075, 0.1]


async def test_a_slow_consumer_is_not_charged_twice(tmp_path):
    # the schedule is absolute: time the consumer spends between flows shortens the next wait
    lines = [flow_line(T0 + i * 100_000_000, sport=i) for i in range(3)]
    clock = SteppedClock()
    source = RecordingSource(write_recording(tmp_path / "rec.json", lines), speed=1, clock=clock)
    async for item in source.events():
        if isinstance(item, Flow):
            clock.t += 0.06  # the consumer works 60 ms on each flow
    assert [round(s, 6) for s in clock.sleeps] == [0.04, 0.04]


async def test_recording_loops_with_times_moved_forward(tmp_path):
    lines = [flow_line(T0 + i * 1000, sport=i) for i in range(3)]
    source = RecordingSource(write_recording(tmp_path / "rec.json", lines), speed=1000, loop=True)
    flows = [i for i in await drain(source, limit=7) if isinstance(i, Flow)]
    times = [f.time_ns for f in flows]
    assert [f.src_port for f in flows] == [0, 1, 2, 0, 1, 2, 0]
    assert times == sorted(times) and times[3] - times[0] == 2000 + 1_000_000_000


async def test_missing_recording_is_a_failed_state(tmp_path):
    items = await drain(RecordingSource(tmp_path / "gone.json"))
    assert items[-1].state == FAILED and "no such file" in items[-1].detail


async def test_fake_source_scripts_states_and_counts():
    status = NodeStatus(T0, "NODE_UNAVAILABLE", ("kind-worker2",), "gone", "relay", None)
    flows = [event_from_json(line) for line in mixed_lines(3)]
    script = [flows[0], SourceState(RETRYING, "retrying in 1.0 s", retry_in=1.0), status, *flows[1:]]
    source = FakeSource(script, name="scripted")
    items = await drain(source)
    assert items[0].state == STREAMING and items[-1].state == ENDED and items[1:-1] == script
    assert (source.stats.flows, source.stats.reconnects, source.stats.unavailable_nodes) == (3, 1, {"kind-worker2"})


async def test_fake_source_follow_stays_open_until_the_consumer_stops():
    source = FakeSource([event_from_json(flow_line(T0))], follow=True)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(drain(source), 0.1)


def test_blocking_iteration_hands_states_aside():
    flows = [event_from_json(line) for line in mixed_lines(1000)]
    states = []
    got = list(iterate_blocking(FakeSource(flows), states.append))
    assert got == flows and [s.state for s in states] == [STREAMING, ENDED]


def test_blocking_iteration_stops_when_told():
    def stop_on_end(state):
        if state.state == ENDED:
            raise RuntimeError("ended")

    with pytest.raises(RuntimeError, match="ended"):
        list(iterate_blocking(FakeSource([]), stop_on_end))


def test_recording_lines_are_real_jsonpb(tmp_path):
    # the generator used by these tests writes what Hubble writes: a GetFlowsResponse per line
    line = orjson.loads(write_recording(tmp_path / "one.json", [flow_line(T0)]).read_bytes())
    assert set(line) == {"flow", "node_name", "time"} and line["flow"]["verdict"] == "FORWARDED"
