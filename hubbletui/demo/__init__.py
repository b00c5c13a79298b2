"""The built-in demo scenario: a cluster, its changes and a Hubble recording that tell one story.

database/fdb-exporter crashloops. First its egress to FoundationDB (4500/TCP) is dropped under a label-based
CiliumNetworkPolicy regime (its pods lack `fdb-client: "true"`); once that label is on the pod template, Istio's
AuthorizationPolicy on FoundationDB refuses the exporter's principal (Cilium forwards, the sidecar closes the
connection within milliseconds); and Prometheus in `monitoring` is dropped on ingress to the exporter's metrics
port (9161/TCP). Background traffic (DNS, HTTP between shop services, scrapes, FoundationDB replication, probes)
and a few drops for other reasons surround it.

The folder is an incident bundle (cluster/bundle.py): `cluster/` is the cluster as it was before any fix, and
`changes.jsonl` holds the story's three fixes as the API server would have reported them (the Deployment's new
pod template and the rollout that follows, the AuthorizationPolicy's new principal, the scrape policy's new port),
so each flow is judged by the state at its time and each stage shows as resolved by its fix. All three files are
made by `scripts/make_demo.py`, deterministically; do not edit them by hand.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from hubbletui.errors import HubbleTuiError

RECORDING = "flows.jsonl"
CLUSTER = "cluster"
CLUSTER_NAME = "demo"  # Cilium's cluster.name in the scenario: its flows carry io.cilium.k8s.policy.cluster=demo


def scenario_dir() -> Path:
    """The folder holding the scenario, wherever the package is installed."""
    root = files(__name__)
    if not isinstance(root, Path):
        # a zip import: the files exist only inside the archive, and the readers need real paths
        raise HubbleTuiError("the demo scenario needs hubbletui installed as files, not imported from a zip")
    return root


def recording_path() -> Path:
    """The recording: jsonpb lines, as `hubble observe -o jsonpb` writes them."""
    return scenario_dir() / RECORDING


def cluster_path() -> Path:
    """The cluster snapshot folder: one `kubectl get -A -o yaml` list per kind."""
    return scenario_dir() / CLUSTER
