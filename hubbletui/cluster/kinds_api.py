"""Where each kind of ClusterState lives in the Kubernetes API, and how to ask for it.

Built-in kinds go through the typed client APIs, custom resources through CustomObjectsApi. Every call
asks for the raw response (`_preload_content=False`) so objects stay exactly as the API server wrote them
(camelCase JSON, unknown fields kept) instead of passing through the client's model classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, cast

from kubernetes import client

from hubbletui.cluster.model import KUBE_KINDS


class RawResponse(Protocol):
    """The part of urllib3's HTTPResponse we use."""

    data: bytes

    def __iter__(self) -> Any: ...

    def release_conn(self) -> None: ...


@dataclass(frozen=True)
class Resource:
    kind: str  # a key of KUBE_KINDS, which holds its group and plural
    versions: tuple[str, ...]  # tried in order; the first one served wins
    typed_list: str | None  # "CoreV1Api.list_pod_for_all_namespaces"; None means a custom resource
    consequence: str  # what the user loses when the kind cannot be read ("" when obvious)

    @property
    def group(self) -> str:
        return KUBE_KINDS[self.kind].group

    @property
    def plural(self) -> str:
        return KUBE_KINDS[self.kind].plural

    def group_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def namespaced(self) -> bool:
        return KUBE_KINDS[self.kind].namespaced

    def call(self, api_client: client.ApiClient, version: str, namespace: str | None = None,
             **params: Any) -> RawResponse:
        """One list or watch request, cluster-wide or (``namespace``) in one namespace; ``params`` are the
        client's own (limit, _continue, watch, ...)."""
        params["_preload_content"] = False
        if self.typed_list is None:
            api = client.CustomObjectsApi(api_client)
            if namespace is not None:
                return cast(RawResponse, api.list_namespaced_custom_object(self.group, version, namespace,
                                                                           self.plural, **params))
            return cast(RawResponse, api.list_cluster_custom_object(self.group, version, self.plural, **params))
        api_class, method = self.typed_list.split(".")
        if namespace is not None:
            # the client names the namespaced list after the cluster-wide one: list_pod_for_all_namespaces
            # -> list_namespaced_pod
            method = "list_namespaced_" + method.removeprefix("list_").removesuffix("_for_all_namespaces")
            params["namespace"] = namespace
        return cast(RawResponse, getattr(getattr(client, api_class)(api_client), method)(**params))


_CORE, _APPS, _BATCH = "CoreV1Api", "AppsV1Api", "BatchV1Api"

RESOURCES: dict[str, Resource] = {r.kind: r for r in (
    Resource("Namespace", ("v1",), f"{_CORE}.list_namespace",
             "namespace selectors will not see namespace labels"),
    Resource("Pod", ("v1",), f"{_CORE}.list_pod_for_all_namespaces",
             "workloads will stand for their pods through pod templates"),
    Resource("ServiceAccount", ("v1",), f"{_CORE}.list_service_account_for_all_namespaces",
             "service-account selectors will not see service-account labels"),
    Resource("Service", ("v1",), f"{_CORE}.list_service_for_all_namespaces", ""),
    Resource("EndpointSlice", ("v1",), "DiscoveryV1Api.list_endpoint_slice_for_all_namespaces",
             "toServices rules naming selector-less Services will admit nothing"),
    Resource("Node", ("v1",), f"{_CORE}.list_node",
             "node addresses will be taken for world, and host policies will not see node labels"),
    Resource("Deployment", ("v1",), f"{_APPS}.list_deployment_for_all_namespaces", ""),
    Resource("StatefulSet", ("v1",), f"{_APPS}.list_stateful_set_for_all_namespaces", ""),
    Resource("DaemonSet", ("v1",), f"{_APPS}.list_daemon_set_for_all_namespaces", ""),
    Resource("ReplicaSet", ("v1",), f"{_APPS}.list_replica_set_for_all_namespaces", ""),
    Resource("ReplicationController", ("v1",), f"{_CORE}.list_replication_controller_for_all_namespaces", ""),
    Resource("Job", ("v1",), f"{_BATCH}.list_job_for_all_namespaces", ""),
    Resource("CronJob", ("v1",), f"{_BATCH}.list_cron_job_for_all_namespaces", ""),
    Resource("NetworkPolicy", ("v1",), "NetworkingV1Api.list_network_policy_for_all_namespaces",
             "Kubernetes NetworkPolicies will not be evaluated"),
    Resource("CiliumNetworkPolicy", ("v2",), None,
             "Cilium policies will not be evaluated"),
    Resource("CiliumClusterwideNetworkPolicy", ("v2",), None,
             "clusterwide Cilium policies will not be evaluated"),
    Resource("CiliumCIDRGroup", ("v2", "v2alpha1"), None,
             "cidrGroupRef / cidrGroupSelector peers will admit nothing"),
    Resource("AuthorizationPolicy", ("v1", "v1beta1"), None,
             "Istio authorization will not be evaluated"),
    Resource("PeerAuthentication", ("v1", "v1beta1"), None,
             "Istio mTLS modes will not be checked"),
)}
