"""Write tests/fixtures/mesh/: an Istio mesh cluster snapshot and a Hubble recording of what it does.

    python scripts/make_mesh_fixtures.py [OUT_DIR]

The recording is shaped after real Hubble jsonpb lines (../shared/samples/flows): trace events at both nodes
a packet crosses (TO_OVERLAY leaving the client's node, TO_ENDPOINT arriving), a policy-verdict event for
each first SYN, `is_reply` on answers, L7 records where Cilium's proxy sees HTTP. Output is deterministic.

The story, namespace `shop` (istio-injection=enabled), root namespace istio-system:
- checkout crashloops: every restart it connects to payments:8080 (TCP), whose ALLOW policy admits only
  frontend. The sidecar finishes the TLS handshake, then resets: SYN, SYN-ACK, data, RST within ms.
- frontend -> payments:8080 is admitted; its short connections are closed by payments within ms too.
- legacy/batch (no sidecar) -> ledger:5432, whose PeerAuthentication is STRICT: reset before any data.
- search -> catalog:9080 (HTTP): no ALLOW rule admits search, every request is answered 403.
- reviewer -> catalog:9080: admitted, but a DENY on /admin* answers its /admin requests 403.
- checkout -> audit:9090: a DENY policy refuses it; only its SYNs were recorded (no packet evidence).
- legacy/batch -> legacy/web:8000: reset right after setup, but no mesh is involved.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime

import yaml

T0 = int(datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
MS = 1_000_000
S = 1_000_000_000
CLIENT_NODE, SERVER_NODE = "worker-a", "worker-b"

MESH_NAMESPACES = {"shop"}
# name -> (namespace, service account, ip, identity, container ports, node)
WORKLOADS = {
    "frontend": ("shop", "frontend", "10.0.1.10", 40101, {}, CLIENT_NODE),
    "checkout": ("shop", "checkout", "10.0.1.11", 40102, {}, CLIENT_NODE),
    "search": ("shop", "search", "10.0.1.12", 40103, {}, CLIENT_NODE),
    "reviewer": ("shop", "reviewer", "10.0.1.13", 40104, {}, CLIENT_NODE),
    "payments": ("shop", "payments", "10.0.2.20", 40201, {"tcp-payments": 8080}, SERVER_NODE),
    "catalog": ("shop", "catalog", "10.0.2.21", 40202, {"http": 9080}, SERVER_NODE),
    "ledger": ("shop", "ledger", "10.0.2.22", 40203, {"tcp-pg": 5432}, SERVER_NODE),
    "audit": ("shop", "audit", "10.0.2.23", 40204, {"tcp-audit": 9090}, SERVER_NODE),
    "batch": ("legacy", "batch", "10.0.3.30", 40301, {}, CLIENT_NODE),
    "web": ("legacy", "web", "10.0.4.40", 40302, {"http": 8000}, SERVER_NODE),
}
HASH = "5d8f7c9b6d"


def pod_name(app: str) -> str:
    return f"{app}-{HASH}-{app[:3]}{len(app)}x"


def principal(app: str) -> str:
    ns, sa = WORKLOADS[app][:2]
    return f"cluster.local/ns/{ns}/sa/{sa}"


# ------------------------------------------------------------------------------------------------ the cluster

def cluster_objects() -> list[dict]:
    objects: list[dict] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system", "labels": {
            "kubernetes.io/metadata.name": "istio-system"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {
            "kubernetes.io/metadata.name": "shop", "istio-injection": "enabled"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy", "labels": {
            "kubernetes.io/metadata.name": "legacy"}}},
    ]
    for app, (ns, sa, ip, _, ports, node) in WORKLOADS.items():
        mesh = ns in MESH_NAMESPACES
        labels = {"app": app}
        container_ports = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()]
        template = {"metadata": {"labels": dict(labels)}, "spec": {
            "serviceAccountName": sa, "containers": [{"name": app, "image": f"example.com/{app}:1.4",
                                                       "ports": container_ports}]}}
        objects.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}})
        objects.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns},
                        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)}, "template": template}})
        pod_labels = {**labels, "pod-template-hash": HASH}
        containers = [{"name": app, "image": f"example.com/{app}:1.4", "ports": container_ports}]
        statuses = [{"name": app, "ready": app != "checkout", "restartCount": 6 if app == "checkout" else 0,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}} if app == "checkout" else
                     {"running": {"startedAt": "2026-03-02T09:00:00Z"}}}]
        if mesh:
            # what Istio's injector leaves on an admitted pod
            pod_labels.update({"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": app})
            containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.2",
                               "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}]})
            statuses.append({"name": "istio-proxy", "ready": True, "restartCount": 0,
                             "state": {"running": {"startedAt": "2026-03-02T09:00:00Z"}}})
        objects.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": pod_name(app), "namespace": ns, "labels": pod_labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{app}-{HASH}",
                                 "controller": True, "uid": f"00000000-0000-4000-8000-{WORKLOADS[app][3]:012d}"}]},
            "spec": {"serviceAccountName": sa, "nodeName": node, "containers": containers},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "containerStatuses": statuses}})
        for name, port in ports.items():
            objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "namespace": ns},
                            "spec": {"selector": dict(labels), "ports": [
                                {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}]}})
    objects += [
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "default", "namespace": "istio-system"}, "spec": {"mtls": {"mode": "PERMISSIVE"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
         "metadata": {"name": "ledger-strict", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "ledger"}}, "mtls": {"mode": "STRICT"}}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "payments-allow", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "payments"}}, "action": "ALLOW", "rules": [
             {"from": [{"source": {"principals": [principal("frontend")]}}],
              "to": [{"operation": {"ports": ["8080"]}}]}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "catalog-allow", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "catalog"}}, "action": "ALLOW", "rules": [
             {"from": [{"source": {"principals": [principal("frontend"), principal("reviewer")]}}],
              "to": [{"operation": {"ports": ["9080"], "methods": ["GET", "HEAD"]}}]}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "catalog-deny-admin", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "catalog"}}, "action": "DENY", "rules": [
             {"to": [{"operation": {"paths": ["/admin*"]}}]}]}},
        {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "audit-deny-checkout", "namespace": "shop"},
         "spec": {"selector": {"matchLabels": {"app": "audit"}}, "action": "DENY", "rules": [
             {"from": [{"source": {"principals": [principal("checkout")]}}],
              "to": [{"operation": {"ports": ["9090"]}}]}]}},
    ]
    return objects


# ------------------------------------------------------------------------------------------------ flows

def _time(ns: int) -> str:
    seconds, nanos = divmod(ns, S)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def endpoint(app: str) -> dict:
    ns, sa, _, identity, _, _ = WORKLOADS[app]
    labels = [f"k8s:app={app}", f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={ns}",
              "k8s:io.cilium.k8s.policy.cluster=default", f"k8s:io.cilium.k8s.policy.serviceaccount={sa}",
              f"k8s:io.kubernetes.pod.namespace={ns}"]
    if ns in MESH_NAMESPACES:
        labels += ["k8s:io.cilium.k8s.namespace.labels.istio-injection=enabled",
                   "k8s:security.istio.io/tlsMode=istio", f"k8s:service.istio.io/canonical-name={app}"]
    return {"ID": identity % 4000, "identity": identity, "cluster_name": "default", "namespace": ns,
            "labels": sorted(labels), "pod_name": pod_name(app), "workloads": [{"name": app, "kind": "Deployment"}]}


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[int, int, dict]] = []

    def _emit(self, t: int, flow: dict) -> None:
        flow = {"time": _time(t), "uuid": f"00000000-0000-4000-9000-{len(self.lines):012d}", **flow}
        self.lines.append((t, len(self.lines), {"flow": flow, "node_name": flow["node_name"], "time": _time(t)}))

    def packet(self, t: int, client: str, server: str, cport: int, sport: int, flags: tuple[str, ...],
               reply: bool, *, verdict_event: bool = False, both_nodes: bool = True) -> None:
        """One TCP packet, seen leaving the sender's node and (both_nodes) arriving at the receiver's."""
        src, dst = (server, client) if reply else (client, server)
        src_port, dst_port = (sport, cport) if reply else (cport, sport)
        base = {"verdict": "FORWARDED",
                "IP": {"source": WORKLOADS[src][2], "destination": WORKLOADS[dst][2], "ipVersion": "IPv4"},
                "l4": {"TCP": {"source_port": src_port, "destination_port": dst_port,
                               "flags": {f: True for f in flags}}},
                "source": endpoint(src), "destination": endpoint(dst), "Type": "L3_L4", "is_reply": reply,
                "Summary": "TCP Flags: " + ", ".join(flags)}
        sender, receiver = WORKLOADS[src][5], WORKLOADS[dst][5]
        self._emit(t, {**base, "node_name": sender, "event_type": {"type": 4, "sub_type": 4},
                       "traffic_direction": "EGRESS", "trace_observation_point": "TO_OVERLAY"})
        if verdict_event:
            # the destination's ingress policy verdict for a new connection
            self._emit(t + 40_000, {**base, "node_name": receiver, "event_type": {"type": 5},
                                    "traffic_direction": "INGRESS", "policy_match_type": 4,
                                    "ingress_allowed_by": [], "Summary": base["Summary"]})
        if both_nodes:
            self._emit(t + 60_000, {**base, "node_name": receiver, "event_type": {"type": 4},
                                    "traffic_direction": "INGRESS", "trace_observation_point": "TO_ENDPOINT"})

    def http(self, t: int, client: str, server: str, cport: int, sport: int, method: str, path: str,
             code: int, latency_ns: int) -> None:
        host = f"{server}.{WORKLOADS[server][0]}:{sport}"
        url = f"http://{host}{path}"
        headers = [{"key": "User-Agent", "value": f"{client}/1.4"}, {"key": "X-Request-Id",
                                                                      "value": f"req-{len(self.lines):06d}"}]
        node = WORKLOADS[server][5]
        common = {"verdict": "FORWARDED", "Type": "L7", "node_name": node, "event_type": {"type": 129},
                  "traffic_direction": "INGRESS"}
        self._emit(t, {**common,
                       "IP": {"source": WORKLOADS[client][2], "destination": WORKLOADS[server][2], "ipVersion": "IPv4"},
                       "l4": {"TCP": {"source_port": cport, "destination_port": sport}},
                       "source": endpoint(client), "destination": endpoint(server), "is_reply": False,
                       "l7": {"type": "REQUEST", "http": {"method": method, "url": url, "protocol": "HTTP/1.1",
                                                          "headers": headers}},
                       "Summary": f"HTTP/1.1 {method} {url}"})
        self._emit(t + latency_ns, {
            **common, "IP": {"source": WORKLOADS[server][2], "destination": WORKLOADS[client][2], "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": sport, "destination_port": cport}},
            "source": endpoint(server), "destination": endpoint(client), "is_reply": True, "reply": True,
            "l7": {"type": "RESPONSE", "latency_ns": str(latency_ns),
                   "http": {"code": code, "method": method, "url": url, "protocol": "HTTP/1.1", "headers": headers}},
            "Summary": f"HTTP/1.1 {code} {latency_ns // MS}ms ({method} {url})"})

    def handshake(self, t: int, client: str, server: str, cport: int, sport: int) -> int:
        self.packet(t, client, server, cport, sport, ("SYN",), False, verdict_event=True)
        self.packet(t + 200_000, client, server, cport, sport, ("SYN", "ACK"), True)
        self.packet(t + 350_000, client, server, cport, sport, ("ACK",), False)
        return t + 350_000

    def jsonl(self) -> str:
        return "".join(json.dumps(obj, separators=(",", ":")) + "\n" for _, _, obj in sorted(self.lines,
                                                                                            key=lambda x: x[:2]))


def recording() -> str:
    rec = Recorder()
    # checkout crashloops: each container start tries payments twice, 200 ms apart; restarts back off
    port = 41000
    for start_s in (0, 10, 30, 70, 150, 310):
        for retry in range(2):
            t = T0 + start_s * S + retry * 200 * MS
            port += 7
            t = rec.handshake(t, "checkout", "payments", port, 8080)
            rec.packet(t + 100_000, "checkout", "payments", port, 8080, ("PSH", "ACK"), False)  # ClientHello
            rec.packet(t + 900_000, "checkout", "payments", port, 8080, ("PSH", "ACK"), True)  # ServerHello..
            rec.packet(t + 1_300_000, "checkout", "payments", port, 8080, ("PSH", "ACK"), False)  # finished
            # the RBAC filter refuses the principal: the sidecar resets (or, in one try of three, closes)
            flags = ("FIN", "ACK") if port % 3 == 0 else ("RST",)
            rec.packet(t + 2_100_000 + retry * 400_000, "checkout", "payments", port, 8080, flags, True)
            if flags[0] == "FIN":
                rec.packet(t + 2_500_000 + retry * 400_000, "checkout", "payments", port, 8080, ("FIN", "ACK"), False)
    # frontend -> payments: admitted; short request/response connections that payments closes within ms,
    # and one long connection
    port = 43000
    for i in range(8):
        t = T0 + (5 + i * 40) * S
        port += 3
        t = rec.handshake(t, "frontend", "payments", port, 8080)
        rec.packet(t + 100_000, "frontend", "payments", port, 8080, ("PSH", "ACK"), False)
        rec.packet(t + 800_000, "frontend", "payments", port, 8080, ("PSH", "ACK"), True)
        rec.packet(t + 1_200_000, "frontend", "payments", port, 8080, ("PSH", "ACK"), False)
        rec.packet(t + 4_000_000, "frontend", "payments", port, 8080, ("PSH", "ACK"), True)
        rec.packet(t + 6_000_000, "frontend", "payments", port, 8080, ("FIN", "ACK"), True)
        rec.packet(t + 6_300_000, "frontend", "payments", port, 8080, ("FIN", "ACK"), False)
    t = rec.handshake(T0 + 2 * S, "frontend", "payments", 43999, 8080)
    for k in range(1, 6):
        rec.packet(t + k * 10 * S, "frontend", "payments", 43999, 8080, ("PSH", "ACK"), False)
        rec.packet(t + k * 10 * S + 3 * MS, "frontend", "payments", 43999, 8080, ("PSH", "ACK"), True)
    # legacy/batch -> ledger:5432 (STRICT): its plaintext matches no filter chain; reset at once
    port = 45000
    for i in range(5):
        t = T0 + (3 + i * 60) * S
        port += 11
        t = rec.handshake(t, "batch", "ledger", port, 5432)
        rec.packet(t + 80_000, "batch", "ledger", port, 5432, ("PSH", "ACK"), False)  # the startup message
        rec.packet(t + 500_000, "batch", "ledger", port, 5432, ("RST",), True)
    # search -> catalog:9080: HTTP, every request 403; the connection stays open (keep-alive)
    t = rec.handshake(T0 + 1 * S, "search", "catalog", 46001, 9080)
    for i in range(6):
        rec.http(t + (1 + i * 30) * S, "search", "catalog", 46001, 9080, "GET", f"/items?page={i}", 403, 600_000)
    # reviewer -> catalog:9080: items are fine, /admin is refused by the DENY
    t = rec.handshake(T0 + 4 * S, "reviewer", "catalog", 46101, 9080)
    for i in range(4):
        rec.http(t + (1 + i * 45) * S, "reviewer", "catalog", 46101, 9080, "GET", "/items", 200, 2_500_000)
        rec.http(t + (2 + i * 45) * S, "reviewer", "catalog", 46101, 9080, "GET", "/admin/stats", 403, 500_000)
    # frontend -> catalog: admitted GETs
    t = rec.handshake(T0 + 6 * S, "frontend", "catalog", 46201, 9080)
    for i in range(3):
        rec.http(t + (1 + i * 50) * S, "frontend", "catalog", 46201, 9080, "GET", "/items", 200, 1_800_000)
    # checkout -> audit:9090: only SYNs made it into the recording (a source-node capture)
    port = 47000
    for start_s in (1, 11, 31):
        port += 5
        rec.packet(T0 + start_s * S, "checkout", "audit", port, 9090, ("SYN",), False, both_nodes=False)
    # legacy/batch -> legacy/web:8000: the app resets right after setup; no mesh involved
    port = 48000
    for i in range(4):
        t = T0 + (7 + i * 20) * S
        port += 13
        t = rec.handshake(t, "batch", "web", port, 8000)
        rec.packet(t + 300_000, "batch", "web", port, 8000, ("RST",), True)
    return rec.jsonl()


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "mesh")
    os.makedirs(out, exist_ok=True)
    files = {"cluster.yaml": yaml.safe_dump_all(cluster_objects(), sort_keys=False),
             "incident.jsonl": recording()}
    for name, text in files.items():
        path = os.path.join(out, name)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
