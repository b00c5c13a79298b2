"""Hostile clients of the replay server over loopback: filters built to take exponential time, filters built
to take a long linear time, and requests that are not what they should be. Every other client keeps being
served, a signal still stops `hubbletui serve`, and a refusal is INVALID_ARGUMENT in plain words."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import grpc
import pytest

from grpc_support import T0, flow_line, playlist_of, write_recording
from hubbletui.flows.filters import MAX_FILTER_VALUES, MAX_PATTERNS
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2, observer_pb2_grpc
from hubbletui.server.replay import ReplayServer
from test_serve_cli import Serve

EVIL = "(a+)+$"  # exponential for a backtracking engine on "aaaa...a!"
# linear for RE2, but each makes its automaton thrash on a long random path: the costliest filter allowed,
# about a second per flow
COSTLY = [f"[ab]*a[ab]{{{k % 60 + 1}}}[cd]{{{k % 7}}}e{k}" for k in range(MAX_PATTERNS)]


def costly_lines(count: int) -> list[dict]:
    rng = random.Random(7)
    return [http_line(i, "/" + "".join(rng.choice("ab") for _ in range(2000))) for i in range(count)]


def http_line(i: int, path: str) -> dict:
    line = flow_line(T0 + i * 1000, sport=40000 + i, port=8080)
    line["flow"]["l7"] = {"type": "REQUEST", "http": {"method": "GET", "url": f"http://shop{path}"}}
    line["flow"]["Type"] = "L7"
    return line


def dns_line(i: int, query: str) -> dict:
    line = flow_line(T0 + i * 1000, sport=40000 + i, port=53)
    line["flow"]["l7"] = {"type": "REQUEST", "dns": {"query": query, "qtypes": ["A"]}}
    line["flow"]["Type"] = "L7"
    return line


def hostile_lines(count: int = 50) -> list[dict]:
    lines = []
    for i in range(count):
        lines.append(http_line(i, "/" + "a" * 3000 + "!") if i % 2 else dns_line(i, "a" * 3000 + "!"))
    return lines


def request(**fields) -> observer_pb2.GetFlowsRequest:
    return observer_pb2.GetFlowsRequest(**fields)


async def drain(address: str, req, timeout: float = 10) -> list:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = observer_pb2_grpc.ObserverStub(channel)
        return [r async for r in stub.GetFlows(req, timeout=timeout)]


async def refusal(address: str, req, *, raw: bytes | None = None) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        method = channel.unary_stream("/observer.Observer/GetFlows", request_serializer=None,
                                      response_deserializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in method(raw if raw is not None else req.SerializeToString(), timeout=10):
                pass
    return err.value


@pytest.mark.parametrize("field", ["http_path", "http_url", "dns_query"])
async def test_a_catastrophic_regex_neither_stalls_the_server_nor_other_clients(tmp_path, field):
    async with ReplayServer(playlist_of(hostile_lines(), tmp_path), speed=None) as server:
        evil = request(whitelist=[flow_pb2.FlowFilter(**{field: [EVIL]})])
        hostile = [asyncio.create_task(drain(server.address, evil, timeout=30)) for _ in range(3)]
        start = time.monotonic()
        served = await drain(server.address, request(number=5))
        assert time.monotonic() - start < 2 and sum(r.HasField("flow") for r in served) == 5
        answers = await asyncio.wait_for(asyncio.gather(*hostile), 10)
    # the pattern is anchored at the end, and every target ends in "!": nothing matches, quickly
    assert all(not any(r.HasField("flow") for r in answer) for answer in answers)


@pytest.mark.parametrize("follow", [False, True])
async def test_the_costliest_filter_allowed_leaves_the_loop_to_other_clients(tmp_path, follow):
    # a backlog (unpaced), or a follow stream over a recording that keeps playing (looped, paced)
    pace = dict(speed=1000.0, loop=True) if follow else dict(speed=None)
    async with ReplayServer(playlist_of(costly_lines(100), tmp_path), **pace) as server:
        slow = asyncio.create_task(drain(server.address, request(
            follow=follow, whitelist=[flow_pb2.FlowFilter(http_path=COSTLY)]), timeout=120))
        await asyncio.sleep(0.5)  # the slow request is filtering by now
        latencies = []
        for _ in range(5):
            start = time.monotonic()
            served = await drain(server.address, request(number=3))
            latencies.append(time.monotonic() - start)
            assert sum(r.HasField("flow") for r in served) == 3
        assert not slow.done(), "the slow filter was not slow: the test measured nothing"
        slow.cancel()
    assert max(latencies) < 1.0, latencies


def unknown_field_filter() -> bytes:
    """A request whose whitelist FlowFilter carries field 2000, which our proto does not know."""
    flt = flow_pb2.FlowFilter(verdict=[flow_pb2.DROPPED]).SerializeToString() + bytes([0x80, 0x7d, 0x01])
    return bytes([0x2a, len(flt)]) + flt  # GetFlowsRequest.whitelist is field 5


@pytest.mark.parametrize("req, raw, words", [
    (request(whitelist=[flow_pb2.FlowFilter(http_path=["(unclosed"])]), None, "http_path: not a regular expression"),
    (request(whitelist=[flow_pb2.FlowFilter(dns_query=["(a)\\1"])]), None, "dns_query: not a regular expression"),
    (request(whitelist=[flow_pb2.FlowFilter(http_url=["(?=look)"])]), None, "http_url: not a regular expression"),
    (request(blacklist=[flow_pb2.FlowFilter(source_pod=["x"] * (MAX_FILTER_VALUES + 1))]), None,
     f"at most {MAX_FILTER_VALUES:,}"),
    (request(whitelist=[flow_pb2.FlowFilter(dns_query=["x"] * (MAX_PATTERNS + 1))]), None,
     f"at most {MAX_PATTERNS} per field"),
    (None, b"\xff\xff\xff\xff", "the request is not a well-formed protobuf message"),
    # quadratic for the selector pattern this replaced (minutes), and a reason too long for gRPC's trailers
    (request(whitelist=[flow_pb2.FlowFilter(source_label=["a" + " " * 200_000 + "in"])]), None,
     "not a label selector"),
    (None, unknown_field_filter(), "field number 2000, which hubbletui does not know"),
])
async def test_invalid_requests_are_invalid_argument_in_plain_words(tmp_path, req, raw, words):
    async with ReplayServer(playlist_of(hostile_lines(4), tmp_path), speed=None) as server:
        err = await refusal(server.address, req, raw=raw)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details()[:200])
    assert len(err.details()) <= 1000
    assert words in err.details()
    assert "<class" not in err.details() and "Error" not in err.details()


async def test_enum_values_we_do_not_know_match_nothing_instead_of_failing(tmp_path):
    async with ReplayServer(playlist_of(hostile_lines(4), tmp_path), speed=None) as server:
        for flt in (flow_pb2.FlowFilter(verdict=[99]), flow_pb2.FlowFilter(traffic_direction=[77])):
            answer = await drain(server.address, request(whitelist=[flt]))
            assert not any(r.HasField("flow") for r in answer)
        everything = await drain(server.address, request(blacklist=[flow_pb2.FlowFilter(verdict=[99])]))
    assert sum(r.HasField("flow") for r in everything) == 4


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_on_a_signal_while_a_hostile_filter_runs(tmp_path, sig):
    recording = write_recording(tmp_path / "hostile.json", costly_lines(100))
    with Serve(str(recording), "--no-pacing") as serve:
        channel = grpc.insecure_channel(serve.address)
        stub = observer_pb2_grpc.ObserverStub(channel)
        calls = [stub.GetFlows(request(whitelist=[flow_pb2.FlowFilter(http_path=COSTLY)]), timeout=60)
                 for _ in range(2)]
        time.sleep(1.0)  # both are filtering
        assert serve.proc.poll() is None
        start = time.monotonic()
        code, err = serve.stop(sig)
        elapsed = time.monotonic() - start
        for call in calls:
            call.cancel()
        channel.close()
    assert elapsed < 2.0, elapsed
    assert code == 0 and "stopped" in err and "Traceback" not in err, err
