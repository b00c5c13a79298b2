"""Make the recordings of tests/fixtures/scenarios/*/flows.jsonl from each scenario's cluster and the table below.

    python tests/scenario_flows.py      # rewrite them; tests/test_suggest_scenarios.py checks they are current

Lines are jsonpb as `hubble observe -o jsonpb` writes them: a TCP connection is a SYN (egress, not a reply) and
a SYN-ACK (a reply); a policy drop is a SYN dropped with POLICY_DENIED at the side that denied it; a refusal by
an Istio sidecar is SYN, SYN-ACK, then a RST from the destination 2 ms later, all forwarded. Identity labels are
the pods' labels as Cilium's filter keeps them, with the namespace, its labels and the service account.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml

from hubbletui.policy.labels import pod_identity_labels
from paths import FIXTURES

ROOT = FIXTURES / "scenarios"
T0_NS = int(datetime(2026, 5, 4, 9, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
STEP_NS = 250_000_000
NODE = "scenario/worker-1"

# (what, source, destination, port, protocol, count[, direction for drops]); endpoints are ns/pod-name-prefix
FLOWS: dict[str, list[tuple]] = {
    "label-regime": [
        ("forward", "shop/orders", "kube-system/coredns", 53, "UDP", 2),
        ("forward", "shop/orders", "shop/postgres", 5432, "TCP", 3),
        ("forward", "shop/web", "shop/orders", 8080, "TCP", 3),
        ("forward", "shop/billing", "kube-system/coredns", 53, "UDP", 2),
        ("drop", "shop/billing", "shop/postgres", 5432, "TCP", 6, "EGRESS"),
    ],
    "team-namespaces": [
        ("forward", "team-a/frontend", "team-a/batch", 9000, "TCP", 2),
        ("forward", "team-b/api", "team-b/db", 5432, "TCP", 3),
        ("drop", "team-a/frontend", "team-b/api", 8080, "TCP", 5, "INGRESS"),
    ],
    "netpol-only": [
        ("forward", "web/frontend", "web/api", 8080, "TCP", 3),
        ("drop", "web/frontend", "web/api", 8443, "TCP", 8, "INGRESS"),
        ("drop", "web/admin", "web/reports", 8080, "TCP", 4, "INGRESS"),
    ],
    "istio-mesh": [
        ("forward", "bank/teller", "bank/ledger", 7000, "TCP", 3),
        ("refused", "bank/auditor", "bank/ledger", 7000, "TCP", 4),
    ],
}


def load_cluster(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((ROOT / name / "cluster.yaml").read_text()) if d]


class Cluster:
    def __init__(self, objects: list[dict]):
        self.pods = [o for o in objects if o["kind"] == "Pod"]
        self.namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}

    def pod(self, ref: str) -> dict:
        ns, prefix = ref.split("/")
        found = [p for p in self.pods if p["metadata"]["namespace"] == ns
                 and (p["metadata"]["name"] == prefix or p["metadata"]["name"].startswith(prefix + "-"))]
        assert len(found) == 1, (ref, [p["metadata"]["name"] for p in found])
        return found[0]

    def endpoint(self, ref: str) -> tuple[dict, str]:
        pod = self.pod(ref)
        meta, spec = pod["metadata"], pod["spec"]
        ns = meta["namespace"]
        ns_labels = (self.namespaces.get(ns, {}).get("metadata") or {}).get("labels") or {}
        labels = pod_identity_labels(ns, meta.get("labels"), ns_labels, spec.get("serviceAccountName"))
        owner = meta["ownerReferences"][0]
        if owner["kind"] == "ReplicaSet":
            workload = {"kind": "Deployment", "name": owner["name"].rsplit("-", 1)[0]}
        else:
            workload = {"kind": owner["kind"], "name": owner["name"]}
        identity = 10000 + sum(map(ord, ",".join(labels.hubble_form()))) % 50000
        return {"identity": identity, "cluster_name": "default", "namespace": ns, "labels": labels.hubble_form(),
                "pod_name": meta["name"], "workloads": [workload]}, pod["status"]["podIP"]


def _time(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def _flow(t: int, src: tuple, dst: tuple, sport: int, dport: int, protocol: str, flags: list[str] | None,
          reply: bool, verdict: str = "FORWARDED", direction: str = "EGRESS") -> dict:
    (src_ep, src_ip), (dst_ep, dst_ip) = src, dst
    l4 = {"source_port": sport, "destination_port": dport}
    if flags is not None:
        l4["flags"] = {f: True for f in flags}
    flow = {"time": _time(t), "verdict": verdict, "IP": {"source": src_ip, "destination": dst_ip, "ipVersion": "IPv4"},
            "l4": {protocol: l4}, "source": src_ep, "destination": dst_ep, "Type": "L3_L4", "node_name": NODE,
            "event_type": {"type": 1 if verdict == "DROPPED" else 4}, "traffic_direction": direction,
            "is_reply": reply}
    if verdict == "DROPPED":
        flow.update({"drop_reason": 133, "drop_reason_desc": "POLICY_DENIED",
                     "event_type": {"type": 1, "sub_type": 133}})
    return {"flow": flow, "node_name": NODE, "time": _time(t)}


def build(name: str) -> bytes:
    cluster = Cluster(load_cluster(name))
    lines: list[dict] = []
    t = T0_NS
    sport = 40000
    for what, src_ref, dst_ref, port, protocol, count, *rest in FLOWS[name]:
        src, dst = cluster.endpoint(src_ref), cluster.endpoint(dst_ref)
        for _ in range(count):
            sport += 7
            tcp = protocol == "TCP"
            if what == "drop":
                lines.append(_flow(t, src, dst, sport, port, protocol, ["SYN"] if tcp else None, False, "DROPPED",
                                   rest[0]))
            else:
                lines.append(_flow(t, src, dst, sport, port, protocol, ["SYN"] if tcp else None, False))
                lines.append(_flow(t + 400_000, dst, src, port, sport, protocol, ["SYN", "ACK"] if tcp else None,
                                   True, direction="INGRESS"))
                if what == "refused":
                    lines.append(_flow(t + 2_400_000, dst, src, port, sport, protocol, ["RST", "ACK"], True,
                                       direction="INGRESS"))
            t += STEP_NS
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)


def main() -> None:
    for name in FLOWS:
        (ROOT / name / "flows.jsonl").write_bytes(build(name))
        print(ROOT / name / "flows.jsonl")


if __name__ == "__main__":
    main()
