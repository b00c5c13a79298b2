"""The committed generated modules match protos/, and our protos declare every field real captures carry."""

from __future__ import annotations

import subprocess
import sys

from google.protobuf import json_format

from paths import ROOT
from hubbletui.proto.flow import flow_pb2
from hubbletui.proto.observer import observer_pb2


def test_generated_modules_are_fresh():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_protos.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"regenerate with scripts/generate_protos.py:\n{proc.stderr}"


def test_strict_parse_of_every_sample_line(samples_dir):
    lines = 0
    for path in sorted(samples_dir.iterdir()):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                # ignore_unknown_fields=False: a field we failed to declare fails here
                json_format.Parse(line, observer_pb2.GetFlowsResponse(), ignore_unknown_fields=False)
                lines += 1
    assert lines == 1921


def test_wire_numbers_match_the_v1_19_4_facts():
    flow = flow_pb2.Flow.DESCRIPTOR.fields_by_name
    assert flow["egress_denied_by"].number == 21004
    assert flow["ingress_denied_by"].number == 21005
    assert flow["drop_reason_desc"].number == 25
    assert flow["Summary"].number == 100000
    assert flow_pb2.TraceObservationPoint.Value("TO_ENDPOINT") == 101
    assert flow_pb2.DropReason.Value("POLICY_DENY") == 181
    assert len(flow_pb2.DropReason.DESCRIPTOR.values) == 76  # 0, 130-158, 160-205
    req = observer_pb2.GetFlowsRequest.DESCRIPTOR.fields_by_name
    assert (req["follow"].number, req["whitelist"].number, req["first"].number) == (3, 6, 9)
    resp = observer_pb2.GetFlowsResponse.DESCRIPTOR.fields_by_name
    assert (resp["node_name"].number, resp["time"].number) == (1000, 1001)
    svc = observer_pb2.DESCRIPTOR.services_by_name["Observer"]
    assert {m.name for m in svc.methods} == {"GetFlows", "GetNodes", "GetNamespaces", "ServerStatus"}
    assert svc.methods_by_name["GetFlows"].server_streaming
