"""Live cluster reading against a local HTTP server that answers like the Kubernetes API server."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import trustme
import yaml
from fake_apiserver import FakeApiServer, write_kubeconfig

from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.cluster.live import load_live
from hubbletui.cluster.model import KINDS, Change, ClusterState
from hubbletui.errors import ExitCode, HubbleTuiError, UnreachableError
from cli_run import run_cli
from paths import ROOT

PODS = "/api/v1/pods"
NAMESPACES = "/api/v1/namespaces"
DEPLOYMENTS = "/apis/apps/v1/deployments"
CNPS = "/apis/cilium.io/v2/ciliumnetworkpolicies"
CCNPS = "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies"
AUTHZ_V1 = "/apis/security.istio.io/v1/authorizationpolicies"
AUTHZ_V1BETA1 = "/apis/security.istio.io/v1beta1/authorizationpolicies"
PEERAUTH_V1 = "/apis/security.istio.io/v1/peerauthentications"
CIDR_GROUPS = "/apis/cilium.io/v2/ciliumcidrgroups"


def pod(name: str, namespace: str = "shop", **labels: str) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name},
                     "managedFields": [{"manager": "kubelet", "operation": "Update"}],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "web"}},
        "spec": {"serviceAccountName": "default", "containers": [{"name": "app", "image": "nginx"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.7", "qosClass": "BestEffort",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "restartCount": 3,
                                          "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }


def namespace(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "status": {"phase": "Active"}}


@pytest.fixture(autouse=True)
def no_ambient_kubeconfig(monkeypatch, tmp_path):
    """Tests see only the kubeconfig they write, never the machine's."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeApiServer(page_cap=2) as fake:  # at most 2 items a page: every list of 3+ paginates
        fake.install(CNPS, AUTHZ_V1, PEERAUTH_V1, CIDR_GROUPS)
        for name in ("shop", "kube-system"):
            fake.put(NAMESPACES, namespace(name))
        for name in ("web", "api", "db", "cache", "queue"):
            fake.put(PODS, pod(name))
        fake.put(DEPLOYMENTS, {"metadata": {"name": "web", "namespace": "shop"},
                               "spec": {"template": {"metadata": {"labels": {"app": "web"}}}},
                               "status": {"replicas": 1}})
        fake.put(CNPS, {"metadata": {"name": "allow-web", "namespace": "shop"},
                        "spec": {"endpointSelector": {"matchLabels": {"app": "db"}}}})
        fake.put(AUTHZ_V1, {"metadata": {"name": "deny-all", "namespace": "shop"}, "spec": {}})
        fake.put(PEERAUTH_V1, {"metadata": {"name": "default", "namespace": "istio-system"},
                               "spec": {"mtls": {"mode": "STRICT"}}})
        yield fake


@pytest.fixture
def kubeconfig(server, tmp_path) -> str:
    return str(write_kubeconfig(tmp_path / "kubeconfig", server.url))


@pytest.fixture
def watched(server, kubeconfig):
    state = load_live(kubeconfig=kubeconfig, watch=True)
    server.wait_for(lambda: len({r.path for r in server.watches()}) == len(KINDS) - 1)  # all but CCNP
    yield state
    state.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_modelled_kind_has_an_api_mapping():
    assert list(RESOURCES) == list(KINDS)


def test_initial_list_fills_the_state_as_kubectl_prints_it(server, kubeconfig):
    state = load_live(kubeconfig=kubeconfig)
    assert state.source == "live context fake"
    assert state.counts() == {"Namespace": 2, "Pod": 5, "Deployment": 1, "CiliumNetworkPolicy": 1,
                              "AuthorizationPolicy": 1, "PeerAuthentication": 1}
    web = state.get("Pod", "shop", "web")
    # built-in list items carry no apiVersion/kind on the wire; the state has them as kubectl prints them
    assert web["apiVersion"] == "v1" and web["kind"] == "Pod"
    assert web["metadata"]["labels"] == {"app": "web"}
    assert web["spec"]["serviceAccountName"] == "default"  # camelCase, as the API server wrote it
    assert "managedFields" not in web["metadata"]
    assert web["metadata"]["annotations"] == {"team": "web"}
    assert web["status"] == {"phase": "Running", "podIP": "10.0.0.7",
                             "containerStatuses": pod("web")["status"]["containerStatuses"]}
    assert "status" not in state.get("Deployment", "shop", "web")
    cnp = state.get("CiliumNetworkPolicy", "shop", "allow-web")
    assert cnp["apiVersion"] == "cilium.io/v2" and cnp["spec"]["endpointSelector"] == {"matchLabels": {"app": "db"}}
    assert state.get("PeerAuthentication", "istio-system", "default")["spec"]["mtls"]["mode"] == "STRICT"
    # five pods at two a page: three requests chained by continue tokens
    pod_lists = server.lists(PODS)
    assert [r.query.get("continue") is not None for r in pod_lists] == [False, True, True]
    assert all(r.query["limit"] == "500" for r in pod_lists)
    assert not server.watches()
    assert {r.method for r in server.requests} == {"GET"}
    assert state.warnings == ["CiliumClusterwideNetworkPolicy: not installed (cilium.io/v2 not served); "
                              "clusterwide Cilium policies will not be evaluated"]


