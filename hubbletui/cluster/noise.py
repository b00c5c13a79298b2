"""Dropping what the API server adds to objects that no policy decision or view depends on.

Live state and snapshots hold the same tidied objects, so a snapshot reloads to what live mode saw.
"""

from __future__ import annotations

# Pod status fields that are kept: phase and container states for CrashLoopBackOff and restart counts,
# IPs so that flows and `trace` can name a pod by address.
POD_STATUS_KEPT = ("phase", "podIP", "podIPs", "hostIP", "hostIPs", "containerStatuses", "initContainerStatuses")
METADATA_DROPPED = ("managedFields", "resourceVersion", "generation", "selfLink")
ANNOTATIONS_DROPPED = ("kubectl.kubernetes.io/last-applied-configuration",
                       "deployment.kubernetes.io/revision")


def drop_noise(obj: dict) -> dict:
    """A copy of ``obj`` without bookkeeping fields; the input is left as it was."""
    tidy = {key: value for key, value in obj.items() if key != "status"}
    status = obj.get("status")
    if obj.get("kind") == "Pod" and isinstance(status, dict):
        tidy["status"] = {key: status[key] for key in POD_STATUS_KEPT if key in status}
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta = {key: value for key, value in meta.items() if key not in METADATA_DROPPED}
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations = {k: v for k, v in annotations.items() if k not in ANNOTATIONS_DROPPED}
            if annotations:
                meta["annotations"] = annotations
            else:
                del meta["annotations"]
        tidy["metadata"] = meta
    return tidy
