"""Which inbound ports an Istio sidecar does not capture: traffic to them never meets mTLS or authorization.

The injection template (istio/istio manifests/charts/istio-control/istio-discovery/files/injection-template.yaml)
runs `istio-iptables -b <includeInboundPorts, default *> -d 15090,15021,<status port>,<excludeInboundPorts>`:
Envoy's Prometheus port 15090, the health port 15021 and the agent's status port (15020 unless
`status.sidecar.istio.io/port`) are never redirected, nor are the ports the pod's annotations exclude. With probe
rewriting on (`sidecar.istio.io/rewriteAppHTTPProbers`, default true) the kubelet's HTTP/TCP/gRPC probes are sent
to the status port instead of the application's port, so a probe from the node never reaches the proxy's rules.
"""

from __future__ import annotations

from collections.abc import Mapping

ALWAYS_EXCLUDED = (15090, 15021)
STATUS_PORT = 15020


def _ports(text: object) -> set[int]:
    return {int(p) for p in str(text or "").replace(" ", "").split(",") if p.isdigit()}


def uncaptured_reason(pod: Mapping | None, named_ports: Mapping, port: int, from_host: bool) -> str:
    """Why the sidecar of ``pod`` (a Pod or a workload's pod template) lets ``port`` through untouched, "" when
    it captures it."""
    pod = pod or {}
    spec = pod.get("spec") or {}
    template = spec.get("template") if isinstance(spec.get("template"), Mapping) else None
    meta = (template or pod).get("metadata") or {}
    spec = (template or pod).get("spec") or {}
    annotations = meta.get("annotations") or {}
    status_port = int(annotations.get("status.sidecar.istio.io/port") or STATUS_PORT) \
        if str(annotations.get("status.sidecar.istio.io/port") or STATUS_PORT).isdigit() else STATUS_PORT
    if port in ALWAYS_EXCLUDED or port == status_port:
        return (f"port {port} is one the sidecar never captures (istio-iptables -d "
                f"{','.join(map(str, (*ALWAYS_EXCLUDED, status_port)))}): no mTLS or AuthorizationPolicy applies")
    if port in _ports(annotations.get("traffic.sidecar.istio.io/excludeInboundPorts")):
        return f"port {port} is excluded by traffic.sidecar.istio.io/excludeInboundPorts: the sidecar does not see it"
    include = annotations.get("traffic.sidecar.istio.io/includeInboundPorts")
    if include is not None and str(include).strip() != "*" and port not in _ports(include):
        return f"port {port} is not in traffic.sidecar.istio.io/includeInboundPorts ({include}): not captured"
    rewrite = str(annotations.get("sidecar.istio.io/rewriteAppHTTPProbers", "true")).lower() != "false"
    if from_host and rewrite and port in _probe_ports(spec, named_ports):
        return (f"port {port} is a probe port: with probe rewriting the kubelet's probe goes to the agent on "
                f"{status_port}, which the sidecar does not capture")
    return ""


def _probe_ports(spec: Mapping, named_ports: Mapping) -> set[int]:
    out: set[int] = set()
    for container in spec.get("containers") or []:
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = (container or {}).get(probe_name) or {}
            for kind in ("httpGet", "tcpSocket", "grpc"):
                target = (probe.get(kind) or {}).get("port")
                if isinstance(target, int):
                    out.add(target)
                elif isinstance(target, str) and target.isdigit():
                    out.add(int(target))
                elif isinstance(target, str):
                    out.update(p for p, _ in named_ports.get(target, ()))
    return out
