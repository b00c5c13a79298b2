"""Hostile flow lines: each is reported as FILE:LINE and skipped where it is decoded, the good lines around it
are kept, and nothing downstream (compact/table text, filters, explain, suggest) ever meets a mistyped field."""

from __future__ import annotations

import gzip
import json

import pytest

from cli_run import run_cli
from paths import FIXTURES
from hubbletui.flows.model import Flow
from hubbletui.flows.recording import MAX_LINE_BYTES, RecordingReader

STARWARS = FIXTURES / "clusters" / "starwars"


def flow(**changes) -> dict:
    f = {"time": "2026-03-01T10:00:00Z", "verdict": "DROPPED", "drop_reason_desc": "POLICY_DENIED",
         "IP": {"source": "10.244.1.60", "destination": "10.244.1.5", "ipVersion": "IPv4"},
         "l4": {"TCP": {"source_port": 40000, "destination_port": 80, "flags": {"SYN": True}}},
         "source": {"namespace": "default", "pod_name": "xwing", "labels": ["k8s:app=xwing"]},
         "destination": {"namespace": "default", "pod_name": "deathstar-7848d6c4d5-th9v2",
                         "labels": ["k8s:class=deathstar", "k8s:org=empire"]},
         "traffic_direction": "INGRESS", "node_name": "kind-worker"}
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = f
        for key in parents:
            target = target[key]
        target[last] = value
    return f


def line(body: dict) -> bytes:
    return json.dumps({"flow": body, "node_name": "kind-worker", "time": body.get("time", "")}).encode() + b"\n"


GOOD = line(flow())

# each is JSON, but not a well-formed flow
MISTYPED = {
    "labels as a number": line(flow(source__labels=5)),
    "labels holding numbers": line(flow(source__labels=[1, 2])),
    "labels as a string": line(flow(source__labels="k8s:app=x")),
    "namespace as a number": line(flow(source__namespace=7)),
    "namespace as a list": line(flow(destination__namespace=["x"])),
    "pod name as an object": line(flow(source__pod_name={"a": 1})),
    "IP as a number": line(flow(IP__source=167772161)),
    "IP as a list": line(flow(IP=["10.0.0.1"])),
    "port as text": line(flow(l4__TCP__destination_port="eighty")),
    "port out of range": line(flow(l4__TCP__destination_port=70000)),
    "port as a boolean": line(flow(l4__TCP__destination_port=True)),
    "verdict as a list": line(flow(verdict=["DROPPED"])),
    "verdict as a float": line(flow(verdict=2.5)),
    "is_reply as text": line(flow(is_reply="yes")),
    "node name as a number": line(flow(node_name=3)),
    "endpoint as a list": line(flow(source=[1])),
    "workloads as an object": line(flow(source__workloads={"kind": "Deployment"})),
    "workload name as a number": line(flow(source__workloads=[{"kind": "Deployment", "name": 1}])),
    "http url as a number": line(flow(l7={"type": "REQUEST", "http": {"method": "GET", "url": 5}})),
    "dns query as a list": line(flow(l7={"type": "REQUEST", "dns": {"query": ["a"]}})),
    "source_names as text": line(flow(source_names="example.com")),
    "destination_service name as a number": line(flow(destination_service={"name": 1, "namespace": "x"})),
    "policy name as a number": line(flow(ingress_denied_by=[{"name": 1, "namespace": "d"}])),
    "uuid as a list": line(flow(uuid=["x"])),
    "event type as text": line(flow(event_type={"type": "drop"})),
    "time as a number": line(flow(time=5)),
    "top node_name as a list": json.dumps({"flow": flow(), "node_name": ["n"]}).encode() + b"\n",
    "node_status names as text": b'{"node_status":{"state_change":"NODE_GONE","node_names":"abc"},'
                                 b'"time":"2026-03-01T10:00:00Z"}\n',
    "deeply nested camelCase": b'{"flow":{"nodeName":"n","x":' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"}}\n",
}


def read(path) -> tuple[list, list[str], RecordingReader]:
    messages: list[str] = []
    reader = RecordingReader(path, report=messages.append)
    return list(reader), messages, reader


@pytest.mark.parametrize("name", sorted(MISTYPED))
def test_a_mistyped_line_is_reported_and_its_neighbours_kept(tmp_path, name):
    path = tmp_path / "flows.json"
    path.write_bytes(GOOD + MISTYPED[name] + GOOD)
    events, messages, reader = read(path)
    assert len(events) == 2 and all(type(e) is Flow for e in events)
    assert reader.stats.malformed == 1
    assert len(messages) == 1 and messages[0].startswith(f"{path}:2: ") and messages[0].endswith("; line skipped")