def test_lists_run_concurrently(server, kubeconfig):
    server.list_delay = 0.2
    load_live(kubeconfig=kubeconfig)
    assert server.max_lists_in_flight >= 4


def test_fills_a_given_state_and_notifies_its_listeners(server, kubeconfig):
    state = ClusterState()
    changes: list[Change] = []
    state.subscribe(changes.append)
    assert load_live(kubeconfig=kubeconfig, state=state) is state
    assert {(c.kind, c.key) for c in changes if c.action == "upsert"} >= {("Pod", ("shop", "web")),
                                                                         ("Namespace", ("", "shop"))}


def test_missing_crds_and_forbidden_lists_are_warnings_not_failures(kubeconfig, server):
    server.served.pop(CNPS)
    server.served.pop(AUTHZ_V1)
    server.served.pop(PEERAUTH_V1)
    server.served.pop(CIDR_GROUPS)
    server.forbid(PODS)
    state = load_live(kubeconfig=kubeconfig)
    assert state.warnings == [
        "Pod: forbidden by RBAC (list pods at cluster scope)",
        "CiliumNetworkPolicy: not installed (cilium.io/v2 not served); Cilium policies will not be evaluated",
        "CiliumClusterwideNetworkPolicy: not installed (cilium.io/v2 not served); "
        "clusterwide Cilium policies will not be evaluated",
        "CiliumCIDRGroup: not installed (cilium.io/v2 or cilium.io/v2alpha1 not served); "
        "cidrGroupRef / cidrGroupSelector peers will admit nothing",
        "AuthorizationPolicy: not installed (security.istio.io/v1 or security.istio.io/v1beta1 not served); "
        "Istio authorization will not be evaluated",
        "PeerAuthentication: not installed (security.istio.io/v1 or security.istio.io/v1beta1 not served); "
        "Istio mTLS modes will not be checked",
    ]
    assert state.counts() == {"Namespace": 2, "Deployment": 1}


def test_istio_resources_fall_back_to_v1beta1(server, kubeconfig):
    server.served.pop(AUTHZ_V1)
    server.install(AUTHZ_V1BETA1)
    server.put(AUTHZ_V1BETA1, {"metadata": {"name": "old-style", "namespace": "shop"}, "spec": {"action": "DENY"}})
    state = load_live(kubeconfig=kubeconfig)
    policy = state.get("AuthorizationPolicy", "shop", "old-style")
    assert policy["apiVersion"] == "security.istio.io/v1beta1"
    assert not any("AuthorizationPolicy" in w for w in state.warnings)


def test_continue_token_expiring_mid_list_restarts_the_list(server, kubeconfig):
    server.expire_next_continue(PODS)
    state = load_live(kubeconfig=kubeconfig)
    assert sorted(name for _, name in state.objects["Pod"]) == ["api", "cache", "db", "queue", "web"]
    assert [r.query.get("continue") is not None for r in server.lists(PODS)] == [False, True, False, True, True]


def test_unreachable_server_is_one_line_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    config = write_kubeconfig(tmp_path / "kubeconfig", url)
    with pytest.raises(UnreachableError) as caught:
        load_live(kubeconfig=str(config))
    message = str(caught.value)
    assert message == f"cannot reach the Kubernetes API server at {url}: connection refused"
    assert caught.value.exit_code == ExitCode.UNREACHABLE


