#!/usr/bin/env python3
"""Make the built-in demo scenario and the small flow fixtures, deterministically.

    python scripts/make_demo.py [--out ROOT]

writes, under ROOT (the repository by default):
  hubbletui/demo/cluster/*.yaml   the cluster snapshot (`kind: List` per kind, as `kubectl get -A -o yaml` prints)
  hubbletui/demo/flows.jsonl      the recording (jsonpb lines, as `hubble observe -o jsonpb` prints)
  tests/fixtures/flows/*.jsonl    small purpose-built recordings for tests

Everything comes from one seed: running it again gives identical bytes (a test checks).

The story (cluster time 2026-11-27 23:00:00Z + ~4.5 min). Namespaces database (in the Istio mesh, STRICT mTLS),
monitoring, shop, payments (not in the mesh), kube-system, istio-system. The app namespaces run a label-based
CiliumNetworkPolicy regime: a default-deny CNP each, CNPs that open traffic by pod labels, and a CCNP for DNS.

  phase 1  (0-120 s)   database/fdb-exporter crashloops: its pod lacks `fdb-client: "true"`, so every SYN to
                       foundationdb-{0,1,2}:4500 is DROPPED POLICY_DENIED at EGRESS (default deny, nothing
                       matched). Runs of ~12 s with growing gaps, new source ports each time.
  snapshot (120 s)     the cluster snapshot is taken here: before any fix.
  phase 2  (from 133 s) the label fix is rolled out (new ReplicaSet, new pod carrying fdb-client=true on another
                       node). Cilium now forwards SYN and SYN-ACK, and FoundationDB's sidecar closes or resets each
                       connection within milliseconds: Istio's AuthorizationPolicy admits only the principals of
                       fdb-backup and foundationdb itself.
  phase 3  (from 150 s) the new exporter pod is Ready; Prometheus (monitoring) scrapes it on 9161/TCP and is
                       DROPPED POLICY_DENIED at INGRESS: database's scrape policy opens only 9090.

The three fixes: (1) label `fdb-client: "true"` on the fdb-exporter Deployment's pod template; (2) the principal
cluster.local/ns/database/sa/fdb-exporter in AuthorizationPolicy database/foundationdb-allow-clients (port 4500);
(3) a CNP (or a port in database/allow-prometheus-scrape) admitting monitoring's prometheus on 9161/TCP.

Around it: DNS through the DNS proxy (L7 records), shop HTTP through Cilium's proxy (L7 request/response),
Prometheus scrapes, fdb-backup <-> foundationdb and peer traffic, kubelet probes, user traffic from the world, and
drops for other reasons (STALE_OR_UNROUTABLE_IP, a world scanner on a NodePort, POLICY_DENY of the cloud metadata
address with egress_denied_by, a CT_MAP_INSERTION_FAILED burst), node_status and lost_events lines.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import yaml
from google.protobuf import json_format

SEED = 20261127
T0 = datetime(2026, 11, 27, 23, 0, 0, tzinfo=UTC)
T0_NS = int(T0.timestamp()) * 1_000_000_000
END_S = 270.0
CLUSTER = "demo"
NODES = ("control-plane", "worker-1", "worker-2", "worker-3")
NODE_IPS = {"control-plane": "172.18.0.2", "worker-1": "172.18.0.3", "worker-2": "172.18.0.4", "worker-3": "172.18.0.5"}
RELAY_POD = "hubble-relay-6d5f8c7b9-q4xzt"
ISTIO_IMAGE = "docker.io/istio/proxyv2:1.24.2"
FDB_IMAGE = "foundationdb/foundationdb:7.3.43"
APP_NAMESPACES = ("database", "monitoring", "payments", "shop")
MS = 1_000_000
US = 1_000
HOP_NS = 45 * US  # one node to another through the overlay

# Cilium's default identity-label filter drops these pod label keys (pkg/labelsfilter)
NON_IDENTITY_LABELS = ("pod-template-hash", "controller-revision-hash", "statefulset.kubernetes.io/pod-name",
                       "apps.kubernetes.io/pod-index")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated name suffixes


def rng_for(*parts: object) -> random.Random:
    """An independent, reproducible stream per purpose, so adding traffic never renames a pod."""
    return random.Random(f"{SEED}/" + "/".join(map(str, parts)))


def k8s_suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(n))


def make_uid(*parts: object) -> str:
    return str(uuid.UUID(int=rng_for("uid", *parts).getrandbits(128), version=4))


def ns_at(seconds: float) -> int:
    return T0_NS + round(seconds * 1_000_000_000)


def rfc3339(ns: int) -> str:
    """As Go's protojson prints a Timestamp: 0, 3, 6 or 9 fractional digits."""
    sec, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return base + "Z"
    if frac % 1_000_000 == 0:
        return f"{base}.{frac // 1_000_000:03d}Z"
    if frac % 1_000 == 0:
        return f"{base}.{frac // 1_000:06d}Z"
    return f"{base}.{frac:09d}Z"


def k8s_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# =============================================================================================== the cluster


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: str = "TCP"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    ports: tuple[Port, ...] = ()
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class App:
    namespace: str
    name: str
    kind: str  # Deployment | StatefulSet
    service_account: str
    labels: dict
    containers: tuple[Container, ...]
    nodes: tuple[str, ...]  # one pod per entry
    created: datetime
    revision: int = 1  # Deployment revision (ReplicaSet generation)
    annotations: dict = field(default_factory=dict)


NAMESPACE_LABELS = {
    "kube-system": {},
    "istio-system": {},
    "database": {"istio-injection": "enabled"},
    "monitoring": {},
    "shop": {},
    "payments": {},
}
NAMESPACE_CREATED = {
    "kube-system": datetime(2026, 9, 14, 8, 2, 11, tzinfo=UTC),
    "istio-system": datetime(2026, 9, 14, 8, 20, 45, tzinfo=UTC),
    "database": datetime(2026, 9, 21, 10, 4, 2, tzinfo=UTC),
    "monitoring": datetime(2026, 9, 15, 9, 31, 40, tzinfo=UTC),
    "shop": datetime(2026, 10, 2, 13, 12, 9, tzinfo=UTC),
    "payments": datetime(2026, 10, 2, 13, 14, 55, tzinfo=UTC),
}


def in_mesh(namespace: str) -> bool:
    return NAMESPACE_LABELS[namespace].get("istio-injection") == "enabled"


def _d(y, mo, d, h, mi, s) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def _http(name: str = "http", number: int = 8080) -> Port:
    return Port(name, number)


APPS = (
    App("kube-system", "coredns", "Deployment", "coredns", {"k8s-app": "kube-dns"},
        (Container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3",
                   (Port("dns", 53, "UDP"), Port("dns-tcp", 53), Port("metrics", 9153)), ("-conf", "/etc/coredns/Corefile")),),
        ("worker-1", "worker-2"), _d(2026, 9, 14, 8, 2, 30)),
    App("istio-system", "istiod", "Deployment", "istiod", {"app": "istiod", "istio": "pilot"},
        (Container("discovery", "docker.io/istio/pilot:1.24.2",
                   (Port("http-debug", 8080), Port("grpc-xds", 15010), Port("tls-xds", 15012),
                    Port("http-monitoring", 15014), Port("https-webhooks", 15017))),),
        ("worker-3",), _d(2026, 9, 14, 8, 21, 3)),
    App("database", "foundationdb", "StatefulSet", "foundationdb", {"app.kubernetes.io/name": "foundationdb"},
        (Container("foundationdb", FDB_IMAGE, (Port("fdb", 4500),)),),
        ("worker-1", "worker-2", "worker-3"), _d(2026, 11, 3, 9, 40, 12)),
    App("database", "fdb-backup", "Deployment", "fdb-backup",
        {"app.kubernetes.io/name": "fdb-backup", "fdb-client": "true"},
        (Container("backup-agent", FDB_IMAGE, (), ("backup_agent", "-C", "/var/dynamic-conf/fdb.cluster")),),
        ("worker-2",), _d(2026, 11, 3, 9, 52, 40), revision=2),
    App("database", "fdb-exporter", "Deployment", "fdb-exporter", {"app.kubernetes.io/name": "fdb-exporter"},
        (Container("fdb-exporter", "registry.example.com/observability/fdb-exporter:2.1.0",
                   (Port("metrics", 9161),), ("--cluster-file=/etc/fdb/fdb.cluster", "--listen=:9161")),),
        ("worker-1",), _d(2026, 11, 27, 22, 57, 41), revision=1,
        annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "9161"}),
    App("monitoring", "prometheus", "StatefulSet", "prometheus", {"app.kubernetes.io/name": "prometheus"},
        (Container("prometheus", "quay.io/prometheus/prometheus:v3.1.0", (Port("web", 9090),),
                   ("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.retention.time=15d")),),
        ("worker-2",), _d(2026, 9, 15, 9, 33, 0)),
    App("shop", "frontend", "Deployment", "frontend", {"app": "frontend"},
        (Container("frontend", "registry.example.com/shop/frontend:4.12.0", (_http(), Port("metrics", 9090))),),
        ("worker-1", "worker-3"), _d(2026, 11, 20, 15, 2, 7), revision=7),
    App("shop", "cart", "Deployment", "cart", {"app": "cart"},
        (Container("cart", "registry.example.com/shop/cart:3.4.1", (_http(), Port("metrics", 9090))),),
        ("worker-2",), _d(2026, 11, 26, 10, 41, 19), revision=5),
    App("shop", "checkout", "Deployment", "checkout", {"app": "checkout"},
        (Container("checkout", "registry.example.com/shop/checkout:2.9.0", (_http(), Port("metrics", 9090))),),
        ("worker-1",), _d(2026, 11, 18, 11, 5, 51), revision=3),
    App("payments", "payments-api", "Deployment", "payments-api", {"app": "payments-api"},
        (Container("payments-api", "registry.example.com/payments/payments-api:1.18.3",
                   (_http(), Port("metrics", 9090))),),
        ("worker-2",), _d(2026, 11, 10, 16, 22, 4), revision=4),
)
APP = {(a.namespace, a.name): a for a in APPS}

# the exporter after fix 1: its template gains fdb-client=true, so a new ReplicaSet makes a new pod (phase 2)
EXPORTER_FIXED_LABELS = {**APP["database", "fdb-exporter"].labels, "fdb-client": "true"}
EXPORTER_FIXED_NODE = "worker-3"


