"""The built-in scenario's three fixes, as the story in hubbletui/demo tells it: the label on the exporter's pod
template, then the exporter's principal in FoundationDB's AuthorizationPolicy, then a CNP letting Prometheus
scrape the exporter's metrics port."""

from __future__ import annotations

import pytest
import yaml
from cli_run import run_cli
from suggest_support import apply_fix, layer_verdicts, suggest_scenario, trace, validate_every_suggestion

assert validate_every_suggestion  # autouse fixture: every suggestion below is schema-checked

demo = pytest.importorskip("hubbletui.demo", reason="the demo scenario is not part of this checkout")
EXPORTER, FDB, PROMETHEUS = "database/fdb-exporter", "database/foundationdb", "monitoring/prometheus"


@pytest.fixture(scope="module")
def fixes():
    if not demo.recording_path().is_file():
        pytest.skip("the demo recording has not been generated (scripts/make_demo.py)")
    _, groups, _ = suggest_scenario(demo.cluster_path(), demo.recording_path())
    return [g for g in groups if g.suggestions]


def test_three_fixes_in_the_story_order(fixes):
    first, second, third = (g.suggestions[0] for g in fixes[:3])
    assert (fixes[0].case.src, fixes[0].case.dst, fixes[0].case.port.number, fixes[0].case.layer) == \
        (EXPORTER, FDB, 4500, "egress")
    assert first.kind == "label-change"
    assert first.target.to_dict() == {"kind": "Deployment", "namespace": "database", "name": "fdb-exporter"}
    assert first.patches[0].body == {"spec": {"template": {"metadata": {"labels": {"fdb-client": "true"}}}}}
    assert first.blast.count == 0
    assert any("Istio still refuses" in note for note in first.notes)

    assert (fixes[1].case.src, fixes[1].case.dst, fixes[1].case.port.number, fixes[1].case.layer) == \
        (EXPORTER, FDB, 4500, "istio")
    assert second.kind == "istio-authz"
    op = second.patches[0].body[0]
    assert op["value"] == "cluster.local/ns/database/sa/fdb-exporter"
    rule = int(op["path"].split("/")[3])
    policy = next(d for d in yaml.safe_load((demo.cluster_path() / "authorizationpolicies.yaml").read_text())["items"]
                  if d["metadata"]["name"] == second.target.name)
    assert policy["spec"]["rules"][rule]["to"][0]["operation"]["ports"] == ["4500"]

    assert (fixes[2].case.src, fixes[2].case.dst, fixes[2].case.port.number) == (PROMETHEUS, EXPORTER, 9161)
    assert third.kind == "new-policy"
    (cnp,) = third.new_objects
    assert cnp["kind"] == "CiliumNetworkPolicy" and cnp["metadata"]["namespace"] == "database"
    assert cnp["spec"]["endpointSelector"] == {"matchLabels": {"app.kubernetes.io/name": "fdb-exporter"}}
    assert cnp["spec"]["ingress"] == [{
        "fromEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "prometheus",
                                           "k8s:io.kubernetes.pod.namespace": "monitoring"}}],
        "toPorts": [{"ports": [{"port": "9161", "protocol": "TCP"}]}]}]
    # the wider alternative (the port in the namespace-wide scrape policy) ranks below: it opens more
    assert [(s.kind, s.blast.count) for s in fixes[2].suggestions] == [("new-policy", 0), ("rule-patch", 2)]


def test_applying_the_fixes_makes_trace_allow(fixes, tmp_path):
    first, second, third = (g.suggestions[0] for g in fixes[:3])
    step1 = apply_fix(demo.cluster_path(), first, tmp_path / "1")
    answer = trace(step1, EXPORTER, FDB, "4500")
    assert layer_verdicts(answer) == {"egress": "allowed", "ingress": "allowed", "istio": "denied"}
    step2 = apply_fix(step1, second, tmp_path / "2")
    assert trace(step2, EXPORTER, FDB, "4500")["verdict"] == "allowed"
    step3 = apply_fix(step2, third, tmp_path / "3")
    assert trace(step3, PROMETHEUS, EXPORTER, "9161")["verdict"] == "allowed"
    assert trace(step3, PROMETHEUS, FDB, "9161")["verdict"] == "denied"


def test_demo_print_fixes():
    if not demo.recording_path().is_file():
        pytest.skip("the demo recording has not been generated (scripts/make_demo.py)")
    done = run_cli("demo", "--print-fixes")
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    assert text.index("fdb-client") < text.index("cluster.local/ns/database/sa/fdb-exporter") < text.index("9161")
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs[0]["kind"] == "CiliumNetworkPolicy" and "prometheus" in docs[0]["metadata"]["name"]
    # the background drops from the internet get least-privilege fixes too: one address, one port, never "world"
    for doc in docs[1:]:
        assert [peer for rule in doc["spec"]["ingress"] for peer in rule.get("fromCIDR", [])] and \
            all(cidr.endswith("/32") for rule in doc["spec"]["ingress"] for cidr in rule["fromCIDR"])
    assert b"deny rules win over every allow" in done.stderr  # the metadata-address deny is not "fixed"
