"""Issue 7 in `explain`: connections Istio refuses are listed as drops of layer istio, admitted ones are not."""

from __future__ import annotations

import orjson

from cli_run import run_cli
from paths import FIXTURES, ROOT

MESH = FIXTURES / "mesh"


def test_explain_lists_istio_refusals_as_drops():
    proc = run_cli("explain", "--input-file", str(MESH / "incident.jsonl"), "--cluster", str(MESH / "cluster.yaml"),
                   "-o", "json")
    assert proc.returncode == 0, proc.stderr.decode()
    doc = orjson.loads(proc.stdout)
    istio = [g for g in doc["groups"] if g["layer"] == "istio"]
    refused = {(g["src"], g["dst"], g["port"]) for g in istio if g["reason"] == "ISTIO_AUTHZ_DENIED"}
    assert ("shop/checkout", "shop/payments", 8080) in refused
    assert not any(g["src"] == "shop/frontend" and g["dst"] == "shop/payments" for g in istio)  # admitted
    checkout = next(g for g in istio if g["src"] == "shop/checkout" and g["reason"] == "ISTIO_AUTHZ_DENIED")
    assert checkout["istio"]["evidence"]["quick_closes"] >= 1
    assert checkout["istio"]["decision"]["action"] == "ALLOW" and not checkout["istio"]["decision"]["allowed"]
    assert any(g["reason"] == "ISTIO_MTLS_STRICT_PLAINTEXT" for g in istio)


def test_explain_text_says_istio_refused():
    proc = run_cli("explain", "--input-file", str(MESH / "incident.jsonl"), "--cluster", str(MESH / "cluster.yaml"),
                   "-o", "text")
    text = proc.stdout.decode()
    assert "(ISTIO_AUTHZ_DENIED)" in text and "refused by Istio" in text