@dataclass
class Pod:
    app: App
    name: str
    node: str
    ip: str
    labels: dict  # the pod's Kubernetes labels (template + injected + controller ones)
    owner: tuple[str, str]  # (kind, name) of the controller: ReplicaSet or StatefulSet
    template_hash: str = ""
    ordinal: int | None = None

    @property
    def namespace(self) -> str:
        return self.app.namespace

    @property
    def workload(self) -> tuple[str, str]:
        return self.app.kind, self.app.name

    @property
    def service_account(self) -> str:
        return self.app.service_account

    @property
    def hubble_labels(self) -> list[str]:
        """The pod's security-identity labels as Hubble prints them (sorted)."""
        out = [f"k8s:{k}={v}" for k, v in self.labels.items() if k not in NON_IDENTITY_LABELS]
        ns_labels = {"kubernetes.io/metadata.name": self.namespace, **NAMESPACE_LABELS[self.namespace]}
        out += [f"k8s:io.cilium.k8s.namespace.labels.{k}={v}" for k, v in ns_labels.items()]
        out += [f"k8s:io.cilium.k8s.policy.cluster={CLUSTER}",
                f"k8s:io.cilium.k8s.policy.serviceaccount={self.service_account}",
                f"k8s:io.kubernetes.pod.namespace={self.namespace}"]
        return sorted(out)

    @property
    def identity(self) -> int:
        # Cilium allocates one numeric identity per label set; derive it from the labels so it is stable
        digest = hashlib.sha256("\n".join(self.hubble_labels).encode()).digest()
        return 256 + int.from_bytes(digest[:4], "big") % 65000

    @property
    def endpoint_id(self) -> int:
        return 1 + int.from_bytes(hashlib.sha256(self.name.encode()).digest()[:4], "big") % 4000


class IPAM:
    """Per-node pod CIDRs 10.244.<n>.0/24, addresses handed out reproducibly."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.rng = rng_for("ipam")

    def take(self, node: str) -> str:
        n = NODES.index(node)
        while True:
            ip = f"10.244.{n}.{self.rng.randint(2, 250)}"
            if ip not in self.used:
                self.used.add(ip)
                return ip


def template_hash(app: App, labels: dict) -> str:
    return k8s_suffix(rng_for("template", app.namespace, app.name, sorted(labels.items())), 10)


def make_pods(ipam: IPAM, app: App, labels: dict | None = None, nodes: tuple[str, ...] | None = None) -> list[Pod]:
    labels = dict(app.labels if labels is None else labels)
    mesh = in_mesh(app.namespace)
    pods = []
    if app.kind == "StatefulSet":
        revision = f"{app.name}-{k8s_suffix(rng_for('revision', app.name), 10)}"
        for i, node in enumerate(nodes or app.nodes):
            pod_labels = {**labels, "apps.kubernetes.io/pod-index": str(i), "controller-revision-hash": revision,
                          "statefulset.kubernetes.io/pod-name": f"{app.name}-{i}"}
            if mesh:
                pod_labels["security.istio.io/tlsMode"] = "istio"
            pods.append(Pod(app, f"{app.name}-{i}", node, ipam.take(node), pod_labels, ("StatefulSet", app.name),
                            ordinal=i))
        return pods
    h = template_hash(app, labels)
    rng = rng_for("pods", app.namespace, app.name, h)
    for node in nodes or app.nodes:
        pod_labels = {**labels, "pod-template-hash": h}
        if mesh:
            pod_labels["security.istio.io/tlsMode"] = "istio"
        pods.append(Pod(app, f"{app.name}-{h}-{k8s_suffix(rng, 5)}", node, ipam.take(node), pod_labels,
                        ("ReplicaSet", f"{app.name}-{h}"), template_hash=h))
    return pods


@dataclass
class World:
    """Everything the story needs to know about the cluster: pods by app, the exporter's two pods, services."""

    pods: dict[tuple[str, str], list[Pod]]
    exporter_fixed: Pod
    service_ips: dict[tuple[str, str], str]

    def one(self, namespace: str, app: str, i: int = 0) -> Pod:
        return self.pods[namespace, app][i]


SERVICES = (
    # namespace, name, app, ports, type, cluster ip
    ("kube-system", "kube-dns", "coredns", (Port("dns", 53, "UDP"), Port("dns-tcp", 53), Port("metrics", 9153)),
     "ClusterIP", "10.96.0.10"),
    ("istio-system", "istiod", "istiod", (Port("grpc-xds", 15010), Port("https-dns", 15012),
                                           Port("https-webhook", 443), Port("http-monitoring", 15014)),
     "ClusterIP", "10.96.112.40"),
    ("database", "foundationdb", "foundationdb", (Port("tcp-fdb", 4500),), "ClusterIP", "None"),
    ("database", "fdb-exporter", "fdb-exporter", (Port("metrics", 9161),), "ClusterIP", "10.96.77.201"),
    ("monitoring", "prometheus", "prometheus", (Port("web", 9090),), "ClusterIP", "10.96.45.12"),
    ("shop", "frontend", "frontend", (Port("http", 80),), "LoadBalancer", "10.96.201.5"),
    ("shop", "cart", "cart", (Port("http", 8080),), "ClusterIP", "10.96.140.66"),
    ("shop", "cart-debug", "cart", (Port("http", 8080),), "NodePort", "10.96.151.9"),
    ("shop", "checkout", "checkout", (Port("http", 8080),), "ClusterIP", "10.96.33.180"),
    ("payments", "payments-api", "payments-api", (Port("http", 8080),), "ClusterIP", "10.96.9.214"),
)


def build_world() -> World:
    ipam = IPAM()
    pods = {(a.namespace, a.name): make_pods(ipam, a) for a in APPS}
    exporter = APP["database", "fdb-exporter"]
    fixed = make_pods(ipam, exporter, EXPORTER_FIXED_LABELS, (EXPORTER_FIXED_NODE,))[0]
    return World(pods, fixed, {(ns, name): ip for ns, name, _, _, _, ip in SERVICES})


# ------------------------------------------------------------------------------------------- k8s objects

class _ResourceVersions:
    def __init__(self) -> None:
        self.next = 48211

    def __call__(self) -> str:
        self.next += 1 + rng_for("rv", self.next).randint(0, 900)
        return str(self.next)


def _meta(name: str, namespace: str | None, created: datetime, rv: _ResourceVersions, kind: str, **extra) -> dict:
    meta = {"creationTimestamp": k8s_time(created), "name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["resourceVersion"] = rv()
    meta["uid"] = make_uid(kind, namespace or "", name)
    meta.update(extra)
    return meta


def _container_spec(c: Container) -> dict:
    spec: dict = {"image": c.image, "imagePullPolicy": "IfNotPresent", "name": c.name}
    if c.args:
        spec["args"] = list(c.args)
    if c.ports:
        spec["ports"] = [{"containerPort": p.number, "name": p.name, "protocol": p.protocol} for p in c.ports]
    spec["resources"] = {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
    spec["terminationMessagePath"] = "/dev/termination-log"
    spec["terminationMessagePolicy"] = "File"
    return spec


def _sidecar_spec(pod_name: str, namespace: str) -> dict:
    return {
        "args": ["proxy", "sidecar", "--domain", f"{namespace}.svc.cluster.local", "--proxyLogLevel=warning",
                 "--proxyComponentLogLevel=misc:error", "--log_output_level=default:info"],
        "env": [{"name": "ISTIO_META_POD_NAME", "value": pod_name},
                {"name": "ISTIO_META_CLUSTER_ID", "value": "Kubernetes"}],
        "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent", "name": "istio-proxy",
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"failureThreshold": 4, "httpGet": {"path": "/healthz/ready", "port": 15021,
                                                                "scheme": "HTTP"},
                           "periodSeconds": 15, "successThreshold": 1, "timeoutSeconds": 3},
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                            "runAsGroup": 1337, "runAsNonRoot": True, "runAsUser": 1337},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    }


def _init_spec() -> dict:
    return {"args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
                     "-x", "", "-b", "*", "-d", "15090,15021,15020"],
            "image": ISTIO_IMAGE, "imagePullPolicy": "IfNotPresent", "name": "istio-init",
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "10m", "memory": "40Mi"}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


def _pod_template(app: App, labels: dict) -> dict:
    meta: dict = {"creationTimestamp": None, "labels": dict(sorted(labels.items()))}
    if app.annotations:
        meta["annotations"] = dict(app.annotations)
    return {"metadata": meta, "spec": {
        "containers": [_container_spec(c) for c in app.containers],
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
        "securityContext": {}, "serviceAccount": app.service_account, "serviceAccountName": app.service_account,
        "terminationGracePeriodSeconds": 30}}


def _owner(kind: str, name: str, namespace: str) -> dict:
    api = "apps/v1"
    return {"apiVersion": api, "blockOwnerDeletion": True, "controller": True, "kind": kind, "name": name,
            "uid": make_uid(kind, namespace, name)}


