"""The server's fast jsonpb -> protobuf conversion gives exactly what json_format.ParseDict gives."""

from __future__ import annotations

import orjson
import pytest
from google.protobuf import json_format

from paths import SAMPLES
from grpc_support import T0, flow_line, mixed_lines
from hubbletui.proto.observer import observer_pb2
from hubbletui.server.from_json import response_from_dict


def reference(obj: dict) -> observer_pb2.GetFlowsResponse:
    return json_format.ParseDict(obj, observer_pb2.GetFlowsResponse(), ignore_unknown_fields=True)


def test_equal_to_json_format_on_made_lines_and_odd_shapes():
    lines = mixed_lines(10)
    odd = flow_line(T0)
    odd["flow"].update({"source": {}, "drop_reason_desc": 133, "socket_cookie": "18446744073709551615",
                        "policy_match_type": None, "nodeLabels": ["zone=a"], "future_field": {"x": 1},
                        "egress_allowed_by": [{"name": "allow-web", "namespace": "shop", "revision": "7",
                                               "labels": ["k8s:io.cilium.k8s.policy.name=allow-web"]}],
                        "l7": {"type": "REQUEST", "latency_ns": "1500", "http": {"code": 403, "method": "GET",
                                                                                  "headers": [{"key": "a"}]}}})
    lost = {"lost_events": {"source": "HUBBLE_RING_BUFFER", "num_events_lost": "12", "cpu": 3},
            "node_name": "n1", "time": "2023-11-14T22:13:20Z"}
    for obj in (*lines, odd, lost):
        assert response_from_dict(obj) == reference(obj)


def test_unknown_enum_names_fall_back_to_json_format():
    line = flow_line(T0)
    line["flow"]["verdict"] = "SOMETHING_NEW"  # a newer Hubble's value
    assert response_from_dict(line) == reference(line)
    with pytest.raises(json_format.ParseError):
        response_from_dict({"flow": {"time": 12}})


def test_equal_on_the_shared_samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} is not here (the team's shared reference folder sits beside the repo in CI)")
    count = 0
    for path in sorted(SAMPLES.iterdir()):
        for line in path.read_bytes().splitlines():
            if line.strip():
                obj = orjson.loads(line)
                assert response_from_dict(obj) == reference(obj), f"{path.name}: {line[:80]!r}"
                count += 1
    assert count > 1000
