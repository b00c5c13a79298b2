"""`hubbletui trace`: one query, a batch, live mode, and how it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli
from fake_apiserver import FakeApiServer, write_kubeconfig

from hubbletui.cli import main
from paths import FIXTURES

TABLE = FIXTURES / "clusters" / "deny-truth-table"


@pytest.fixture
def cluster(tmp_path) -> Path:
    """The truth-table server with an L3 allow for the client and a deny on 80/TCP."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    for name in ("base.yaml", "allow-l3-client.yaml", "deny-80.yaml"):
        (folder / name).write_text((TABLE / name).read_text())
    return folder


def trace(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["trace", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output(cluster, capsys):
    code, out, err = trace(capsys, "--cluster", str(cluster), "--src", "demo/client", "--dst", "demo/server",
                           "--dport", "80/tcp", "-o", "text")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "demo/client -> demo/server 80/TCP: DENIED"
    assert "  ingress at demo/server: denied (POLICY_DENY)" in lines
    assert "    denied by: CiliumNetworkPolicy/demo/deny-80 spec.ingressDeny[0]" in lines


def test_json_output_is_stable_and_has_the_verdict_on_top(cluster, capsys):
    code, out, _ = trace(capsys, "--cluster", str(cluster), "--src", "demo/client", "--dst", "demo/server",
                         "--dport", "81", "-o", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["verdict"] == "allowed" and doc["dport"] == 81 and doc["protocol"] == "TCP"
    assert [layer["layer"] for layer in doc["layers"]] == ["egress", "ingress"]
    ingress = doc["layers"][1]
    assert ingress["allowed_by"][0]["ref"] == "CiliumNetworkPolicy/demo/allow-l3-client"
    assert set(ingress) >= {"verdict", "reason", "isolated_by", "selected_by", "allowed_by", "denied_by",
                            "nearest", "l7", "notes", "drop_reason", "explanation"}
    assert doc["src"]["ref"] == "demo/client" and doc["decided_by"] is None


def test_icmp_and_udp_ports(cluster, capsys):
    _, out, _ = trace(capsys, "--cluster", str(cluster), "--src", "demo/client", "--dst", "demo/server",
                      "--dport", "icmp", "-o", "json")
    assert json.loads(out)["protocol"] == "ICMPv4" and json.loads(out)["verdict"] == "allowed"
    _, out, _ = trace(capsys, "--cluster", str(cluster), "--src", "world", "--dst", "demo/server",
                      "--dport", "53/udp", "-o", "json")
    doc = json.loads(out)
    assert doc["verdict"] == "denied" and doc["drop_reason"] == "POLICY_DENIED"


def test_batch_answers_every_line_in_order(cluster, tmp_path, capsys):
    queries = [
        {"src": "demo/client", "dst": "demo/server", "dport": 80, "protocol": "TCP"},
        {"src": "demo/client", "dst": "demo/server", "dport": 81, "protocol": "tcp"},
        {"src": "demo/nobody", "dst": "demo/server", "dport": 81},
        {"src": "10.0.1.10", "dst": "demo/server", "dport": "53/udp"},
    ]
    batch = tmp_path / "q.jsonl"
    batch.write_text("".join(json.dumps(q) + "\n" for q in queries) + "\nnot json\n")
    code, out, err = trace(capsys, "--cluster", str(cluster), "--batch", str(batch), "-o", "json")
    answers = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [a["verdict"] for a in answers] == ["denied", "allowed", "error", "allowed", "error"]
    assert answers[0]["query"] == queries[0]
    assert "no pod or workload named 'nobody'" in answers[2]["error"]
    assert answers[4]["line"] == 6
    assert "2 queries could not be answered" in err


def test_batch_from_stdin_in_text(cluster):
    proc = run_cli("trace", "--cluster", str(cluster), "--batch", "-", "-o", "text",
                   input=b'{"src": "demo/client", "dst": "demo/server", "dport": 81}\n')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "demo/client -> demo/server 81/TCP: allowed\n"


@pytest.mark.parametrize("args, message", [
    (["--src", "demo/client", "--dst", "demo/server"], "give --src REF --dst REF --dport"),
    (["--src", "demo/client", "--dst", "demo/server", "--dport", "80/gre"], "unknown protocol"),
    (["--src", "demo/client", "--dst", "demo/server", "--dport", "99999"], "is not a port"),
    (["--src", "demo/ghost", "--dst", "demo/server", "--dport", "80"], "no pod or workload named 'ghost'"),
])
def test_errors_are_one_line(cluster, args, message):
    proc = run_cli("trace", "--cluster", str(cluster), *args)
    assert proc.returncode in (1, 2)
    err = proc.stderr.decode()
    assert message in err and "Traceback" not in err


def test_cluster_is_required_and_exclusive(cluster):
    proc = run_cli("trace", "--src", "a/b", "--dst", "a/c", "--dport", "80")
    assert proc.returncode == 2 and "--cluster PATH" in proc.stderr.decode()
    proc = run_cli("trace", "--cluster", str(cluster), "--live", "--src", "a/b", "--dst", "a/c", "--dport", "80")
    assert proc.returncode == 2 and "not both" in proc.stderr.decode()


def test_load_warnings_go_to_stderr(cluster, capsys):
    (cluster / "broken.yaml").write_text("kind: Pod\nmetadata: {name: [\n")
    (cluster / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, out, err = trace(capsys, "--cluster", str(cluster), "--src", "demo/client", "--dst", "demo/server",
                           "--dport", "81", "-o", "json")
    assert code == 0 and json.loads(out)["verdict"] == "allowed"
    assert f"warning: {cluster / 'broken.yaml'}:" in err
    assert "skipped objects of kinds not modelled: 1 ConfigMap" in err


def test_live_mode_reads_the_api_server(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    with FakeApiServer() as fake:
        fake.install("/apis/cilium.io/v2/ciliumnetworkpolicies")
        fake.put("/api/v1/namespaces", {"metadata": {"name": "shop", "labels": {
            "kubernetes.io/metadata.name": "shop"}}})
        for name, app in (("web-1", "web"), ("cli-1", "client"), ("other-1", "other")):
            fake.put("/api/v1/pods", {"metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
                                      "spec": {"containers": [{"name": "c"}]}})
        fake.put("/apis/cilium.io/v2/ciliumnetworkpolicies", {
            "metadata": {"name": "web-in", "namespace": "shop"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "web"}},
                     "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "client"}}]}]}})
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url)
        verdicts = []
        for src in ("shop/cli-1", "shop/other-1"):
            code, out, err = trace(capsys, "--live", "--kubeconfig", str(kubeconfig), "--src", src,
                                   "--dst", "shop/web-1", "--dport", "80", "-o", "json")
            assert code == 0, err
            verdicts.append(json.loads(out)["verdict"])
    assert verdicts == ["allowed", "denied"]
