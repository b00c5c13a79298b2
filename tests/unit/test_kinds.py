"""One table of Kubernetes kinds (cluster/model.py KUBE_KINDS): the API reader and the kubectl commands of the
fixes agree with it."""

from __future__ import annotations

from hubbletui.cluster.kinds_api import RESOURCES
from hubbletui.cluster.model import KINDS, KUBE_KINDS
from hubbletui.suggest.model import ObjectRef, Patch


def test_the_api_reader_reads_the_kinds_of_the_table():
    assert list(RESOURCES) == list(KUBE_KINDS)
    assert RESOURCES["CiliumNetworkPolicy"].group_version("v2") == "cilium.io/v2"
    assert RESOURCES["Pod"].group_version("v1") == "v1"
    assert RESOURCES["EndpointSlice"].plural == "endpointslices"
    assert KINDS == {k.name: (k.group, k.namespaced) for k in KUBE_KINDS.values()}


def test_kubectl_names_core_kinds_by_name_and_the_others_in_full():
    ns = Patch(ObjectRef("Namespace", "", "shop"), "strategic", {"metadata": {"labels": {"a": "b"}}})
    assert ns.command().startswith("kubectl patch namespace shop --type=strategic")
    cnp = Patch(ObjectRef("CiliumNetworkPolicy", "shop", "p"), "json", [])
    assert cnp.command() == "kubectl patch ciliumnetworkpolicies.cilium.io p -n shop --type=json -p '[]'"
