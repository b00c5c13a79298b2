"""`hubbletui snapshot -o DIR` against a local fake API server: what it writes, how it fails."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest
import yaml
from cli_run import run_cli
from fake_apiserver import FakeApiServer, write_kubeconfig

from hubbletui.cli import main
from hubbletui import files as atomic
from hubbletui.cluster.live import load_live
from hubbletui.cluster.model import KINDS
from hubbletui.cluster.snapshot import load_snapshot

PODS = "/api/v1/pods"
NAMESPACES = "/api/v1/namespaces"
CNPS = "/apis/cilium.io/v2/ciliumnetworkpolicies"
AUTHZ = "/apis/security.istio.io/v1/authorizationpolicies"


@pytest.fixture(autouse=True)
def no_ambient_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeApiServer(page_cap=3) as fake:
        fake.install(CNPS, AUTHZ)
        for name in ("shop", "ops"):
            fake.put(NAMESPACES, {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                                  "status": {"phase": "Active"}})
        for i in range(7):
            fake.put(PODS, {
                "metadata": {"name": f"web-{i}", "namespace": "shop", "labels": {"app": "web", "note": "a: b # c"},
                             "managedFields": [{"manager": "kube-controller-manager"}]},
                "spec": {"containers": [{"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "qosClass": "Burstable", "startTime": "2026-01-01T00:00:00Z",
                           "containerStatuses": [{"name": "web", "restartCount": i,
                                                  "state": {"running": {}}}]}})
        fake.put(CNPS, {"metadata": {"name": "web-ingress", "namespace": "shop"},
                        "spec": {"endpointSelector": {"matchLabels": {"app": "web"}},
                                 "ingress": [{"toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}]}})
        fake.put(AUTHZ, {"metadata": {"name": "allow-ops", "namespace": "shop"},
                         "spec": {"action": "ALLOW", "rules": [{"from": [{"source": {"namespaces": ["ops"]}}]}]}})
        yield fake


@pytest.fixture
def kubeconfig(server, tmp_path) -> str:
    return str(write_kubeconfig(tmp_path / "kubeconfig", server.url))


def snapshot(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["snapshot", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_one_list_file_per_kind_that_reloads_to_the_live_objects(server, kubeconfig, tmp_path, capsys):
    out_dir = tmp_path / "snap"
    code, out, err = snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))
    assert code == 0
    assert out == ""  # stdout is for data; the summary is talk
    assert f"wrote 16 files to {out_dir} from live context fake ({server.url}): 2 Namespace, 7 Pod, " \
           f"1 CiliumNetworkPolicy, 1 AuthorizationPolicy (12 kinds empty)" in err
    assert "warning: CiliumClusterwideNetworkPolicy: not installed (cilium.io/v2 not served)" in err
    assert "warning: PeerAuthentication: not installed" in err
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{name}.yaml" for name in ("namespaces", "pods", "serviceaccounts", "services", "deployments",
                                    "statefulsets", "daemonsets", "replicasets", "replicationcontrollers", "jobs",
                                    "cronjobs", "networkpolicies", "ciliumnetworkpolicies",
                                    "authorizationpolicies", "nodes", "endpointslices"))

    pods = yaml.safe_load((out_dir / "pods.yaml").read_text())
    assert pods["kind"] == "List" and pods["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in pods["items"]] == [f"web-{i}" for i in range(7)]
    web3 = pods["items"][3]
    assert web3["apiVersion"] == "v1" and web3["kind"] == "Pod"
    assert web3["metadata"]["labels"] == {"app": "web", "note": "a: b # c"}  # YAML-special text survives
    assert "managedFields" not in web3["metadata"] and "resourceVersion" not in web3["metadata"]
    assert web3["status"] == {"phase": "Running", "containerStatuses": [
        {"name": "web", "restartCount": 3, "state": {"running": {}}}]}
    namespaces = yaml.safe_load((out_dir / "namespaces.yaml").read_text())
    assert all("status" not in ns for ns in namespaces["items"])

    live = load_live(kubeconfig=kubeconfig)
    reloaded = load_snapshot(out_dir)
    assert reloaded.warnings == [] and not reloaded.skipped_kinds
    for kind in KINDS:
        assert reloaded.list(kind) == live.list(kind), kind


def test_output_is_byte_stable_between_runs(kubeconfig, tmp_path, capsys):
    first, second = tmp_path / "one", tmp_path / "two"
    assert snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(first))[0] == 0
    assert snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(second))[0] == 0
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_a_kind_that_can_no_longer_be_read_loses_its_stale_file(server, kubeconfig, tmp_path, capsys):
    out_dir = tmp_path / "snap"
    snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))
    assert (out_dir / "ciliumnetworkpolicies.yaml").exists()
    server.served.pop(CNPS)  # Cilium uninstalled since
    server.forbid(PODS)
    code, _, err = snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))
    assert code == 0
    assert not (out_dir / "ciliumnetworkpolicies.yaml").exists()
    assert not (out_dir / "pods.yaml").exists()
    assert f"removed {out_dir / 'pods.yaml'}: left by an earlier snapshot" in err
    assert "warning: Pod: forbidden by RBAC (list pods at cluster scope)" in err
    # the snapshot remembers what it could not read (not the uninstalled CRD: no such objects exist) ...
    assert (out_dir / "unreadable.txt").read_text() == "Pod: forbidden by RBAC (list pods at cluster scope)\n"
    # ... so answers from it later are marked incomplete, as live mode's were
    assert load_snapshot(out_dir).warnings == ["Pod: forbidden by RBAC (list pods at cluster scope) "
                                               "(when the snapshot was taken)"]
    server.forbidden.clear()
    assert snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))[0] == 0
    assert not (out_dir / "unreadable.txt").exists()


def test_damaged_unreadable_lines_are_named_and_skipped(tmp_path):
    (tmp_path / "unreadable.txt").write_text("Pod: forbidden\nnot a line\nBogus: x\n")
    assert load_snapshot(tmp_path).warnings == [
        "Pod: forbidden (when the snapshot was taken)",
        f"{tmp_path / 'unreadable.txt'}:2: not a 'Kind: why' line, skipped",
        f"{tmp_path / 'unreadable.txt'}:3: not a 'Kind: why' line, skipped"]


def test_a_failure_mid_write_leaves_the_previous_file_whole(kubeconfig, server, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "snap"
    snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    server.put(PODS, {"metadata": {"name": "web-new", "namespace": "shop"}, "spec": {}})
    real_fsync = atomic.os.fsync

    def disk_fills_up(fd):
        # the data of pods.yaml's temporary file is half on disk when the disk fills up
        if ".pods.yaml." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", disk_fills_up)
    code, _, err = snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(out_dir))
    assert code == 1
    assert err.strip().splitlines()[-1] == f"hubbletui: cannot write {out_dir / 'pods.yaml'}: No space left on device"
    assert (out_dir / "pods.yaml").read_bytes() == before["pods.yaml"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(before)  # no temporary file left behind


def test_unreachable_cluster_exits_4_with_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    result = run_cli("snapshot", "--kubeconfig", str(config), "-o", str(tmp_path / "snap"),
                     env={"HOME": str(tmp_path)})
    assert result.returncode == 4
    assert result.stderr.decode() == (f"hubbletui: cannot reach the Kubernetes API server at "
                                      f"http://127.0.0.1:{port}: connection refused\n")
    assert result.stdout == b""
    assert not (tmp_path / "snap").exists()


def test_output_dir_is_required(capsys):
    code, _, err = snapshot(capsys)
    assert code == 2
    assert "Missing option '-o' / '--output-dir'" in err


def test_context_flag_selects_the_context(server, tmp_path, capsys):
    config = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="prod")
    code, _, err = snapshot(capsys, "--kubeconfig", str(config), "--context", "prod", "-o", str(tmp_path / "s"))
    assert code == 0 and "from live context prod" in err
    code, _, err = snapshot(capsys, "--kubeconfig", str(config), "--context", "staging", "-o", str(tmp_path / "s"))
    assert code == 1 and err.startswith(f"hubbletui: kubeconfig {config}: ") and "staging" in err


def test_written_files_are_not_left_private(kubeconfig, tmp_path, capsys):
    snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(tmp_path / "snap"))
    assert ((tmp_path / "snap" / "pods.yaml").stat().st_mode & 0o777) == 0o644


def test_snapshot_yaml_is_what_pyyaml_emits(kubeconfig, tmp_path, capsys):
    snapshot(capsys, "--kubeconfig", kubeconfig, "-o", str(tmp_path / "snap"))
    text = (tmp_path / "snap" / "ciliumnetworkpolicies.yaml").read_text()
    document = yaml.safe_load(text)
    assert yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True) == text
    assert Path(tmp_path / "snap" / "ciliumnetworkpolicies.yaml").read_text().startswith("apiVersion: v1\n")
