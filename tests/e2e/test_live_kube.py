"""Live mode against the real kube-apiserver of ../shared/kube (tests/support/kube_server.py): every kind the
engine reads is listed and watched, deploy/rbac.yaml is enough and only reads, a user without it gets one line
naming the permission, a namespaced user reads namespace by namespace, and a restart of the API server (with
its 403s before RBAC is synced) is survived. The fake server of test_cluster_live.py stays for the faults a
real one does not make on demand (429 with Retry-After, 5xx, expiring continue tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_run import run_cli
from kube_server import wait_until
from paths import ROOT

from hubbletui import __version__
from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.cluster.kube_connect import connect
from hubbletui.cluster.live import list_cluster, load_live
from hubbletui.cluster.model import KINDS
from hubbletui.cluster.snapshot import load_snapshot
from hubbletui.errors import ExitCode

READ_VERBS = {"get", "list", "watch"}


@pytest.fixture(autouse=True)
def no_ambient_kubeconfig(monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(scope="module")
def reader_bound(kube_server):
    """deploy/rbac.yaml applied, its ClusterRole bound to the user `reader` (nothing else is granted to it)."""
    kube_server.kubectl("apply", "-f", str(ROOT / "deploy" / "rbac.yaml"))
    kube_server.kubectl("create", "clusterrolebinding", "reader-hubbletui", "--clusterrole=hubbletui-reader",
                        "--user=reader")
    return kube_server


def every_kind(ns: str) -> list[dict]:
    """One object of each kind hubbletui reads, in namespace ``ns`` (cluster-scoped ones named after it)."""
    labels = {"app": "web"}
    template = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}
    job_template = {"metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": template["spec"]["containers"]}}
    selector = {"matchLabels": labels}

    def obj(api_version: str, kind: str, name: str, spec: dict | None = None, namespaced: bool = True, **extra):
        meta = {"name": name, **({"namespace": ns} if namespaced else {})}
        return {"apiVersion": api_version, "kind": kind, "metadata": meta, **({"spec": spec} if spec else {}),
                **extra}

    return [
        obj("v1", "Namespace", f"{ns}-other", namespaced=False),
        obj("v1", "Pod", "web", template["spec"]) | {"metadata": {"name": "web", "namespace": ns, "labels": labels}},
        obj("v1", "ServiceAccount", "web"),
        obj("v1", "Service", "web", {"selector": labels, "ports": [{"port": 80}]}),
        obj("discovery.k8s.io/v1", "EndpointSlice", "web-1", addressType="IPv4",
            endpoints=[{"addresses": ["10.244.9.9"]}], ports=[{"port": 80, "protocol": "TCP"}]),
        obj("v1", "Node", f"{ns}-node", namespaced=False),
        obj("apps/v1", "Deployment", "web", {"selector": selector, "template": template}),
        obj("apps/v1", "StatefulSet", "web", {"selector": selector, "template": template, "serviceName": "web"}),
        obj("apps/v1", "DaemonSet", "web", {"selector": selector, "template": template}),
        obj("apps/v1", "ReplicaSet", "web", {"selector": selector, "template": template}),
        obj("v1", "ReplicationController", "web", {"selector": labels, "template": template}),
        obj("batch/v1", "Job", "web", {"template": job_template}),
        obj("batch/v1", "CronJob", "web",
            {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template}}}),
        obj("networking.k8s.io/v1", "NetworkPolicy", "web", {"podSelector": {"matchLabels": labels},
                                                             "policyTypes": ["Ingress"]}),
        obj("cilium.io/v2", "CiliumNetworkPolicy", "web", {"endpointSelector": selector, "ingress": [{}]}),
        obj("cilium.io/v2", "CiliumClusterwideNetworkPolicy", f"{ns}-web", {"endpointSelector": selector},
            namespaced=False),
        obj("cilium.io/v2alpha1", "CiliumCIDRGroup", f"{ns}-corp", {"externalCIDRs": ["192.0.2.0/24"]},
            namespaced=False),
        obj("security.istio.io/v1", "AuthorizationPolicy", "web", {"selector": selector, "action": "ALLOW"}),
        obj("security.istio.io/v1", "PeerAuthentication", "web", {"selector": selector, "mtls": {"mode": "STRICT"}}),
    ]


def key_of(obj: dict) -> tuple[str, str]:
    namespaced = KINDS[obj["kind"]][1]
    return (obj["metadata"].get("namespace", "") if namespaced else ""), obj["metadata"]["name"]


def contains(got, want) -> bool:
    """Whether ``got`` holds everything ``want`` says (dicts by key, lists item by item)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and contains(got[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(contains, got, want))
    return got == want


def as_yaml(objs: list[dict]) -> str:
    return yaml.safe_dump_all(objs)


def test_the_objects_cover_every_kind_hubbletui_reads():
    assert sorted({o["kind"] for o in every_kind("x")}) == sorted(RESOURCES)


def test_watch_sees_creates_updates_and_deletes_of_every_kind(reader_bound, tmp_path):
    kube, ns = reader_bound, reader_bound.namespace()
    objs = every_kind(ns)
    state = load_live(kubeconfig=kube.env["KUBECONFIG_READER"], watch=True)
    try:
        assert state.warnings == []
        manifest = tmp_path / "objs.yaml"
        manifest.write_text(as_yaml(objs))
        kube.kubectl("create", "-f", str(manifest))
        seen = {o["kind"]: wait_until(lambda o=o: state.get(o["kind"], *key_of(o)) is not None) for o in objs}
        kube.kubectl("label", "-f", str(manifest), "changed=yes")
        for o in objs:
            wait_until(lambda o=o: (state.get(o["kind"], *key_of(o))["metadata"].get("labels") or {})
                       .get("changed") == "yes")
        kube.kubectl("delete", "-f", str(manifest), "--wait=false")
        for o in objs:
            if o["kind"] == "Namespace":  # no namespace controller: it stays Terminating
                wait_until(lambda o=o: state.get("Namespace", *key_of(o))["metadata"].get("deletionTimestamp"))
            else:
                wait_until(lambda o=o: state.get(o["kind"], *key_of(o)) is None)
        # the watch delivers each change well within a second (a loaded CI machine gets the 10 s of wait_until)
        assert max(seen.values()) < 10
    finally:
        state.stop()


def test_snapshot_with_the_rbac_yaml_role_holds_what_was_created_and_only_reads(reader_bound, tmp_path):
    kube, ns = reader_bound, reader_bound.namespace()
    objs = every_kind(ns)
    kube.kubectl("create", "-f", "-", input=as_yaml(objs))
    out = run_cli("snapshot", "--kubeconfig", kube.env["KUBECONFIG_READER"], "-o", str(tmp_path / "snap"))
    assert out.returncode == 0, out.stderr
    assert b"warning" not in out.stderr
    state = load_snapshot(tmp_path / "snap")
    for o in objs:
        got = state.get(o["kind"], *key_of(o))
        assert got is not None, o["kind"]
        assert contains(got, {k: v for k, v in o.items() if k != "metadata"}), o["kind"]  # the server adds defaults
    # the snapshot equals what live mode holds
    conn = connect(kubeconfig=kube.env["KUBECONFIG_READER"])
    try:
        listing = list_cluster(conn)
    finally:
        conn.api_client.close()
    for kind, listed in listing.listed.items():
        assert sorted(map(key_of, listed.items)) == sorted(state.objects[kind]), kind
    requests = kube.audit("reader")
    assert {e["verb"] for e in requests} <= READ_VERBS, {e["verb"] for e in requests}
    assert {e["userAgent"] for e in requests} == {f"hubbletui/{__version__}"}


def test_insecure_tls_is_one_line_not_a_warning_per_request(reader_bound, tmp_path):
    config = yaml.safe_load(Path(reader_bound.env["KUBECONFIG_READER"]).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)
        cluster["cluster"].pop("certificate-authority", None)
        cluster["cluster"]["insecure-skip-tls-verify"] = True
    insecure = tmp_path / "insecure.kubeconfig"
    insecure.write_text(yaml.safe_dump(config))
    out = run_cli("snapshot", "--kubeconfig", str(insecure), "-o", str(tmp_path / "snap"))
    assert out.returncode == 0, out.stderr
    lines = out.stderr.decode().splitlines()
    assert [line for line in lines if not line.startswith("hubbletui: wrote ")] == [
        f"hubbletui: warning: TLS verification is off for {reader_bound.env['SERVER']} (insecure-skip-tls-verify "
        f"in the kubeconfig): anyone on the path could answer for the API server"]


def test_a_server_whose_certificate_is_not_trusted_is_a_failed_verification(reader_bound, tmp_path):
    config = yaml.safe_load(Path(reader_bound.env["KUBECONFIG_READER"]).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"].pop("certificate-authority-data", None)  # the system store does not know kube.sh's CA
    untrusted = tmp_path / "untrusted.kubeconfig"
    untrusted.write_text(yaml.safe_dump(config))
    out = run_cli("trace", "--live", "--kubeconfig", str(untrusted), "--src", "a/b", "--dst", "a/c", "--dport", "80")
    assert out.returncode == ExitCode.UNREACHABLE
    assert out.stderr.decode().startswith("hubbletui: TLS verification failed: ")
    assert out.stderr.count(b"\n") == 1


def test_no_permission_at_all_is_one_line_and_snapshot_keeps_the_folder(kube_server, tmp_path):
    # cert-user has no binding anywhere
    kube = kube_server
    earlier = tmp_path / "snap"
    earlier.mkdir()
    (earlier / "pods.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    out = run_cli("snapshot", "--kubeconfig", kube.env["KUBECONFIG_CERT"], "-o", str(earlier))
    assert out.returncode == ExitCode.ERROR
    lines = out.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "no permission to read the cluster" in lines[0] and "list namespaces" in lines[0]
    assert "deploy/rbac.yaml" in lines[0]
    assert sorted(p.name for p in earlier.iterdir()) == ["pods.yaml"]
    trace = run_cli("trace", "--live", "--kubeconfig", kube.env["KUBECONFIG_CERT"], "--src", "default/a",
                    "--dst", "default/b", "--dport", "80")
    assert trace.returncode == ExitCode.ERROR
    assert trace.stderr.decode().count("\n") == 1 and b"deploy/rbac.yaml" in trace.stderr


def deny_web(ns: str) -> dict:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "metadata": {"name": "deny", "namespace": ns},
            "spec": {"endpointSelector": {"matchLabels": {"app": "web"}}, "ingressDeny": [{"fromEndpoints": [{}]}]}}


def pods(ns: str) -> list[dict]:
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
             "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}} for name in ("web", "client")]


def trace_json(kubeconfig: str, ns: str, *extra: str):
    out = run_cli("trace", "--live", "--kubeconfig", kubeconfig, "--src", f"{ns}/client", "--dst", f"{ns}/web",
                  "--dport", "80", "-o", "json", *extra)
    return out, (json.loads(out.stdout) if out.stdout.strip() else None)


def test_namespaced_access_reads_namespace_by_namespace_and_never_answers_silently(kube_server):
    kube = kube_server
    ns = kube.namespace()
    kube.kubectl("create", "-f", "-", input=as_yaml([*pods(ns), deny_web(ns)]))
    # the `view` ClusterRole in one namespace: pods yes, Cilium policies no (view does not aggregate CRDs)
    kube.kubectl("create", "rolebinding", "cert-view", "--clusterrole=view", "--user=cert-user", "-n", ns)
    out, doc = trace_json(kube.env["KUBECONFIG_CERT"], ns)
    assert out.returncode == ExitCode.INCOMPLETE, out.stderr
    assert doc["src"]["kind"] == "pod" and doc["dst"]["kind"] == "pod"  # found through the namespaced list
    assert any("CiliumNetworkPolicy: forbidden by RBAC" in why for why in doc["incomplete"])
    assert any(n.startswith("incomplete cluster state: ") for n in doc["notes"])
    assert f"Pod: read in namespace {ns} only".encode() in out.stderr
    # the Cilium policies readable in that namespace too: the verdict is DENIED, still marked incomplete
    # (clusterwide policies and other namespaces are out of sight)
    kube.kubectl("create", "role", "cilium-read", "--verb=get,list,watch", "--resource=ciliumnetworkpolicies.cilium.io",
                 "-n", ns)
    kube.kubectl("create", "rolebinding", "cert-cilium", "--role=cilium-read", "--user=cert-user", "-n", ns)
    out, doc = trace_json(kube.env["KUBECONFIG_CERT"], ns)
    assert out.returncode == ExitCode.INCOMPLETE, out.stderr
    assert doc["verdict"] == "denied"
    assert any("CiliumClusterwideNetworkPolicy" in why for why in doc["incomplete"])


def test_one_unreadable_kind_is_never_an_answer_given_with_confidence(reader_bound):
    kube, ns = reader_bound, reader_bound.namespace()
    kube.kubectl("create", "-f", "-", input=as_yaml([*pods(ns), deny_web(ns)]))
    out, doc = trace_json(kube.env["KUBECONFIG_READER"], ns)
    assert (out.returncode, doc["verdict"], doc["incomplete"]) == (ExitCode.OK, "denied", [])
    # the same user with the Cilium policies taken away, as the issue found it: ALLOWED, exit 0 before
    kube.kubectl("create", "clusterrole", "no-cilium", "--verb=get,list,watch",
                 "--resource=pods,namespaces,serviceaccounts,services,nodes")
    kube.kubectl("create", "clusterrolebinding", "cert-no-cilium", "--clusterrole=no-cilium", "--user=cert-user")
    try:
        out, doc = trace_json(kube.env["KUBECONFIG_CERT"], ns)
        assert out.returncode == ExitCode.INCOMPLETE, out.stderr
        assert any(w.startswith("CiliumNetworkPolicy: forbidden by RBAC") for w in doc["incomplete"])
        assert b"incomplete cluster state: CiliumNetworkPolicy" in out.stderr
    finally:
        kube.kubectl("delete", "clusterrolebinding", "cert-no-cilium")


# last in the file: it restarts the session's server (same ports, same objects)
def test_a_restart_of_the_api_server_is_survived_and_the_state_equals_a_fresh_list(reader_bound):
    from hubbletui.policy.engine import PolicyEngine

    kube, ns = reader_bound, reader_bound.namespace()
    state = load_live(kubeconfig=kube.env["KUBECONFIG_READER"], watch=True)
    engine = PolicyEngine(state, follow=True)
    try:
        extra = {**pods(ns)[0], "metadata": {"name": "extra", "namespace": ns}}
        kube.kubectl("create", "-f", "-", input=as_yaml([*pods(ns), extra]))
        wait_until(lambda: state.get("Pod", ns, "extra") is not None)
        kube.restart()  # same ports; for a moment after it serves, RBAC answers 403 to the bound reader
        wait_until(lambda: any("not kept current" in w for w in state.warnings) or not state.warnings, timeout=5)
        kube.kubectl("create", "-f", "-", input=as_yaml([deny_web(ns)]))
        kube.kubectl("delete", "pod", "extra", "-n", ns, "--wait=false")
        wait_until(lambda: state.get("CiliumNetworkPolicy", ns, "deny") is not None
                   and state.get("Pod", ns, "extra") is None, timeout=60)
        wait_until(lambda: not state.warnings and not engine.incomplete, timeout=60)
        conn = connect(kubeconfig=kube.env["KUBECONFIG_READER"])
        try:
            fresh = list_cluster(conn)
        finally:
            conn.api_client.close()
        for kind, listed in fresh.listed.items():
            assert {key_of(o): o for o in listed.items} == state.objects[kind], kind
        # the engine follows the recovered state: the policy created while the watch was down now denies
        assert engine.trace(f"{ns}/client", f"{ns}/web", 80).to_dict()["verdict"] == "denied"
    finally:
        engine.close()
        state.stop()