def pod_object(pod: Pod, rv: _ResourceVersions, *, started: datetime | None = None,
               crashlooping: bool | None = None, ready: bool = True) -> dict:
    """A pod as the API server shows it: by default as at snapshot time (the exporter crashlooping); a later
    pod of the story gives its own start time and state."""
    app = pod.app
    started = started or app.created + timedelta(seconds=7)
    if crashlooping is None:
        crashlooping = (app.namespace, app.name) == ("database", "fdb-exporter")
    meta = _meta(pod.name, app.namespace, started - timedelta(seconds=5), rv, "Pod")
    annotations = dict(app.annotations)
    if in_mesh(app.namespace):
        annotations.update({"istio.io/rev": "default", "kubectl.kubernetes.io/default-container": app.containers[0].name,
                            "sidecar.istio.io/status": '{"initContainers":["istio-init"],"containers":["istio-proxy"],'
                                                       '"volumes":["istio-envoy","istio-data","istio-podinfo",'
                                                       '"istio-token","istiod-ca-cert"],"revision":"default"}'})
    if annotations:
        meta = {"annotations": dict(sorted(annotations.items())), **meta}
    if pod.ordinal is None:
        meta["generateName"] = pod.owner[1] + "-"
    meta["labels"] = dict(sorted(pod.labels.items()))
    meta["ownerReferences"] = [_owner(pod.owner[0], pod.owner[1], app.namespace)]
    meta = dict(sorted(meta.items()))

    containers = [_container_spec(c) for c in app.containers]
    spec: dict = {"containers": containers}
    if in_mesh(app.namespace):
        containers.append(_sidecar_spec(pod.name, app.namespace))
        spec["initContainers"] = [_init_spec()]
    if pod.ordinal is not None:
        spec["hostname"] = pod.name
        spec["subdomain"] = app.name
    spec.update({"dnsPolicy": "ClusterFirst", "enableServiceLinks": True, "nodeName": pod.node,
                 "preemptionPolicy": "PreemptLowerPriority", "priority": 0, "restartPolicy": "Always",
                 "schedulerName": "default-scheduler", "securityContext": {},
                 "serviceAccount": app.service_account, "serviceAccountName": app.service_account,
                 "terminationGracePeriodSeconds": 30,
                 "tolerations": [{"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "tolerationSeconds": 300},
                                 {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable",
                                  "operator": "Exists", "tolerationSeconds": 300}]})
    spec = dict(sorted(spec.items()))

    statuses = []
    for c in app.containers:
        cid = "containerd://" + hashlib.sha256(f"{pod.name}/{c.name}".encode()).hexdigest()
        st: dict = {"containerID": cid, "image": c.image, "imageID": c.image.split(":")[0] + "@sha256:" +
                    hashlib.sha256(c.image.encode()).hexdigest(), "name": c.name}
        if crashlooping:
            last_start = T0 + timedelta(seconds=108.2)
            st.update({"lastState": {"terminated": {
                "containerID": cid, "exitCode": 1, "finishedAt": k8s_time(last_start + timedelta(seconds=12)),
                "message": "cannot reach the FoundationDB cluster: all coordinators unreachable after 10s",
                "reason": "Error", "startedAt": k8s_time(last_start)}},
                "ready": False, "restartCount": 7, "started": False,
                "state": {"waiting": {"message": f"back-off 40s restarting failed container={c.name} "
                                                 f"pod={pod.name}_{app.namespace}({meta['uid']})",
                                      "reason": "CrashLoopBackOff"}}})
        else:
            st.update({"lastState": {}, "ready": ready, "restartCount": 0, "started": True,
                       "state": {"running": {"startedAt": k8s_time(started)}}})
        statuses.append(dict(sorted(st.items())))
    if in_mesh(app.namespace):
        statuses.append({"containerID": "containerd://" + hashlib.sha256(f"{pod.name}/istio-proxy".encode())
                         .hexdigest(), "image": ISTIO_IMAGE, "imageID": "docker.io/istio/proxyv2@sha256:" +
                         hashlib.sha256(ISTIO_IMAGE.encode()).hexdigest(), "lastState": {}, "name": "istio-proxy",
                         "ready": True, "restartCount": 0, "started": True,
                         "state": {"running": {"startedAt": k8s_time(started - timedelta(seconds=2))}}})
    ready_text = "False" if crashlooping or not ready else "True"
    conditions = [
        {"lastProbeTime": None, "lastTransitionTime": k8s_time(started), "status": "True",
         "type": "PodReadyToStartContainers"},
        {"lastProbeTime": None, "lastTransitionTime": k8s_time(started - timedelta(seconds=3)), "status": "True",
         "type": "Initialized"},
        {"lastProbeTime": None, "lastTransitionTime": k8s_time(started + timedelta(seconds=4)),
         "status": ready_text, "type": "Ready"},
        {"lastProbeTime": None, "lastTransitionTime": k8s_time(started + timedelta(seconds=4)),
         "status": ready_text, "type": "ContainersReady"},
        {"lastProbeTime": None, "lastTransitionTime": k8s_time(started - timedelta(seconds=5)), "status": "True",
         "type": "PodScheduled"},
    ]
    if ready_text == "False":
        for cond in conditions[2:4]:
            cond["message"] = f"containers with unready status: [{app.containers[0].name}]"
            cond["reason"] = "ContainersNotReady"
    status = {"conditions": conditions, "containerStatuses": statuses, "hostIP": NODE_IPS[pod.node],
              "hostIPs": [{"ip": NODE_IPS[pod.node]}], "phase": "Running", "podIP": pod.ip,
              "podIPs": [{"ip": pod.ip}], "qosClass": "Burstable", "startTime": k8s_time(started - timedelta(seconds=4))}
    if in_mesh(app.namespace):
        status["initContainerStatuses"] = [{
            "containerID": "containerd://" + hashlib.sha256(f"{pod.name}/istio-init".encode()).hexdigest(),
            "image": ISTIO_IMAGE, "imageID": "docker.io/istio/proxyv2@sha256:" +
            hashlib.sha256(ISTIO_IMAGE.encode()).hexdigest(), "lastState": {}, "name": "istio-init", "ready": True,
            "restartCount": 0, "started": False,
            "state": {"terminated": {"exitCode": 0, "finishedAt": k8s_time(started - timedelta(seconds=3)),
                                     "reason": "Completed", "startedAt": k8s_time(started - timedelta(seconds=4))}}}]
        status = dict(sorted(status.items()))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def workload_objects(app: App, pods: list[Pod], rv: _ResourceVersions) -> list[dict]:
    ns = app.namespace
    replicas = len(pods)
    crashlooping = (ns, app.name) == ("database", "fdb-exporter")
    ready = 0 if crashlooping else replicas
    meta = _meta(app.name, ns, app.created, rv, app.kind, generation=app.revision,
                 labels=dict(sorted(app.labels.items())))
    if app.kind == "StatefulSet":
        revision = pods[0].labels["controller-revision-hash"]
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": dict(sorted(meta.items())), "spec": {
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "podManagementPolicy": "OrderedReady", "replicas": replicas, "revisionHistoryLimit": 10,
            "selector": {"matchLabels": dict(app.labels)}, "serviceName": app.name,
            "template": _pod_template(app, app.labels),
            "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"}},
            "status": {"availableReplicas": ready, "collisionCount": 0, "currentReplicas": replicas,
                       "currentRevision": revision, "observedGeneration": app.revision, "readyReplicas": ready,
                       "replicas": replicas, "updateRevision": revision, "updatedReplicas": replicas}}
        return [sts]
    meta["annotations"] = {"deployment.kubernetes.io/revision": str(app.revision)}
    status: dict = {"conditions": [
        {"lastTransitionTime": k8s_time(app.created), "lastUpdateTime": k8s_time(app.created + timedelta(seconds=20)),
         "message": f'ReplicaSet "{pods[0].owner[1]}" has successfully progressed.', "reason": "NewReplicaSetAvailable",
         "status": "True", "type": "Progressing"},
        {"lastTransitionTime": k8s_time(app.created + timedelta(seconds=20)),
         "lastUpdateTime": k8s_time(app.created + timedelta(seconds=20)),
         "message": "Deployment has minimum availability." if ready else "Deployment does not have minimum availability.",
         "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
         "status": "True" if ready else "False", "type": "Available"}],
        "observedGeneration": app.revision, "replicas": replicas, "updatedReplicas": replicas}
    if ready:
        status.update({"availableReplicas": ready, "readyReplicas": ready})
    else:
        status["conditions"][0].update({"message": f'ReplicaSet "{pods[0].owner[1]}" is progressing.',
                                        "reason": "ReplicaSetUpdated"})
        status["unavailableReplicas"] = replicas
    status = dict(sorted(status.items()))
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(sorted(meta.items())), "spec": {
        "progressDeadlineSeconds": 600, "replicas": replicas, "revisionHistoryLimit": 10,
        "selector": {"matchLabels": dict(app.labels) if app.name != "fdb-exporter" else
                     {"app.kubernetes.io/name": "fdb-exporter"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
        "template": _pod_template(app, app.labels)}, "status": status}
    h = pods[0].template_hash
    rs_labels = dict(sorted({**app.labels, "pod-template-hash": h}.items()))
    rs_meta = _meta(f"{app.name}-{h}", ns, app.created, rv, "ReplicaSet", generation=1, labels=rs_labels,
                    annotations={"deployment.kubernetes.io/desired-replicas": str(replicas),
                                 "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                                 "deployment.kubernetes.io/revision": str(app.revision)},
                    ownerReferences=[_owner("Deployment", app.name, ns)])
    rs_status = {"fullyLabeledReplicas": replicas, "observedGeneration": 1, "replicas": replicas}
    if ready:
        rs_status.update({"availableReplicas": ready, "readyReplicas": ready})
    replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": dict(sorted(rs_meta.items())), "spec": {
        "replicas": replicas, "selector": {"matchLabels": {**deployment["spec"]["selector"]["matchLabels"],
                                                           "pod-template-hash": h}},
        "template": _pod_template(app, rs_labels)}, "status": dict(sorted(rs_status.items()))}
    return [deployment, replicaset]


def namespace_objects(rv: _ResourceVersions) -> list[dict]:
    out = []
    for ns, labels in NAMESPACE_LABELS.items():
        meta = _meta(ns, None, NAMESPACE_CREATED[ns], rv, "Namespace",
                     labels=dict(sorted({"kubernetes.io/metadata.name": ns, **labels}.items())))
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": dict(sorted(meta.items())),
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    return out


def service_account_objects(rv: _ResourceVersions) -> list[dict]:
    out = []
    for ns in NAMESPACE_LABELS:
        accounts = sorted({"default"} | {a.service_account for a in APPS if a.namespace == ns})
        for sa in accounts:
            created = NAMESPACE_CREATED[ns] if sa == "default" else min(
                a.created for a in APPS if a.namespace == ns and a.service_account == sa)
            out.append({"apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": _meta(sa, ns, created, rv, "ServiceAccount")})
    return out


def service_objects(rv: _ResourceVersions) -> list[dict]:
    out = []
    for ns, name, app_name, ports, svc_type, ip in SERVICES:
        app = APP[ns, app_name]
        meta = _meta(name, ns, app.created, rv, "Service", labels=dict(sorted(app.labels.items())))
        if name == "fdb-exporter":
            meta["annotations"] = {"prometheus.io/port": "9161", "prometheus.io/scrape": "true"}
        spec: dict = {"clusterIP": ip, "clusterIPs": [ip], "internalTrafficPolicy": "Cluster",
                      "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}
        port_list = []
        for p in ports:
            entry = {"name": p.name, "port": p.number, "protocol": p.protocol,
                     "targetPort": 8080 if (name == "frontend") else p.number}
            if svc_type in ("NodePort", "LoadBalancer"):
                entry["nodePort"] = 31080 if name == "cart-debug" else 30443
            port_list.append(dict(sorted(entry.items())))
        spec["ports"] = port_list
        selector = dict(app.labels)
        if app.name == "fdb-exporter":
            selector = {"app.kubernetes.io/name": "fdb-exporter"}
        spec["selector"] = selector
        spec["sessionAffinity"] = "None"
        spec["type"] = svc_type
        status: dict = {"loadBalancer": {}}
        if svc_type in ("NodePort", "LoadBalancer"):
            spec["externalTrafficPolicy"] = "Local"
        if svc_type == "LoadBalancer":
            spec["allocateLoadBalancerNodePorts"] = True
            spec["healthCheckNodePort"] = 32110
            status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.10", "ipMode": "VIP"}]}}
        if ip == "None":
            spec["clusterIPs"] = ["None"]
            spec["publishNotReadyAddresses"] = True
        out.append({"apiVersion": "v1", "kind": "Service", "metadata": dict(sorted(meta.items())),
                    "spec": dict(sorted(spec.items())), "status": status})
    return out


# ------------------------------------------------------------------------------------------- policies

def _ports(*specs: tuple[int, str]) -> list[dict]:
    return [{"port": str(port), "protocol": proto} for port, proto in specs]


PROMETHEUS_PEER = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "monitoring",
                                   "app.kubernetes.io/name": "prometheus"}}
APP_NAMESPACE_SELECTOR = {"matchExpressions": [{"key": "k8s:io.kubernetes.pod.namespace", "operator": "In",
                                                "values": list(APP_NAMESPACES)}]}


def _default_deny(ns: str) -> dict:
    return {"description": f"Default deny for {ns}: every pod is isolated in both directions; the other policies "
                           "of the namespace open what each workload needs, by pod label.",
            "endpointSelector": {}, "ingress": [{}], "egress": [{}]}


