"""`observe -o compact|table|dict` against the real hubble CLI v1.19.4, byte for byte, on every sample, the demo
and made-up flows that reach the printer's corners (unknown direction, replies, services, DNS names, L2 only,
lost events, every drop reason / trace point / reserved identity number)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubbletui.flows.recording import event_to_dict, read_events
from hubbletui.render.hubble_text import HubblePrinter, format_timestamp

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
HUBBLE = SHARED / "hubble" / "hubble"
SAMPLES = sorted((SHARED / "samples" / "flows").glob("*")) if (SHARED / "samples").is_dir() else []
RECORDINGS = SAMPLES + [ROOT / "hubbletui" / "demo" / "flows.jsonl"]

needs_hubble = pytest.mark.skipif(not HUBBLE.exists(), reason=f"the real hubble CLI is not at {HUBBLE}")

_BASE = {"time": "2023-08-21T12:12:13.517394084Z", "verdict": "FORWARDED",
         "IP": {"source": "1.1.1.1", "destination": "2.2.2.2", "ipVersion": "IPv4"}, "source": {}, "destination": {}}


def _flow(**fields) -> dict:
    body = dict(_BASE)
    body.update(fields)
    return {"flow": {k: v for k, v in body.items() if v is not None}}


def corner_cases() -> list[dict]:
    lines = [_flow(event_type={"type": t, "sub_type": 1}) for t in (0, 2, 3, 6, 7, 129, 200)]
    lines += [_flow(event_type={"type": 3}, debug_capture_point=p) for p in ("DBG_CAPTURE_DELIVERY", None)]
    lines += [_flow(event_type={"type": 7}, sock_xlate_point=p)
              for p in ("SOCK_XLATE_POINT_PRE_DIRECTION_FWD", "SOCK_XLATE_POINT_POST_DIRECTION_REV", None)]
    lines += [_flow(l7=l7) for l7 in ({"type": "REQUEST", "http": {}}, {"type": "RESPONSE", "dns": {}},
                                      {"type": "RESPONSE", "dns": {"observation_source": "proxy"}},
                                      {"type": "SAMPLE", "kafka": {}}, {"type": "REQUEST"}, {})]
    lines += [_flow(event_type={"type": 5}, policy_match_type=m, traffic_direction=d, verdict=v)
              for m in range(8) for d in ("INGRESS", "EGRESS", None)
              for v in ("FORWARDED", "DROPPED", "AUDIT", "REDIRECTED", "ERROR", "TRACED", None)]
    lines += [_flow(ip_trace_id={"trace_id": "7"}, auth_type="SPIRE", Summary="x"),
              _flow(auth_type="TEST_ALWAYS_FAIL", is_reply=False),
              _flow(is_reply=True, source={"identity": 5, "namespace": "ns", "pod_name": "p"},
                    destination_service={"name": "svc", "namespace": "n2"},
                    l4={"UDP": {"source_port": 5, "destination_port": 0}}),
              _flow(IP=None, ethernet={"source": "aa:bb", "destination": "cc:dd"}), _flow(IP=None),
              _flow(IP={"source": "fe80::1", "destination": "::1"}, l4={"TCP": {"source_port": 5, "destination_port": 6}},
                    source={"pod_name": "nons"}, destination_names=["a.com", "b.com"]),
              _flow(time=None), _flow(time="2023-01-05T01:02:03Z", node_name="c/n1"),
              _flow(time="2023-01-05T01:02:03.120Z", isReply=True, sourceNames=["camel.example"])]
    lines += [{"lost_events": {"source": "PERF_EVENT_RING_BUFFER", "num_events_lost": "3", "cpu": 2,
                               "first": "2023-08-21T12:12:13Z"}, "time": "2023-08-21T12:12:13Z", "node_name": "x"},
              {"lost_events": {"source": "HUBBLE_RING_BUFFER", "num_events_lost": "3"}},
              {"node_status": {"state_change": "NODE_ERROR", "node_names": ["a", "b"], "message": 'bo"om'},
               "time": "2023-08-21T12:12:13Z", "node_name": "n"},
              {"node_status": {"state_change": "NODE_CONNECTED", "node_names": ["a"]}, "time": "2023-08-21T12:12:13Z"}]
    lines += [_flow(event_type={"type": 1, "sub_type": n}, verdict="DROPPED") for n in range(256)]
    lines += [_flow(event_type={"type": 4, "sub_type": n}) for n in range(256)]
    lines += [_flow(source={"identity": n}, destination={"identity": n + 1}) for n in range(0, 40)]
    lines += [_flow(source={"identity": 16777217}, destination={"identity": 65536})]
    return lines


@pytest.fixture(scope="module")
def corners(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corners") / "corners.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in corner_cases()))
    return path


def hubble(path: Path, *args: str) -> tuple[str, str]:
    proc = subprocess.run([str(HUBBLE), "observe", "--input-file", str(path), "--all", "--color", "never", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, "".join(line + "\n" for line in proc.stderr.splitlines() if "level=" not in line)


def ours(path: Path, output: str, **options) -> tuple[str, str]:
    printer = HubblePrinter(output, **options)
    out, err = [], []
    for stream, text in printer.lines(event_to_dict(e) for e in read_events(path)):
        (out if stream == "out" else err).append(text)
    return "".join(out), "".join(err)


def _first_difference(a: str, b: str) -> str:
    for i, (x, y) in enumerate(zip(a.splitlines(), b.splitlines())):
        if x != y:
            return f"line {i + 1}:\n ours   {x!r}\n hubble {y!r}"
    return f"{len(a.splitlines())} lines vs {len(b.splitlines())}"


OPTION_SETS = [((), {}), (("--print-node-name", "--time-format", "RFC3339Nano"),
                          {"node_name": True, "time_format": "RFC3339Nano"}),
               (("--numeric", "--time-format", "RFC1123Z"), {"translate": False, "time_format": "RFC1123Z"})]


@needs_hubble
@pytest.mark.parametrize("output", ["compact", "table", "dict"])
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_samples_print_as_hubble_prints_them(path, output):
    for flags, options in OPTION_SETS:
        expected = hubble(path, "-o", output, *flags)
        got = ours(path, output, **options)
        assert got == expected, f"{path.name} -o {output} {' '.join(flags)}: {_first_difference(got[0], expected[0])}"


@needs_hubble
@pytest.mark.parametrize("output", ["compact", "table", "dict"])
def test_corner_cases_print_as_hubble_prints_them(corners, output):
    for flags, options in OPTION_SETS + [(("--time-format", "RFC3339Milli"), {"time_format": "RFC3339Milli"}),
                                         (("--time-format", "YearMonthDayHour"), {"time_format": "YearMonthDayHour"}),
                                         (("--debug",), {"debug": True})]:
        expected = hubble(corners, "-o", output, *flags)
        got = ours(corners, output, **options)
        assert got[0] == expected[0], f"-o {output} {' '.join(flags)}: {_first_difference(got[0], expected[0])}"
        assert got[1] == expected[1], f"stderr, -o {output} {' '.join(flags)}"


@needs_hubble
@pytest.mark.parametrize("output", ["compact", "table", "dict"])
def test_cli_prints_what_hubble_prints(output):
    demo = ROOT / "hubbletui" / "demo" / "flows.jsonl"
    proc = subprocess.run([sys.executable, "-m", "hubbletui", "observe", "--input-file", str(demo), "-o", output,
                           "--print-node-name"], capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    theirs = subprocess.run([str(HUBBLE), "observe", "--input-file", str(demo), "--all", "-o", output,
                             "--print-node-name"], capture_output=True, timeout=60)
    assert proc.stdout == theirs.stdout  # lost events included: hubble prints them on stdout


def test_control_characters_stay_text(tmp_path):
    # the one place we differ from hubble on purpose: it lets ESC through to the terminal
    path = tmp_path / "esc.jsonl"
    path.write_text(json.dumps(_flow(Summary="a\x1b[31mred\x07", source={"pod_name": "p\x1b]0;x\x07"})) + "\n")
    for output in ("compact", "table", "dict"):
        out, _ = ours(path, output)
        assert "\x1b" not in out and "\x07" not in out
        assert "red" in out


def test_time_layouts():
    ts = "2024-02-29T07:08:09.120000000Z"
    assert format_timestamp(ts) == "Feb 29 07:08:09.120"
    assert format_timestamp("2024-03-05T07:08:09Z") == "Mar  5 07:08:09.000"
    assert format_timestamp(ts, "RFC3339Milli") == "2024-02-29T07:08:09.12Z"
    assert format_timestamp("2024-02-29T07:08:09Z", "RFC3339Nano") == "2024-02-29T07:08:09Z"
    assert format_timestamp(ts, "RFC1123Z") == "Thu, 29 Feb 2024 07:08:09 +0000"
    assert format_timestamp("2024-02-29T09:08:09+02:00", "RFC3339") == "2024-02-29T07:08:09Z"
    assert format_timestamp(None) == format_timestamp("not a time") == "N/A"
    with pytest.raises(ValueError):
        HubblePrinter("compact", time_format="Kitchen")