def test_null_fields_mean_their_default(tmp_path):
    # proto3 JSON: null stands for the field's default value
    path = tmp_path / "flows.json"
    path.write_bytes(line(flow(node_name=None, source__namespace=None, source__labels=None, IP__source=None))
                     + json.dumps({"flow": flow(), "node_name": None}).encode() + b"\n")
    events, messages, _ = read(path)
    assert messages == [] and len(events) == 2
    assert events[0].node == "kind-worker" and events[0].source.namespace == "" and events[0].source.ip == ""
    assert events[1].node == "kind-worker"


def test_leading_space_bom_and_crlf(tmp_path):
    path = tmp_path / "flows.json"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD + b"   \t" + GOOD.rstrip(b"\n") + b"\r\n" + GOOD)
    events, messages, _ = read(path)
    assert messages == [] and len(events) == 3
    # the raw line is kept as jsonpb (it starts with "{"): not taken for protobuf later
    assert all(e.raw[:1] == b"{" for e in events)
    proc = run_cli("observe", "--input-file", str(path), "-o", "compact")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(b"\n") == 3
    proc = run_cli("observe", "--input-file", str(path), "-o", "jsonpb")
    assert [json.loads(x) for x in proc.stdout.splitlines()] == [json.loads(GOOD)] * 3


def test_every_output_and_explain_survive_every_mistyped_line(tmp_path):
    path = tmp_path / "flows.json"
    path.write_bytes(GOOD + b"".join(MISTYPED.values()) + b"  " + GOOD)
    for args in (["observe", "-o", "compact"], ["observe", "-o", "table"], ["observe", "-o", "jsonpb"],
                 ["observe", "-o", "compact", "--pod", "default/xwing", "--port", "80", "--label", "app=xwing"],
                 ["observe", "-o", "compact", "--protocol", "http", "--http-status", "5+"],
                 ["explain", "--cluster", str(STARWARS), "-o", "json"],
                 ["suggest", "--cluster", str(STARWARS)]):
        proc = run_cli(*args, "--input-file", str(path))
        assert b"Traceback" not in proc.stderr, (args, proc.stderr.decode())
        assert proc.returncode in (0, 3), (args, proc.stderr.decode())
        assert f"{len(MISTYPED)} malformed lines skipped in all".encode() in proc.stderr, args
    proc = run_cli("observe", "-o", "compact", "--input-file", str(path))
    assert proc.stdout.count(b"\n") == 2
    proc = run_cli("explain", "--cluster", str(STARWARS), "-o", "json", "--input-file", str(path))
    assert proc.returncode == 0 and json.loads(proc.stdout)


def test_an_overlong_line_is_bounded(tmp_path):
    path = tmp_path / "flows.json"
    with open(path, "wb") as fh:
        fh.write(GOOD)
        fh.write(b'{"flow":' + b" " * (MAX_LINE_BYTES * 3) + b"}\n")
        fh.write(GOOD)
        fh.write(b"x" * (MAX_LINE_BYTES + 10))  # the last line has no newline at all
    events, messages, reader = read(path)
    assert len(events) == 2 and reader.stats.malformed == 2
    assert [m.split(": ")[0] for m in messages] == [f"{path}:2", f"{path}:4"]


def test_dev_zero_is_refused_not_read_into_memory():
    proc = run_cli("observe", "--input-file", "/dev/zero", "-o", "compact", timeout=20)
    assert proc.returncode != 0 and b"Traceback" not in proc.stderr
    assert b"binary data" in proc.stderr


def test_corrupt_and_truncated_gzip_keep_what_came_before(tmp_path):
    lines = [json.dumps({"flow": flow(time=f"2026-03-01T10:00:{i:02d}Z",
                                      l4__TCP__source_port=40000 + i), "node_name": "kind-worker"}).encode() + b"\n"
             for i in range(40)]
    whole = gzip.compress(b"".join(lines) * 50)  # 2,000 lines: enough that the damage lies past the first ones
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    corrupt = tmp_path / "bad.json.gz"
    damaged = bytearray(whole)
    for i in range(len(whole) // 2, len(whole) // 2 + 64):
        damaged[i] ^= 0x5A
    corrupt.write_bytes(bytes(damaged))
    for path, why in ((truncated, "ends early"), (corrupt, "corrupt compressed data")):
        events, messages, reader = read(path)
        assert 0 < len(events) < 2000, path
        assert reader.stats.truncated and why in reader.stats.truncated
        assert messages[-1] == reader.stats.truncated and messages[-1].startswith(f"{path}:")
        proc = run_cli("explain", "--cluster", str(STARWARS), "-o", "json", "--input-file", str(path))
        assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
        assert why.encode() in proc.stderr
        assert json.loads(proc.stdout)