CNP_SPECS: tuple[tuple[str, str, dict], ...] = (
    # -------------------------------------------------------------------------------------- database
    ("database", "default-deny", _default_deny("database")),
    ("database", "fdb-allow-clients", {
        "description": "FoundationDB accepts connections on 4500 from pods labelled fdb-client=true and from its "
                       "own peers.",
        "endpointSelector": {"matchLabels": {"app.kubernetes.io/name": "foundationdb"}},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"fdb-client": "true"}},
                                       {"matchLabels": {"app.kubernetes.io/name": "foundationdb"}}],
                     "toPorts": [{"ports": _ports((4500, "TCP"))}]}]}),
    ("database", "fdb-clients-egress", {
        "description": "Pods labelled fdb-client=true may connect to FoundationDB on 4500.",
        "endpointSelector": {"matchLabels": {"fdb-client": "true"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "foundationdb"}}],
                    "toPorts": [{"ports": _ports((4500, "TCP"))}]}]}),
    ("database", "foundationdb-peers", {
        "description": "FoundationDB processes talk to each other on 4500.",
        "endpointSelector": {"matchLabels": {"app.kubernetes.io/name": "foundationdb"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"app.kubernetes.io/name": "foundationdb"}}],
                    "toPorts": [{"ports": _ports((4500, "TCP"))}]}]}),
    ("database", "fdb-backup-to-s3", {
        "description": "The backup agent writes to its S3 bucket.",
        "endpointSelector": {"matchLabels": {"app.kubernetes.io/name": "fdb-backup"}},
        "egress": [{"toFQDNs": [{"matchName": "fdb-backups.s3.eu-west-1.amazonaws.com"}],
                    "toPorts": [{"ports": _ports((443, "TCP"))}]}]}),
    ("database", "allow-prometheus-scrape", {
        "description": "Prometheus scrapes the standard metrics port of every pod in the namespace.",
        "endpointSelector": {},
        "ingress": [{"fromEndpoints": [PROMETHEUS_PEER], "toPorts": [{"ports": _ports((9090, "TCP"))}]}]}),
    # -------------------------------------------------------------------------------------- monitoring
    ("monitoring", "default-deny", _default_deny("monitoring")),
    ("monitoring", "prometheus-scrape-egress", {
        "description": "Prometheus may reach every pod of the cluster to scrape it.",
        "endpointSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        "egress": [{"toEntities": ["cluster"]}]}),
    # -------------------------------------------------------------------------------------- shop
    ("shop", "default-deny", _default_deny("shop")),
    ("shop", "frontend-from-world", {
        "description": "The storefront takes customer traffic from the load balancer (source IPs preserved).",
        "endpointSelector": {"matchLabels": {"app": "frontend"}},
        "ingress": [{"fromEntities": ["world"], "toPorts": [{"ports": _ports((8080, "TCP"))}]}]}),
    ("shop", "frontend-egress", {
        "endpointSelector": {"matchLabels": {"app": "frontend"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"app": "cart"}}, {"matchLabels": {"app": "checkout"}}],
                    "toPorts": [{"ports": _ports((8080, "TCP"))}]}]}),
    ("shop", "cart-api", {
        "description": "The cart API, for the storefront and checkout only; requests are checked at L7.",
        "endpointSelector": {"matchLabels": {"app": "cart"}},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "frontend"}}, {"matchLabels": {"app": "checkout"}}],
                     "toPorts": [{"ports": _ports((8080, "TCP")), "rules": {"http": [
                         {"method": "GET", "path": "/api/cart/.*"}, {"method": "POST", "path": "/api/cart/.*"},
                         {"method": "DELETE", "path": "/api/cart/.*"}]}}]}]}),
    ("shop", "checkout-api", {
        "endpointSelector": {"matchLabels": {"app": "checkout"}},
        "ingress": [{"fromEndpoints": [{"matchLabels": {"app": "frontend"}}],
                     "toPorts": [{"ports": _ports((8080, "TCP")), "rules": {"http": [
                         {"method": "POST", "path": "/api/checkout"}]}}]}]}),
    ("shop", "checkout-egress", {
        "endpointSelector": {"matchLabels": {"app": "checkout"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"app": "cart"}}],
                    "toPorts": [{"ports": _ports((8080, "TCP"))}]},
                   {"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "payments",
                                                     "app": "payments-api"}}],
                    "toPorts": [{"ports": _ports((8080, "TCP"))}]}]}),
    ("shop", "allow-prometheus-scrape", {
        "endpointSelector": {},
        "ingress": [{"fromEndpoints": [PROMETHEUS_PEER], "toPorts": [{"ports": _ports((9090, "TCP")), "rules": {
            "http": [{"method": "GET", "path": "/metrics"}]}}]}]}),
    # -------------------------------------------------------------------------------------- payments
    ("payments", "default-deny", _default_deny("payments")),
    ("payments", "payments-api-egress", {
        "description": "The payment provider's API.",
        "endpointSelector": {"matchLabels": {"app": "payments-api"}},
        "egress": [{"toFQDNs": [{"matchName": "api.stripe.com"}], "toPorts": [{"ports": _ports((443, "TCP"))}]}]}),
    ("payments", "allow-prometheus-scrape", {
        "endpointSelector": {},
        "ingress": [{"fromEndpoints": [PROMETHEUS_PEER], "toPorts": [{"ports": _ports((9090, "TCP"))}]}]}),
    # -------------------------------------------------------------------------------------- kube-system
    ("kube-system", "kube-dns-ingress", {
        "description": "CoreDNS answers every pod of the cluster; Prometheus scrapes it.",
        "endpointSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        "ingress": [{"fromEntities": ["cluster"], "toPorts": [{"ports": _ports((53, "UDP"), (53, "TCP"))}]},
                    {"fromEndpoints": [PROMETHEUS_PEER], "toPorts": [{"ports": _ports((9153, "TCP"))}]}]}),
)

CCNP_SPECS: tuple[tuple[str, dict], ...] = (
    ("allow-kube-dns", {
        "description": "Pods of the default-deny namespaces may resolve names through kube-dns; the DNS proxy "
                       "sees every query (needed by toFQDNs rules).",
        "endpointSelector": APP_NAMESPACE_SELECTOR,
        "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "kube-system",
                                                     "k8s:k8s-app": "kube-dns"}}],
                    "toPorts": [{"ports": _ports((53, "UDP"), (53, "TCP")),
                                 "rules": {"dns": [{"matchPattern": "*"}]}}]}]}),
    ("istio-sidecars-to-istiod", {
        "description": "Sidecars fetch their configuration and certificates from istiod.",
        "endpointSelector": {"matchLabels": {"security.istio.io/tlsMode": "istio"}},
        "egress": [{"toEndpoints": [{"matchLabels": {"k8s:io.kubernetes.pod.namespace": "istio-system",
                                                     "app": "istiod"}}],
                    "toPorts": [{"ports": _ports((15012, "TCP"))}]}]}),
    ("deny-cloud-metadata", {
        "description": "No workload pod may read the cloud instance metadata service (node credentials).",
        "endpointSelector": APP_NAMESPACE_SELECTOR,
        "egressDeny": [{"toCIDR": ["169.254.169.254/32"]}]}),
)

POLICY_CREATED = _d(2026, 10, 6, 14, 30, 0)


def _cnp_status(created: datetime) -> dict:
    return {"conditions": [{"lastTransitionTime": k8s_time(created), "message": "Policy validation succeeded",
                            "status": "True", "type": "Valid"}]}


def cilium_policy_objects(rv: _ResourceVersions) -> tuple[list[dict], list[dict]]:
    cnps = []
    for i, (ns, name, spec) in enumerate(CNP_SPECS):
        created = POLICY_CREATED + timedelta(days=i % 5, minutes=7 * i)
        cnps.append({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
                     "metadata": _meta(name, ns, created, rv, "CiliumNetworkPolicy", generation=1),
                     "spec": spec, "status": _cnp_status(created)})
    ccnps = []
    for i, (name, spec) in enumerate(CCNP_SPECS):
        created = POLICY_CREATED + timedelta(hours=i)
        ccnps.append({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                      "metadata": _meta(name, None, created, rv, "CiliumClusterwideNetworkPolicy", generation=1),
                      "spec": spec, "status": _cnp_status(created)})
    return cnps, ccnps


def network_policy_objects(rv: _ResourceVersions) -> list[dict]:
    created = POLICY_CREATED + timedelta(days=2)
    return [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": _meta("payments-api-from-checkout", "payments", created, rv, "NetworkPolicy", generation=1),
             "spec": {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                 "kubernetes.io/metadata.name": "shop"}}, "podSelector": {"matchLabels": {"app": "checkout"}}}],
                 "ports": [{"port": 8080, "protocol": "TCP"}]}],
                 "podSelector": {"matchLabels": {"app": "payments-api"}}, "policyTypes": ["Ingress"]}}]