def test_rejected_token_is_an_error_not_unreachable(server, tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig", server.url, token="wrong")
    with pytest.raises(HubbleTuiError) as caught:
        load_live(kubeconfig=str(config))
    assert not isinstance(caught.value, UnreachableError)
    assert f"the API server at {server.url} rejected the credentials (401 Unauthorized)" in str(caught.value)


def test_kubeconfig_from_env_and_context_choice(server, tmp_path, monkeypatch):
    config = write_kubeconfig(tmp_path / "kubeconfig", server.url, context="staging")
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert load_live().source == "live context staging"
    assert load_live(context="staging").source == "live context staging"
    with pytest.raises(HubbleTuiError, match=r"Expected object with name nope") as caught:
        load_live(context="nope")
    assert "\n" not in str(caught.value)


def test_no_kubeconfig_and_not_in_a_cluster():
    with pytest.raises(HubbleTuiError, match=r"no kubeconfig at .*\.kube/config: pass --kubeconfig"):
        load_live()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_https_with_the_kubeconfig_ca(ca, tmp_path):
    with FakeApiServer(tls_cert=ca.issue_cert("127.0.0.1")) as server:
        server.put(PODS, pod("web"))
        config = write_kubeconfig(tmp_path / "kubeconfig", server.url, ca_pem=ca.cert_pem.bytes())
        state = load_live(kubeconfig=str(config))
    assert server.url.startswith("https://")
    assert state.get("Pod", "shop", "web") is not None


def test_untrusted_certificate_is_a_failed_tls_verification_naming_why(ca, tmp_path):
    with FakeApiServer(tls_cert=ca.issue_cert("127.0.0.1")) as server:
        config = write_kubeconfig(tmp_path / "kubeconfig", server.url)  # no CA: the system store does not know it
        with pytest.raises(UnreachableError) as caught:
            load_live(kubeconfig=str(config))
    assert str(caught.value) == (f"TLS verification failed: unable to get local issuer certificate for the "
                                 f"Kubernetes API server at {server.url} (does the kubeconfig's "
                                 f"certificate-authority match the server's certificate?)")


def test_in_cluster_service_account(ca, tmp_path, monkeypatch):
    from kubernetes.config import incluster_config

    token, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-token")
    ca_file.write_bytes(ca.cert_pem.bytes())
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca_file))
    with FakeApiServer(tls_cert=ca.issue_cert("127.0.0.1"), token="pod-token") as server:
        server.put(PODS, pod("web"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", server.url.rsplit(":", 1)[1])
        state = load_live()
    assert state.source == "live in-cluster"
    assert state.get("Pod", "shop", "web") is not None


# --- watching ----------------------------------------------------------------------------------------


def test_watch_starts_from_the_list_and_applies_added_modified_deleted(server, watched):
    pods_watch = server.watches(PODS)[0]
    assert pods_watch.query["allowWatchBookmarks"] == "true"
    assert pods_watch.query["resourceVersion"] == str(server.rv)  # the list's: nothing changed since
    server.put(PODS, pod("new"))
    server.put(PODS, pod("web", app="web", tier="front"))
    server.remove(PODS, "shop", "db")
    server.put(CNPS, {"metadata": {"name": "allow-web", "namespace": "shop"}, "spec": {"endpointSelector": {}}})
    server.wait_for(lambda: watched.get("Pod", "shop", "db") is None
                    and watched.get("CiliumNetworkPolicy", "shop", "allow-web")["spec"]["endpointSelector"] == {})
    new = watched.get("Pod", "shop", "new")
    assert new["kind"] == "Pod" and "managedFields" not in new["metadata"]
    assert watched.get("Pod", "shop", "web")["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert len(server.lists(PODS)) == 3  # the initial paginated list only
    assert {r.method for r in server.requests} == {"GET"}


def test_bookmark_and_broken_stream_resume_without_a_relist(server, watched):
    bookmark_rv = server.bookmark()
    before = len(server.watches(PODS))
    server.wait_for(lambda: (PODS, "BOOKMARK", bookmark_rv) in server.delivered)
    server.break_watches()
    server.wait_for(lambda: len(server.watches(PODS)) > before)
    assert server.watches(PODS)[-1].query["resourceVersion"] == str(bookmark_rv)
    server.put(PODS, pod("after-break"))
    server.wait_for(lambda: watched.get("Pod", "shop", "after-break") is not None)
    assert len(server.lists(PODS)) == 3


@pytest.mark.parametrize("gone_as_http", [False, True], ids=["error-event", "http-410"])
def test_410_gone_relists_and_watches_again(server, watched, gone_as_http):
    server.gone_as_http = gone_as_http
    deleted: list[tuple] = []
    watched.subscribe(lambda change: deleted.append(change.key) if change.action == "delete" else None)
    with server.paused():  # the client misses these events, then the history is compacted away
        server.put(PODS, pod("missed"))
        server.remove(PODS, "shop", "cache")
        server.compact()
        compacted_rv = server.rv
        server.break_watches()
    server.wait_for(lambda: watched.get("Pod", "shop", "missed") is not None)
    assert watched.get("Pod", "shop", "cache") is None
    assert ("shop", "cache") in deleted
    server.wait_for(lambda: int(server.watches(PODS)[-1].query["resourceVersion"]) >= compacted_rv)
    assert [r.query.get("continue") is not None for r in server.lists(PODS)] == [False, True, True] * 2
    server.put(PODS, pod("after-relist"))
    server.wait_for(lambda: watched.get("Pod", "shop", "after-relist") is not None)


def test_forbidden_watch_is_a_warning_retried_until_it_is_allowed(server, kubeconfig):
    server.forbid(PODS, "watch")
    state = load_live(kubeconfig=kubeconfig, watch=True)
    try:
        server.wait_for(lambda: any(w.startswith("Pod: forbidden by RBAC (watch pods") for w in state.warnings))
        assert ("Pod: forbidden by RBAC (watch pods at cluster scope); pods are not kept current; retrying"
                in state.warnings)
        server.put(NAMESPACES, namespace("late"))  # other kinds go on
        server.wait_for(lambda: state.get("Namespace", "", "late") is not None)
        server.forbidden.discard((PODS, "watch"))  # access granted: the kind recovers by itself
        server.wait_for(lambda: not any(w.startswith("Pod:") for w in state.warnings), timeout=15)
        server.put(PODS, pod("seen"))
        server.wait_for(lambda: state.get("Pod", "shop", "seen") is not None)
    finally:
        state.stop()


def test_a_kind_unreadable_at_the_start_joins_the_state_once_readable(server, kubeconfig):
    from hubbletui.policy.engine import PolicyEngine

    server.forbid(CNPS)
    state = load_live(kubeconfig=kubeconfig, watch=True)
    engine = PolicyEngine(state, follow=True)
    try:
        assert "CiliumNetworkPolicy" in engine.incomplete
        server.forbidden.discard((CNPS, "list"))
        server.put(CNPS, {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                          "metadata": {"name": "late", "namespace": "shop"}, "spec": {"endpointSelector": {}}})
        server.wait_for(lambda: state.get("CiliumNetworkPolicy", "shop", "late") is not None, timeout=15)
        server.wait_for(lambda: "CiliumNetworkPolicy" not in engine.incomplete)
        assert not any(w.startswith("CiliumNetworkPolicy:") for w in state.warnings)
    finally:
        engine.close()
        state.stop()


def test_429_waits_as_retry_after_says_and_5xx_is_retried(server, kubeconfig):
    server.put(PODS, pod("web"))
    server.fail_next(PODS, 429, retry_after="1")
    server.fail_next(NAMESPACES, 500, 503)
    started = time.monotonic()
    state = load_live(kubeconfig=kubeconfig)
    assert time.monotonic() - started >= 1.0
    assert state.get("Pod", "shop", "web") is not None
    assert state.get("Namespace", "", "kube-system") is not None
    assert not [w for w in state.warnings if w.startswith(("Pod:", "Namespace:"))]
    def first_pages(path: str) -> int:
        return sum(1 for r in server.lists(path) if "continue" not in r.query)

    assert first_pages(PODS) == 2 and first_pages(NAMESPACES) == 3


def test_a_server_failing_for_longer_than_the_retries_is_a_warning(server, kubeconfig, monkeypatch):
    from hubbletui.cluster import live

    monkeypatch.setattr(live, "LIST_RETRY_SECONDS", 0.5)
    server.fail_next(PODS, *([503] * 50))
    state = load_live(kubeconfig=kubeconfig)
    assert [w for w in state.warnings if w.startswith("Pod:")] == [
        f"Pod: list failed at {server.url} (503 Service Unavailable: fault 503 for the test)"]


def test_watch_reopened_after_a_503(server, watched):
    server.fail_next(PODS, 503)
    server.break_watches()
    server.wait_for(lambda: len(server.watches(PODS)) >= 3, timeout=10)
    server.put(PODS, pod("after-503"))
    server.wait_for(lambda: watched.get("Pod", "shop", "after-503") is not None)


def test_nothing_readable_is_an_error_naming_the_permission(server, kubeconfig):
    for path in list(server.served):
        server.forbid(path)
    with pytest.raises(HubbleTuiError) as caught:
        load_live(kubeconfig=kubeconfig)
    assert str(caught.value) == (
        f"no permission to read the cluster (live context fake, {server.url}): list namespaces (and "
        f"{len(server.served) - 1} more kinds) at cluster scope is forbidden; grant the read-only ClusterRole "
        f"in deploy/rbac.yaml (get/list/watch), or name the namespaces you may read with -n NAMESPACE")


def test_a_server_that_ends_watches_at_once_is_not_hammered(server, kubeconfig):
    server.end_watches_at_once = True
    state = load_live(kubeconfig=kubeconfig, watch=True)
    try:
        server.wait_for(lambda: len(server.watches(PODS)) >= 3, timeout=5)
        # backoff: the first retry waits 0.25-0.5 s, the second 0.5-1 s, so three watches take >= 0.75 s
        # and a spinning client would have made hundreds by then
        assert len(server.watches(PODS)) <= 4
    finally:
        state.stop()


def test_stop_ends_every_watch_thread(server, watched):
    def watch_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("hubbletui-watch-")]

    assert len(watch_threads()) == len(KINDS)  # one kind is not installed: its thread looks for it now and then
    watched.stop()
    assert watch_threads() == []


def test_rbac_grants_exactly_get_list_watch_on_what_is_read():
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()))
    by_kind = {doc["kind"]: doc for doc in documents}
    granted = {(group, resource) for rule in by_kind["ClusterRole"]["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {(r.group, r.plural) for r in RESOURCES.values()}
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in by_kind["ClusterRole"]["rules"])
    binding = by_kind["ClusterRoleBinding"]
    account = by_kind["ServiceAccount"]["metadata"]
    assert binding["roleRef"]["name"] == by_kind["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": account["namespace"]}]


