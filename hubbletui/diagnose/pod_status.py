"""A pod's condition in a line, from the Pod object's status as the API server reports it (headless)."""

from __future__ import annotations

from dataclasses import dataclass

from hubbletui.cluster.model import ClusterState
from hubbletui.cluster.timeline import StateView, Timeline

# waiting/terminated reasons that mean the pod is in trouble
TROUBLE = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                     "CreateContainerError", "RunContainerError", "InvalidImageName", "OOMKilled", "Error",
                     "ContainerStatusUnknown"})


@dataclass(frozen=True)
class PodStatus:
    text: str  # "CrashLoopBackOff", "Running", "Pending"
    restarts: int
    trouble: bool

    def __str__(self) -> str:
        return f"{self.text} {self.restarts} restarts" if self.restarts else self.text


def pod_status(cluster: ClusterState | StateView | None, namespace: str, pod: str) -> PodStatus | None:
    """None when there is no cluster or the pod is not in it (gone, or never listed)."""
    if cluster is None:
        return None
    obj = cluster.get("Pod", namespace, pod)
    if obj is None:
        return None
    status = obj.get("status") or {}
    containers = [c for c in (status.get("containerStatuses") or []) if isinstance(c, dict)]
    restarts = sum(int(c.get("restartCount") or 0) for c in containers)
    reason = ""
    for container in containers:
        state = container.get("state") or {}
        for phase in ("waiting", "terminated"):
            why = (state.get(phase) or {}).get("reason") if isinstance(state.get(phase), dict) else None
            if why and (not reason or why in TROUBLE):
                reason = str(why)
        if reason in TROUBLE:
            break
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    text = reason or str(status.get("phase") or "Unknown")
    return PodStatus(text, restarts, text in TROUBLE)


def deleted_at(timeline: Timeline, namespace: str, pod: str, now_ns: int) -> int | None:
    """When the cluster's history saw the pod deleted, by `now_ns` (ns), if it did."""
    now = now_ns / 1e9
    times = [e.time for e in timeline.entries() if e.kind == "Pod" and e.key == (namespace, pod)
             and e.new is None and e.time <= now]
    return int(times[-1] * 1e9) if times else None