def istio_objects(rv: _ResourceVersions) -> tuple[list[dict], list[dict]]:
    created = _d(2026, 11, 3, 10, 2, 0)
    authz = [{"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
              "metadata": _meta("foundationdb-allow-clients", "database", created, rv, "AuthorizationPolicy",
                                generation=2),
              "spec": {"action": "ALLOW",
                       "rules": [{"from": [{"source": {"principals": [
                           "cluster.local/ns/database/sa/fdb-backup",
                           "cluster.local/ns/database/sa/foundationdb"]}}],
                           "to": [{"operation": {"ports": ["4500"]}}]}],
                       "selector": {"matchLabels": {"app.kubernetes.io/name": "foundationdb"}}}}]
    peer = [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": _meta("default", "istio-system", _d(2026, 9, 14, 8, 25, 0), rv, "PeerAuthentication",
                           generation=1),
         "spec": {"mtls": {"mode": "PERMISSIVE"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": _meta("default", "database", created, rv, "PeerAuthentication", generation=1),
         "spec": {"mtls": {"mode": "STRICT"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": _meta("fdb-exporter-metrics", "database", created, rv, "PeerAuthentication", generation=1),
         "spec": {"mtls": {"mode": "STRICT"}, "portLevelMtls": {"9161": {"mode": "PERMISSIVE"}},
                  "selector": {"matchLabels": {"app.kubernetes.io/name": "fdb-exporter"}}}},
    ]
    return authz, peer


def cluster_files(world: World) -> dict[str, list[dict]]:
    """file name -> objects, in the order kubectl would list them."""
    rv = _ResourceVersions()
    namespaces = namespace_objects(rv)
    accounts = service_account_objects(rv)
    deployments, replicasets, statefulsets, pods = [], [], [], []
    for app in APPS:
        objs = workload_objects(app, world.pods[app.namespace, app.name], rv)
        for obj in objs:
            {"Deployment": deployments, "ReplicaSet": replicasets, "StatefulSet": statefulsets}[obj["kind"]].append(obj)
        pods += [pod_object(p, rv) for p in world.pods[app.namespace, app.name]]
    services = service_objects(rv)
    cnps, ccnps = cilium_policy_objects(rv)
    nps = network_policy_objects(rv)
    authz, peer = istio_objects(rv)

    def by_ns(objs: list[dict]) -> list[dict]:
        return sorted(objs, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    return {
        "namespaces.yaml": sorted(namespaces, key=lambda o: o["metadata"]["name"]),
        "serviceaccounts.yaml": by_ns(accounts),
        "deployments.yaml": by_ns(deployments),
        "replicasets.yaml": by_ns(replicasets),
        "statefulsets.yaml": by_ns(statefulsets),
        "pods.yaml": by_ns(pods),
        "services.yaml": by_ns(services),
        "networkpolicies.yaml": by_ns(nps),
        "ciliumnetworkpolicies.yaml": by_ns(cnps),
        "ciliumclusterwidenetworkpolicies.yaml": by_ns(ccnps),
        "authorizationpolicies.yaml": by_ns(authz),
        "peerauthentications.yaml": by_ns(peer),
    }


# ------------------------------------------------------------------------------------------ the story's changes

FIX1_AT = 128.0  # phase 2: the label goes on the Deployment's pod template; a new ReplicaSet and pod follow
FIX2_AT = 180.0  # the AuthorizationPolicy admits the exporter's principal
FIX3_AT = 233.0  # database's scrape policy opens the exporter's metrics port


def _find(files: dict[str, list[dict]], file: str, namespace: str, name: str) -> dict:
    return next(o for o in files[file] if o["metadata"].get("namespace") == namespace
                and o["metadata"]["name"] == name)


def _bump(obj: dict, rv: _ResourceVersions) -> dict:
    """A copy of `obj` as the API server returns it after an update: a new resourceVersion, the next generation."""
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = rv()
    if "generation" in new["metadata"]:
        new["metadata"]["generation"] += 1
    return new


def story_changes(world: World, files: dict[str, list[dict]]) -> list[tuple[float, dict | None, tuple]]:
    """The cluster changes the engineer makes while the recording runs, as (seconds, object or None for a
    delete, (kind, namespace, name)) in time order: the three fixes and what the controllers do after them."""
    rv = _ResourceVersions()
    rv.next = 90_000
    out: list[tuple[float, dict | None, tuple]] = []

    def put(at: float, obj: dict) -> None:
        meta = obj["metadata"]
        out.append((at, obj, (obj["kind"], meta.get("namespace", ""), meta["name"])))

    # fix 1: the label on the pod template; the Deployment controller rolls out a new ReplicaSet and pod
    exporter = APP["database", "fdb-exporter"]
    deployment = _bump(_find(files, "deployments.yaml", "database", "fdb-exporter"), rv)
    deployment["spec"]["template"]["metadata"]["labels"] = dict(sorted(EXPORTER_FIXED_LABELS.items()))
    deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(exporter.revision + 1)
    put(FIX1_AT, deployment)
    pod = world.exporter_fixed
    old_rs = _find(files, "replicasets.yaml", "database", world.one("database", "fdb-exporter").owner[1])
    rs = copy.deepcopy(old_rs)
    rs_name = pod.owner[1]
    rs_labels = dict(sorted({**EXPORTER_FIXED_LABELS, "pod-template-hash": pod.template_hash}.items()))
    created = T0 + timedelta(seconds=FIX1_AT + 0.2)
    rs["metadata"].update({"name": rs_name, "uid": make_uid("ReplicaSet", "database", rs_name), "labels": rs_labels,
                           "creationTimestamp": k8s_time(created), "resourceVersion": rv()})
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(exporter.revision + 1)
    rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] = pod.template_hash
    rs["spec"]["template"] = _pod_template(exporter, rs_labels)
    put(FIX1_AT + 0.2, rs)
    starting = pod_object(pod, rv, started=T0 + timedelta(seconds=FIX1_POD_START), crashlooping=False, ready=False)
    starting["metadata"]["creationTimestamp"] = k8s_time(T0 + timedelta(seconds=FIX1_AT + 0.4))
    put(FIX1_AT + 0.4, starting)
    ready = pod_object(pod, rv, started=T0 + timedelta(seconds=FIX1_POD_START), crashlooping=False)
    ready["metadata"]["creationTimestamp"] = starting["metadata"]["creationTimestamp"]
    put(EXPORTER_READY, ready)
    # the old crashlooping pod goes once the new one is Ready; its ReplicaSet is scaled to zero
    old_pod = world.one("database", "fdb-exporter")
    out.append((EXPORTER_READY + 0.3, None, ("Pod", "database", old_pod.name)))
    scaled = _bump(old_rs, rv)
    scaled["spec"]["replicas"] = 0
    scaled["status"] = {"observedGeneration": scaled["metadata"]["generation"], "replicas": 0}
    put(EXPORTER_READY + 0.5, scaled)

    # fix 2: the exporter's principal in FoundationDB's AuthorizationPolicy
    authz = _bump(_find(files, "authorizationpolicies.yaml", "database", "foundationdb-allow-clients"), rv)
    authz["spec"]["rules"][0]["from"][0]["source"]["principals"].append("cluster.local/ns/database/sa/fdb-exporter")
    put(FIX2_AT, authz)

    # fix 3: the exporter's metrics port in database's scrape policy
    scrape = _bump(_find(files, "ciliumnetworkpolicies.yaml", "database", "allow-prometheus-scrape"), rv)
    scrape["spec"]["ingress"][0]["toPorts"][0]["ports"] = _ports((9090, "TCP"), (9161, "TCP"))
    put(FIX3_AT, scrape)
    return sorted(out, key=lambda c: c[0])


def change_log(changes: list[tuple[float, dict | None, tuple]]) -> bytes:
    """The bundle's changes.jsonl (cluster/changelog.py's form)."""
    lines = []
    for at, obj, (kind, ns, name) in changes:
        record = {"time": round(T0.timestamp() + at, 3), "kind": kind, "namespace": ns, "name": name, "object": obj}
        lines.append(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
    return "".join(lines).encode()


# ---------------------------------------------------------------------------------------------- YAML out

class KubectlDumper(yaml.SafeDumper):
    """YAML the way kubectl prints it: sorted keys, block style, double quotes where a plain scalar would
    change type (go-yaml's choice), no line folding."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    node = dumper.represent_scalar("tag:yaml.org,2002:str", value)
    if not value or dumper.resolve(yaml.ScalarNode, value, (True, False)) != "tag:yaml.org,2002:str":
        node.style = '"'
    return node


KubectlDumper.add_representer(str, _represent_str)


def kubectl_yaml(items: list[dict]) -> bytes:
    doc = {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
    return yaml.dump(doc, Dumper=KubectlDumper, sort_keys=True, default_flow_style=False, width=1 << 16,
                     allow_unicode=True).encode()


# =============================================================================================== Hubble events

@dataclass(frozen=True)
class Peer:
    """Something at the other end of a flow that is not one of our pods: world, host, a CIDR identity."""

    ip: str
    identity: int
    labels: tuple[str, ...]
    node: str | None = None  # the node whose own address this is (host)
    pod_name: str = ""
    namespace: str = ""


def world_peer(ip: str) -> Peer:
    return Peer(ip, 2, ("reserved:world",))


def host(node: str) -> Peer:
    return Peer(NODE_IPS[node], 1, ("reserved:host",), node)


METADATA_PEER = Peer("169.254.169.254", 16777217, ("cidr:169.254.169.254/32", "reserved:world"))

Party = Pod | Peer


def node_of(p: Party) -> str | None:
    return p.node


def endpoint(p: Party, observer: str) -> dict:
    """The Endpoint message; a local pod also has its endpoint ID (Hubble only knows IDs of its own node)."""
    if isinstance(p, Peer):
        out: dict = {"identity": p.identity, "labels": list(p.labels)}
        return out
    out = {}
    if p.node == observer:
        out["ID"] = p.endpoint_id
    out.update({"identity": p.identity, "cluster_name": CLUSTER, "namespace": p.namespace,
                "labels": p.hubble_labels, "pod_name": p.name,
                "workloads": [{"name": p.workload[1], "kind": p.workload[0]}]})
    return out


TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK")  # declaration order of flow.TCPFlags


def tcp(sport: int, dport: int, flags: Iterable[str] = ()) -> dict:
    """The Layer4 oneof; L7 records carry no flags, and Hubble then prints no `flags` object."""
    flags = set(flags)
    body: dict = {"source_port": sport, "destination_port": dport}
    if flags:
        body["flags"] = {f: True for f in TCP_FLAG_NAMES if f in flags}
    return {"TCP": body}


def udp(sport: int, dport: int) -> dict:
    return {"UDP": {"source_port": sport, "destination_port": dport}}


def l4_summary(l4: dict) -> str:
    if "TCP" in l4:
        return "TCP Flags: " + ", ".join(sorted(l4["TCP"]["flags"]))
    return "UDP"


def policy_ref(kind: str, namespace: str, name: str, revision: int = 47) -> dict:
    labels = [f"k8s:io.cilium.k8s.policy.derived-from={kind}", f"k8s:io.cilium.k8s.policy.name={name}"]
    if namespace:
        labels.append(f"k8s:io.cilium.k8s.policy.namespace={namespace}")
    labels.append(f"k8s:io.cilium.k8s.policy.uid={make_uid(kind, namespace, name)}")
    out: dict = {"name": name}
    if namespace:
        out["namespace"] = namespace
    out.update({"labels": labels, "revision": str(revision), "kind": kind})
    return out


def cnp_ref(namespace: str, name: str) -> dict:
    return policy_ref("CiliumNetworkPolicy", namespace, name)


DROP_FILES = {133: ("bpf_lxc.c", 2085), 151: ("bpf_lxc.c", 1492), 155: ("bpf_lxc.c", 1187), 181: ("bpf_lxc.c", 2085)}
DROP_NAMES = {133: "POLICY_DENIED", 151: "STALE_OR_UNROUTABLE_IP", 155: "CT_MAP_INSERTION_FAILED",
              181: "POLICY_DENY"}


def flow_event(t: int, node: str, src: Party, dst: Party, l4: dict, *, verdict: str = "FORWARDED",
               event: tuple[int, int] = (4, 0), direction: str | None = None, point: str | None = None,
               trace_reason: str | None = None, is_reply: bool | None = None, drop: int | None = None,
               l7: dict | None = None, summary: str | None = None, match_type: int = 0,
               destination_names: tuple[str, ...] = (), allowed: dict | None = None,
               denied: dict | None = None) -> dict:
    """One GetFlowsResponse carrying a Flow, keys in the order Hubble (Go protojson) writes them."""
    node_name = f"{CLUSTER}/{node}"
    f: dict = {"time": rfc3339(t), "verdict": verdict}
    if drop is not None:
        f["drop_reason"] = drop
    f["IP"] = {"source": src.ip, "destination": dst.ip, "ipVersion": "IPv4"}
    f["l4"] = l4
    f["source"] = endpoint(src, node)
    f["destination"] = endpoint(dst, node)
    f["Type"] = "L7" if l7 is not None else "L3_L4"
    f["node_name"] = node_name
    if destination_names:
        f["destination_names"] = list(destination_names)
    if l7 is not None:
        f["l7"] = l7
    if is_reply:
        f["reply"] = True
    f["event_type"] = {"type": event[0], "sub_type": event[1]} if event[1] else {"type": event[0]}
    if direction:
        f["traffic_direction"] = direction
    if match_type:
        f["policy_match_type"] = match_type
    if point:
        f["trace_observation_point"] = point
    if trace_reason:
        f["trace_reason"] = trace_reason
    if drop is not None:
        name, line = DROP_FILES[drop]
        f["file"] = {"name": name, "line": line}
        f["drop_reason_desc"] = DROP_NAMES[drop]
    if is_reply is not None:
        f["is_reply"] = is_reply
    f["Summary"] = summary if summary is not None else l4_summary(l4)
    for key, refs in (("egress_allowed_by", (allowed or {}).get("EGRESS")),
                      ("ingress_allowed_by", (allowed or {}).get("INGRESS")),
                      ("egress_denied_by", (denied or {}).get("EGRESS")),
                      ("ingress_denied_by", (denied or {}).get("INGRESS"))):
        if refs:
            f[key] = refs
    return {"flow": f, "node_name": node_name, "time": f["time"]}


class Recording:
    """Events as they are produced; `lines()` orders them by time as Hubble Relay does."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, dict]] = []

    def add(self, t: int, event: dict) -> None:
        self.events.append((t, len(self.events), event))

    def extend(self, other: Recording) -> None:
        for t, _, ev in other.events:
            self.add(t, ev)

    def ordered(self) -> list[dict]:
        return [ev for _, _, ev in sorted(self.events, key=lambda e: e[:2])]

    def lines(self) -> bytes:
        return b"".join(orjson.dumps(ev) + b"\n" for ev in self.ordered())

    def only(self, keep: Callable[[dict], bool], limit: int) -> Recording:
        """The first `limit` events (in time order) that `keep` accepts."""
        out = Recording()
        for t, _, ev in sorted(self.events, key=lambda e: e[:2]):
            if len(out.events) < limit and keep(ev):
                out.add(t, ev)
        return out

    # ------------------------------------------------------------------------------- TCP and UDP packets

    def packet(self, t: int, client: Party, server: Party, cport: int, sport: int, flags: Iterable[str], *,
               reply: bool, reason: str) -> None:
        """One packet of a connection client -> server, at every point Hubble (medium aggregation) reports it.

        A request packet is seen leaving the client's node (to-overlay) and arriving at the server (to-endpoint);
        a reply the other way round. The direction is the connection's as each endpoint sees it.
        """
        flags = tuple(flags)
        src, dst = (server, client) if reply else (client, server)
        l4 = tcp(sport, cport, flags) if reply else tcp(cport, sport, flags)
        s_node, d_node = node_of(src), node_of(dst)
        local_src = isinstance(src, Pod)
        local_dst = isinstance(dst, Pod)
        dst_dir = "EGRESS" if reply else "INGRESS"
        src_dir = "INGRESS" if reply else "EGRESS"
        if local_src and local_dst and s_node == d_node:
            self.add(t, flow_event(t, d_node, src, dst, l4, direction=dst_dir, point="TO_ENDPOINT",
                                   trace_reason=reason, is_reply=reply))
            return
        if local_src:
            if local_dst:
                self.add(t, flow_event(t, s_node, src, dst, l4, event=(4, 4), direction=src_dir,
                                       point="TO_OVERLAY", trace_reason=reason, is_reply=reply))
            else:
                self.add(t, flow_event(t, s_node, src, dst, l4, event=(4, 3), direction=src_dir,
                                       point="TO_STACK", trace_reason=reason, is_reply=reply))
        if local_dst:
            t2 = t + HOP_NS if local_src else t
            self.add(t2, flow_event(t2, d_node, src, dst, l4, direction=dst_dir, point="TO_ENDPOINT",
                                    trace_reason=reason, is_reply=reply))

    def verdict(self, t: int, client: Pod, server: Party, cport: int, sport: int, side: str, refs: list[dict],
                match_type: int = 2) -> None:
        """A policy-verdict event (type 5) for the first packet of a new connection."""
        node = client.node if side == "EGRESS" else server.node
        self.add(t, flow_event(t, node, client, server, tcp(cport, sport, ("SYN",)), event=(5, 0), direction=side,
                               match_type=match_type, is_reply=False, allowed={side: refs}))

    def drop(self, t: int, src: Party, dst: Party, l4: dict, reason: int, side: str,
             denied: dict | None = None, destination_names: tuple[str, ...] = ()) -> None:
        node = src.node if side == "EGRESS" else dst.node
        self.add(t, flow_event(t, node, src, dst, l4, verdict="DROPPED", event=(1, reason), direction=side,
                               drop=reason, denied=denied, destination_names=destination_names))

    def connect(self, t: int, client: Party, server: Party, cport: int, sport: int, rtt: int,
                allowed: tuple[list[dict], list[dict]] | None = None) -> int:
        """SYN, SYN-ACK, ACK. With `allowed` (egress refs, ingress refs) the policy verdicts come first."""
        if allowed is not None:
            egress, ingress = allowed
            if egress:
                self.verdict(t, client, server, cport, sport, "EGRESS", egress)
            if ingress:  # decided at the server's node just before delivery (the to-endpoint trace)
                at = t + (HOP_NS - 2 * US if node_of(client) != node_of(server) else 1 * US)
                self.verdict(at, client, server, cport, sport, "INGRESS", ingress)
        self.packet(t, client, server, cport, sport, ("SYN",), reply=False, reason="NEW")
        self.packet(t + rtt // 2, client, server, cport, sport, ("SYN", "ACK"), reply=True, reason="REPLY")
        return t + rtt

    def exchange(self, t: int, client: Party, server: Party, cport: int, sport: int, rtt: int) -> int:
        """Some data each way on an established connection (what medium aggregation reports now and then)."""
        self.packet(t, client, server, cport, sport, ("PSH", "ACK"), reply=False, reason="ESTABLISHED")
        self.packet(t + rtt, client, server, cport, sport, ("PSH", "ACK"), reply=True, reason="REPLY")
        return t + rtt

    def close(self, t: int, client: Party, server: Party, cport: int, sport: int, rtt: int,
              by_server: bool = False) -> int:
        first = not by_server
        self.packet(t, client, server, cport, sport, ("FIN", "ACK"), reply=not first,
                    reason="ESTABLISHED" if first else "REPLY")
        self.packet(t + rtt // 2, client, server, cport, sport, ("FIN", "ACK"), reply=first,
                    reason="REPLY" if first else "ESTABLISHED")
        return t + rtt

    # ------------------------------------------------------------------------------------------ L7

    def dns(self, t: int, client: Pod, server: Pod, name: str, qtype: str, ips: list[str], rcode: int = 0,
            cport: int = 0, latency_ns: int = 900 * US) -> None:
        """A query through Cilium's DNS proxy and its answer, both reported on the client's node."""
        req = {"type": "REQUEST", "dns": {"query": name, "observation_source": "proxy", "qtypes": [qtype]}}
        self.add(t, flow_event(t, client.node, client, server, udp(cport, 53), l7=req, event=(129, 0),
                               direction="EGRESS", is_reply=False, summary=f"DNS Query {name} {qtype}"))
        answer: dict = {"query": name}
        if ips:
            answer["ips"] = ips
        answer["ttl"] = 30 if ips else 4294967295
        answer["observation_source"] = "proxy"
        if rcode:
            answer["rcode"] = rcode
        answer["qtypes"] = [qtype]
        if ips:
            answer["rrtypes"] = [qtype]
        if rcode == 3:
            what = "RCode: Non-Existent Domain"
        else:
            what = ",".join(f'"{ip}"' for ip in ips)
        summary = f"DNS Answer {what} TTL: {answer['ttl']} (Proxy {name} {qtype})"
        t2 = t + latency_ns
        self.add(t2, flow_event(t2, client.node, server, client, udp(53, cport),
                                l7={"type": "RESPONSE", "latency_ns": str(latency_ns), "dns": answer},
                                event=(129, 0), direction="EGRESS", is_reply=True, summary=summary))

    def http(self, t: int, client: Pod, server: Pod, cport: int, sport: int, method: str, url: str, code: int,
             latency_ns: int) -> None:
        """A request and its response through the server-side (ingress) L7 proxy."""
        req = {"type": "REQUEST", "http": {"method": method, "url": url, "protocol": "HTTP/1.1"}}
        self.add(t, flow_event(t, server.node, client, server, tcp(cport, sport), l7=req, event=(129, 0),
                               direction="INGRESS", is_reply=False, summary=f"HTTP/1.1 {method} {url}"))
        resp = {"type": "RESPONSE", "latency_ns": str(latency_ns),
                "http": {"code": code, "method": method, "url": url, "protocol": "HTTP/1.1"}}
        t2 = t + latency_ns
        self.add(t2, flow_event(t2, server.node, server, client, tcp(sport, cport), l7=resp, event=(129, 0),
                                direction="INGRESS", is_reply=True,
                                summary=f"HTTP/1.1 {code} {max(1, latency_ns // MS)}ms ({method} {url})"))

    # ------------------------------------------------------------------------------------------ relay

    def node_status(self, t: int, state: str, nodes: list[str], message: str = "") -> None:
        status: dict = {"state_change": state, "node_names": [f"{CLUSTER}/{n}" for n in nodes]}
        if message:
            status["message"] = message
        self.add(t, {"node_status": status, "node_name": RELAY_POD, "time": rfc3339(t)})

    def lost(self, t: int, node: str, count: int, cpu: int, span_ns: int) -> None:
        self.add(t, {"lost_events": {"source": "PERF_EVENT_RING_BUFFER", "num_events_lost": str(count), "cpu": cpu,
                                     "first": rfc3339(t - span_ns), "last": rfc3339(t)},
                     "node_name": f"{CLUSTER}/{node}", "time": rfc3339(t)})


class Ports:
    """Ephemeral source ports per pod, as Linux picks them (random in 32768-60999, no reuse here)."""

    def __init__(self, purpose: str) -> None:
        self.rng = rng_for("ports", purpose)
        self.used: set[int] = set()

    def __call__(self) -> int:
        while True:
            p = self.rng.randint(32768, 60999)
            if p not in self.used:
                self.used.add(p)
                return p


def jitter(rng: random.Random, base_ns: int, spread: float = 0.25) -> int:
    return max(1, int(base_ns * rng.uniform(1 - spread, 1 + spread)))


def rtt_between(rng: random.Random, a: Party, b: Party) -> int:
    same = node_of(a) is not None and node_of(a) == node_of(b)
    return jitter(rng, 60 * US if same else 380 * US)


# =============================================================================================== the story

FDB_PORT = 4500
EXPORTER_RUNS = (2.0, 24.1, 56.3, 108.2)  # phase 1: ~12 s runs; kubelet back-off 10 s, 20 s, 40 s between
RUN_SECONDS = 12.0
FIX1_POD_START = 133.0  # phase 2: the new pod's container starts
EXPORTER_READY = 148.0  # phase 3: Ready, so Prometheus scrapes it (every 15 s)
SCRAPE_INTERVAL = 15.0


def coordinator_names() -> list[str]:
    return [f"foundationdb-{i}.foundationdb.database.svc.cluster.local." for i in range(3)]


def resolve_coordinators(rec: Recording, w: World, client: Pod, t: int, rng: random.Random, ports: Ports) -> int:
    dns_pods = w.pods["kube-system", "coredns"]
    for i, (name, fdb) in enumerate(zip(coordinator_names(), w.pods["database", "foundationdb"])):
        server = dns_pods[(i + client.endpoint_id) % len(dns_pods)]
        port = ports()
        rec.dns(t, client, server, name, "A", [fdb.ip], cport=port, latency_ns=jitter(rng, 700 * US))
        rec.dns(t + 40 * US, client, server, name, "AAAA", [], cport=port, latency_ns=jitter(rng, 650 * US))
        t += jitter(rng, 2 * MS)
    return t


def phase1_exporter_denied(rec: Recording, w: World) -> None:
    """The crashlooping exporter: every SYN to a coordinator dies at its own egress (default deny)."""
    rng = rng_for("phase1")
    exporter = w.one("database", "fdb-exporter")
    ports = Ports("exporter-a")
    for run_start in EXPORTER_RUNS:
        t0 = resolve_coordinators(rec, w, exporter, ns_at(run_start), rng, ports)
        end = t0 + int(RUN_SECONDS * 1e9)
        for fdb in w.pods["database", "foundationdb"]:
            # the client opens a connection, then a fresh one every ~4 s; the kernel retransmits each SYN
            # (after 1 s, then 2 s more, then 4 s more) until the exporter gives up and exits
            start = t0 + jitter(rng, 3 * MS)
            retransmits: tuple[int, ...] = (0, 1, 3, 7)
            while start < end - 1_000 * MS:
                port = ports()
                for offset in retransmits:
                    at = start + offset * 1_000_000_000 + (jitter(rng, 2 * MS) if offset else 0)
                    if at < end:
                        rec.drop(at, exporter, fdb, tcp(port, FDB_PORT, ("SYN",)), 133, "EGRESS")
                start += jitter(rng, 4_000 * MS, 0.08)
                retransmits = (0, 1, 3)


def phase2_istio_refusals(rec: Recording, w: World) -> None:
    """After the label fix Cilium forwards, and FoundationDB's sidecar refuses the exporter's principal."""
    rng = rng_for("phase2")
    exporter = w.exporter_fixed
    ports = Ports("exporter-b")
    egress = [cnp_ref("database", "fdb-clients-egress")]
    ingress = [cnp_ref("database", "fdb-allow-clients")]
    end = ns_at(END_S)
    t0 = resolve_coordinators(rec, w, exporter, ns_at(FIX1_POD_START), rng, ports)
    for idx, fdb in enumerate(w.pods["database", "foundationdb"]):
        t = t0 + jitter(rng, 2 * MS)
        delay = 2.0
        attempt = 0
        while t < end:
            port = ports()
            rtt = rtt_between(rng, exporter, fdb)
            t1 = rec.connect(t, exporter, fdb, port, FDB_PORT, rtt, allowed=(egress, ingress))
            if t >= ns_at(FIX2_AT):
                # fix 2 is in: the principal is admitted and the connection stays up, busy every few seconds
                beat = t1 + jitter(rng, 1_000 * MS)
                while beat < end:
                    rec.exchange(beat, exporter, fdb, port, FDB_PORT, rtt)
                    beat += jitter(rng, 5_000 * MS, 0.1)
                break
            # the client's sidecar starts the mTLS handshake; FoundationDB's sidecar completes it, sees a
            # principal no rule admits and closes: a FIN or a RST from FoundationDB within a few milliseconds
            t2 = t1 + jitter(rng, 2_600 * US)
            if (attempt + idx) % 3 == 2:
                rec.packet(t2, exporter, fdb, port, FDB_PORT, ("RST", "ACK"), reply=True, reason="REPLY")
            else:
                rec.close(t2, exporter, fdb, port, FDB_PORT, rtt, by_server=True)
            attempt += 1
            t += jitter(rng, int(delay * 1e9), 0.15)
            delay = min(delay * 2, 40.0)


def phase3_prometheus_denied(rec: Recording, w: World) -> None:
    """Prometheus scrapes the new exporter pod: forwarded by its own egress, dropped at the exporter's ingress."""
    rng = rng_for("phase3")
    prometheus = w.one("monitoring", "prometheus")
    exporter = w.exporter_fixed
    ports = Ports("prometheus-exporter")
    t = ns_at(EXPORTER_READY) + jitter(rng, 700 * MS)
    while t < ns_at(END_S):
        port = ports()
        if t >= ns_at(FIX3_AT):
            # fix 3 is in: the scrape is let in; one short connection per scrape
            rtt = rtt_between(rng, prometheus, exporter)
            done = rec.connect(t, prometheus, exporter, port, 9161, rtt,
                               allowed=([cnp_ref("monitoring", "prometheus-scrape-egress")],
                                        [cnp_ref("database", "allow-prometheus-scrape")]))
            done = rec.exchange(done + jitter(rng, 1 * MS), prometheus, exporter, port, 9161, rtt)
            rec.close(done + jitter(rng, 2 * MS), prometheus, exporter, port, 9161, rtt)
            t += int(SCRAPE_INTERVAL * 1e9) + rng.randint(-2 * MS, 2 * MS)
            continue
        for offset in (0, 1, 3, 7):  # SYN retransmits within the 10 s scrape timeout
            at = t + offset * 1_000_000_000 + (jitter(rng, 3 * MS) if offset else 0)
            if at >= ns_at(END_S):
                break
            l4 = tcp(port, 9161, ("SYN",))
            rec.add(at, flow_event(at, prometheus.node, prometheus, exporter, l4, event=(4, 4), direction="EGRESS",
                                   point="TO_OVERLAY", trace_reason="NEW", is_reply=False))
            rec.drop(at + jitter(rng, 300 * US), prometheus, exporter, l4, 133, "INGRESS")
        t += int(SCRAPE_INTERVAL * 1e9) + rng.randint(-2 * MS, 2 * MS)


# ------------------------------------------------------------------------------------------ background

def periodic(start: float, every: float, rng: random.Random, spread: float = 0.1,
             end: float = END_S) -> Iterable[int]:
    t = ns_at(start) + rng.randint(0, 999_999)
    while t < ns_at(end):
        yield t
        t += jitter(rng, int(every * 1e9), spread)


def background_dns(rec: Recording, w: World) -> None:
    """Lookups every workload makes as TTLs (30 s) expire."""
    rng = rng_for("dns")
    coredns = w.pods["kube-system", "coredns"]
    svc = w.service_ips
    lookups: list[tuple[Pod, list[tuple[str, list[str], int]]]] = []
    for fe in w.pods["shop", "frontend"]:
        lookups.append((fe, [("cart.shop.svc.cluster.local.", [svc["shop", "cart"]], 0),
                             ("checkout.shop.svc.cluster.local.", [svc["shop", "checkout"]], 0)]))
    lookups.append((w.one("shop", "checkout"),
                    [("payments-api.payments.svc.cluster.local.", [svc["payments", "payments-api"]], 0),
                     ("cart.shop.svc.cluster.local.", [svc["shop", "cart"]], 0)]))
    stripe = ["api.stripe.com.payments.svc.cluster.local.", "api.stripe.com.svc.cluster.local.",
              "api.stripe.com.cluster.local."]
    lookups.append((w.one("payments", "payments-api"),
                    [(n, [], 3) for n in stripe] + [("api.stripe.com.", ["198.51.100.74", "198.51.100.75"], 0)]))
    lookups.append((w.one("database", "fdb-backup"),
                    [("fdb-backups.s3.eu-west-1.amazonaws.com.", ["192.0.2.140"], 0)]))
    for client, names in lookups:
        ports = Ports(f"dns-{client.name}")
        every = 90.0 if client.app.name == "payments-api" else 60.0
        for t in periodic(rng.uniform(0.5, 25.0), every, rng, 0.05):
            for name, ips, rcode in names:
                server = coredns[rng.randrange(len(coredns))]
                port = ports()
                rec.dns(t, client, server, name, "A", ips, rcode, port, jitter(rng, 800 * US))
                t += jitter(rng, 3 * MS)


def background_shop(rec: Recording, w: World) -> None:
    rng = rng_for("shop")
    frontends = w.pods["shop", "frontend"]
    cart, checkout = w.one("shop", "cart"), w.one("shop", "checkout")
    payments = w.one("payments", "payments-api")
    # keep-alive connections from each frontend to cart and checkout: opened before the recording starts
    keep = {(fe.name, dst.name): Ports(f"keep-{fe.name}-{dst.name}")() for fe in frontends for dst in (cart, checkout)}
    for t in periodic(0.3, 6.0, rng, 0.6):
        fe = frontends[rng.randrange(2)]
        cart_id = rng.randint(10000, 99999)
        roll = rng.random()
        if roll < 0.7:
            method, url, code = "GET", f"http://cart:8080/api/cart/{cart_id}", 200 if rng.random() > 0.04 else 404
        elif roll < 0.93:
            method, url, code = "POST", f"http://cart:8080/api/cart/{cart_id}/items", 201
        else:
            method, url, code = "DELETE", f"http://cart:8080/api/cart/{cart_id}/items/{rng.randint(1, 9)}", 204
        rec.http(t, fe, cart, keep[fe.name, cart.name], 8080, method, url, code, jitter(rng, 4 * MS, 0.6))
    checkout_ports = Ports("checkout-payments")
    stripe_ports = Ports("payments-stripe")
    for t in periodic(6.0, 45.0, rng, 0.3):
        fe = frontends[rng.randrange(2)]
        latency = jitter(rng, 240 * MS, 0.3)
        rec.http(t, fe, checkout, keep[fe.name, checkout.name], 8080, "POST", "http://checkout:8080/api/checkout",
                 200, latency)
        # checkout opens a fresh connection to payments-api, which calls the payment provider
        port = checkout_ports()
        rtt = rtt_between(rng, checkout, payments)
        t1 = rec.connect(t + 4 * MS, checkout, payments, port, 8080, rtt)
        ext = world_peer("198.51.100.74")
        sp = stripe_ports()
        s_rtt = jitter(rng, 18 * MS)
        t2 = t1 + 2 * MS
        rec.add(t2, flow_event(t2, payments.node, payments, ext, tcp(sp, 443, ("SYN",)), event=(4, 3),
                               direction="EGRESS", point="TO_STACK", trace_reason="NEW", is_reply=False,
                               destination_names=("api.stripe.com",)))
        rec.add(t2 + s_rtt, flow_event(t2 + s_rtt, payments.node, ext, payments, tcp(443, sp, ("SYN", "ACK")),
                                       direction="EGRESS", point="TO_ENDPOINT", trace_reason="REPLY", is_reply=True))
        rec.close(t + latency - 2 * MS, checkout, payments, port, 8080, rtt)


def background_world(rec: Recording, w: World) -> None:
    """Customers reach the storefront through the load balancer (source addresses preserved)."""
    rng = rng_for("world")
    frontends = w.pods["shop", "frontend"]
    for t in periodic(1.1, 15.0, rng, 0.5):
        client = world_peer(f"{rng.choice(('198.51.100', '203.0.113', '192.0.2'))}.{rng.randint(2, 254)}")
        fe = frontends[rng.randrange(2)]
        port = rng.randint(1024, 65000)
        rec.packet(t, client, fe, port, 8080, ("SYN",), reply=False, reason="NEW")
        rec.packet(t + 90 * US, client, fe, port, 8080, ("SYN", "ACK"), reply=True, reason="REPLY")


def background_prometheus(rec: Recording, w: World) -> None:
    """Scrapes every 30 s: shop pods at L7 (the scrape policy has an HTTP rule), others at L3/L4."""
    rng = rng_for("prometheus")
    prom = w.one("monitoring", "prometheus")
    l7_targets = [*w.pods["shop", "frontend"], w.one("shop", "cart"), w.one("shop", "checkout")]
    l4_targets = [(p, 9153) for p in w.pods["kube-system", "coredns"]]
    keep = Ports("prometheus-keepalive")
    conns = {p.name: keep() for p in l7_targets} | {p.name: keep() for p, _ in l4_targets}
    for i, target in enumerate(l7_targets):
        for t in periodic(3.0 + 7.1 * i, 30.0, rng, 0.01):
            rec.http(t, prom, target, conns[target.name], 9090, "GET", f"http://{target.ip}:9090/metrics", 200,
                     jitter(rng, 9 * MS, 0.5))
    for i, (target, port) in enumerate(l4_targets):
        for t in periodic(11.0 + 5.3 * i, 60.0, rng, 0.01):
            rec.exchange(t, prom, target, conns[target.name], port, jitter(rng, 4 * MS))


def background_fdb(rec: Recording, w: World) -> None:
    """fdb-backup's long-lived connections to the coordinators, a reconnect, and the servers' own chatter."""
    rng = rng_for("fdb")
    backup = w.one("database", "fdb-backup")
    servers = w.pods["database", "foundationdb"]
    ports = Ports("fdb-backup")
    conns = {s.name: ports() for s in servers}
    for i, server in enumerate(servers):
        for t in periodic(0.7 + 1.9 * i, 60.0, rng, 0.2):
            rec.exchange(t, backup, server, conns[server.name], FDB_PORT, rtt_between(rng, backup, server))
    # a reconnect: the whole handshake, with the policy verdicts naming the rules that allowed it
    egress = [cnp_ref("database", "fdb-clients-egress")]
    ingress = [cnp_ref("database", "fdb-allow-clients")]
    server = servers[0]
    t = ns_at(41.37)
    rtt = rtt_between(rng, backup, server)
    rec.close(t, backup, server, conns[server.name], FDB_PORT, rtt)
    port = ports()
    t1 = rec.connect(t + 120 * MS, backup, server, port, FDB_PORT, rtt, allowed=(egress, ingress))
    rec.exchange(t1 + 100 * US, backup, server, port, FDB_PORT, jitter(rng, 3 * MS))
    # servers talk to each other
    peer_ports = Ports("fdb-peers")
    pairs = [(servers[a], servers[b]) for a, b in ((0, 1), (1, 2), (2, 0))]
    peer_conns = {(a.name, b.name): peer_ports() for a, b in pairs}
    for i, (a, b) in enumerate(pairs):
        for t in periodic(2.2 + 3.3 * i, 120.0, rng, 0.2):
            rec.exchange(t, a, b, peer_conns[a.name, b.name], FDB_PORT, rtt_between(rng, a, b))


def background_probes(rec: Recording, w: World) -> None:
    """Kubelet readiness probes: the node itself (reserved:host) opening a connection to the pod."""
    rng = rng_for("probes")
    for i, pod in enumerate(w.pods["shop", "frontend"][:1]):
        kubelet = host(pod.node)
        for t in periodic(0.4 + 3.1 * i, 20.0, rng, 0.01):
            port = rng.randint(32768, 60999)
            rec.packet(t, kubelet, pod, port, 8080, ("SYN",), reply=False, reason="NEW")
            rec.packet(t + 60 * US, kubelet, pod, port, 8080, ("SYN", "ACK"), reply=True, reason="REPLY")


def background_istiod(rec: Recording, w: World) -> None:
    """Sidecars keep an xDS stream to istiod; medium aggregation reports it now and then."""
    rng = rng_for("istiod")
    istiod = w.one("istio-system", "istiod")
    clients = [*w.pods["database", "foundationdb"], w.one("database", "fdb-backup")]
    ports = Ports("xds")
    for i, c in enumerate(clients):
        port = ports()
        for t in periodic(4.0 + 9.7 * i, 180.0, rng, 0.1):
            rec.exchange(t, c, istiod, port, 15012, rtt_between(rng, c, istiod))


def other_drops(rec: Recording, w: World) -> None:
    """Drops that are not the story: a stale address, a scanner, the metadata service, a full CT map."""
    rng = rng_for("other-drops")
    fe2 = w.pods["shop", "frontend"][1]
    stale = world_peer("10.244.2.23")  # cart's address before it was rescheduled: nobody owns it now
    port = Ports("stale")()
    for k in range(3):
        t = ns_at(31.2 + k * 1.0) + rng.randint(0, 2 * MS)
        rec.drop(t, fe2, stale, tcp(port, 8080, ("SYN",)), 151, "EGRESS")
    cart = w.one("shop", "cart")
    scanner = world_peer("198.51.100.23")
    for k, port in enumerate((8080, 8080, 8080, 8080, 8080)):
        t = ns_at(79.5 + k * 0.4) + rng.randint(0, 30 * MS)
        rec.drop(t, scanner, cart, tcp(rng.randint(40000, 60000), port, ("SYN",)), 133, "INGRESS")
    backup = w.one("database", "fdb-backup")
    deny = {"EGRESS": [policy_ref("CiliumClusterwideNetworkPolicy", "", "deny-cloud-metadata")]}
    port = Ports("imds")()
    for offset in (0.0, 1.0, 3.0):
        t = ns_at(95.04 + offset) + rng.randint(0, 2 * MS)
        rec.drop(t, backup, METADATA_PEER, tcp(port, 80, ("SYN",)), 181, "EGRESS", denied=deny)
    # the CT map on worker-2 runs full for a moment: new connections there die whatever their policy
    burst = ns_at(203.6)
    prom = w.one("monitoring", "prometheus")
    payments = w.one("payments", "payments-api")
    stripe, s3 = ("api.stripe.com",), ("fdb-backups.s3.eu-west-1.amazonaws.com",)
    victims = [(prom, w.one("shop", "checkout"), 9090, ()), (payments, world_peer("198.51.100.75"), 443, stripe),
               (prom, w.pods["kube-system", "coredns"][0], 9153, ()), (backup, world_peer("192.0.2.140"), 443, s3),
               (payments, world_peer("198.51.100.74"), 443, stripe)]
    for k, (src, dst, dport, names) in enumerate(victims):
        t = burst + k * jitter(rng, 35 * MS)
        rec.drop(t, src, dst, tcp(rng.randint(32768, 60999), dport, ("SYN",)), 155, "EGRESS",
                 destination_names=names)


def relay_events(rec: Recording, w: World) -> None:
    rec.node_status(ns_at(0.0), "NODE_CONNECTED", list(NODES))
    rec.lost(ns_at(187.431), "worker-2", 37, 1, 4 * MS)
    rec.node_status(ns_at(214.9), "NODE_UNAVAILABLE", ["control-plane"],
                    "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: "
                    "dial tcp 172.18.0.2:4244: connect: connection refused\"")


def build_recording(w: World) -> Recording:
    rec = Recording()
    for part in (relay_events, background_dns, background_shop, background_world, background_prometheus,
                 background_fdb, background_probes, background_istiod, other_drops,
                 phase1_exporter_denied, phase2_istio_refusals, phase3_prometheus_denied):
        part(rec, w)
    return rec


# =============================================================================================== fixtures

def camel_case(event: dict) -> dict:
    """The same response with lowerCamelCase JSON names (what protojson writes without UseProtoNames)."""
    from hubbletui.proto.observer import (
        observer_pb2,  # the generator runs from the repository
    )

    msg = json_format.Parse(orjson.dumps(event), observer_pb2.GetFlowsResponse())
    return json_format.MessageToDict(msg)


def _conn_port(ev: dict) -> int:
    """The client's port of a TCP flow to or from FoundationDB."""
    body = ev["flow"]["l4"]["TCP"]
    return body["source_port"] if body["destination_port"] == FDB_PORT else body["destination_port"]


def fixtures(w: World) -> dict[str, bytes]:
    """Small recordings cut from the same generators as the demo (so they agree with its cluster snapshot)."""
    def run(*parts: Callable[[Recording, World], None]) -> Recording:
        rec = Recording()
        for part in parts:
            part(rec, w)
        return rec

    everything = lambda ev: True
    egress_drop = run(phase1_exporter_denied).only(lambda ev: "flow" in ev and "drop_reason" in ev["flow"], 6)
    ingress_drop = run(phase3_prometheus_denied).only(everything, 4)
    deny181 = run(other_drops).only(lambda ev: ev["flow"].get("drop_reason") == 181, 3)

    refused = run(phase2_istio_refusals)
    first_ports: list[int] = []

    def first_connections(ev: dict) -> bool:
        if "l7" in ev["flow"]:  # the DNS lookups before the connections
            return False
        port = _conn_port(ev)
        if port not in first_ports and len(first_ports) < 6:
            first_ports.append(port)
        return port in first_ports

    istio = refused.only(first_connections, 1000)
    backup = w.one("database", "fdb-backup").name
    allowed_mesh = run(background_fdb).only(
        lambda ev: backup in (ev["flow"]["source"].get("pod_name"), ev["flow"]["destination"].get("pod_name")), 40)

    relay = run(relay_events)
    relay.extend(egress_drop.only(everything, 2))

    drops = egress_drop.ordered()
    camel = b"".join(orjson.dumps(camel_case(ev)) + b"\n" for ev in (drops[0], ingress_drop.ordered()[1]))
    legacy = b"".join(orjson.dumps(ev["flow"]) + b"\n" for ev in drops[:3])
    return {
        "policy_denied_egress.jsonl": egress_drop.lines(),
        "policy_denied_ingress.jsonl": ingress_drop.lines(),
        "policy_deny_181.jsonl": deny181.lines(),
        "istio_refusal.jsonl": istio.lines(),
        "istio_allowed_backup.jsonl": allowed_mesh.lines(),
        "node_status_lost_events.jsonl": relay.lines(),
        "camel_case.jsonl": camel,
        "legacy_bare_flow.jsonl": legacy,
    }


# =============================================================================================== writing

def outputs(root: Path) -> dict[Path, bytes]:
    w = build_world()
    out: dict[Path, bytes] = {}
    demo = root / "hubbletui" / "demo"
    files = cluster_files(w)
    for name, items in files.items():
        out[demo / "cluster" / name] = kubectl_yaml(items)
    out[demo / "changes.jsonl"] = change_log(story_changes(w, files))
    out[demo / "flows.jsonl"] = build_recording(w).lines()
    for name, data in fixtures(w).items():
        out[root / "tests" / "fixtures" / "flows" / name] = data
    return out


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; these are ordinary repository files
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="root to write under (default: the repository)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    files = outputs(args.out)
    for path, data in sorted(files.items()):
        write_atomic(path, data)
        print(f"{path}  {len(data):,} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