def test_a_server_that_never_answers_is_unreachable_by_timeout(tmp_path, monkeypatch):
    from hubbletui.cluster import live

    monkeypatch.setattr(live, "LIST_TIMEOUT", (1.0, 0.3))
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(UnreachableError) as caught:
            load_live(kubeconfig=str(write_kubeconfig(tmp_path / "kubeconfig", url)))
    assert str(caught.value) == f"cannot reach the Kubernetes API server at {url}: timed out waiting for an answer"


def test_dns_failure_is_named(tmp_path, monkeypatch):
    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no test should depend on the machine's resolver
    config = write_kubeconfig(tmp_path / "kubeconfig", "https://api.cluster.example:6443")
    with pytest.raises(UnreachableError) as caught:
        load_live(kubeconfig=str(config))
    assert str(caught.value) == ("cannot reach the Kubernetes API server at https://api.cluster.example:6443: "
                                 "DNS lookup failed (Name or service not known)")


@pytest.mark.parametrize("command", ["explain", "suggest"])
def test_an_unreadable_policy_kind_makes_whole_recording_answers_incomplete(server, kubeconfig, command):
    # the Cilium policies could decide every drop: answers without them are flagged and the exit code says so
    server.forbid(CNPS)
    flows = str(ROOT / "tests" / "fixtures" / "flows" / "policy_denied_egress.jsonl")
    out = run_cli(command, "--live", "--kubeconfig", kubeconfig, "--input-file", flows, "-o", "json",
                  env={"KUBECONFIG": kubeconfig})
    assert out.returncode == ExitCode.INCOMPLETE, out.stderr
    assert b"incomplete cluster state: CiliumNetworkPolicy: forbidden by RBAC" in out.stderr
    if command == "explain":
        doc = json.loads(out.stdout)
        assert doc["incomplete"] == ["CiliumNetworkPolicy: forbidden by RBAC (list ciliumnetworkpolicies at "
                                     "cluster scope)"]


@pytest.mark.parametrize("command", ["explain", "suggest"])
def test_a_fully_readable_cluster_keeps_the_usual_exit_codes(server, kubeconfig, command):
    flows = str(ROOT / "tests" / "fixtures" / "flows" / "policy_denied_egress.jsonl")
    out = run_cli(command, "--live", "--kubeconfig", kubeconfig, "--input-file", flows, "-o", "json",
                  env={"KUBECONFIG": kubeconfig})
    assert out.returncode in (ExitCode.OK, ExitCode.NOTHING_TO_FIX), out.stderr
    assert b"incomplete cluster state" not in out.stderr
