"""One label-selector engine: Hubble's text form (flow filters) and a Kubernetes LabelSelector (policies) read
into the same requirements, and match the same label sets."""

from __future__ import annotations

from hubbletui.flows.labels import Requirement, Selector, parse_hubble_labels, parse_selector
from hubbletui.policy.selectors import parse_label_selector


def test_text_and_label_selector_forms_are_the_same_selector():
    text = parse_selector("k8s:app=web,tier in (b,a),!legacy,team,env!=dev")
    spec = parse_label_selector({"matchLabels": {"k8s:app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "legacy", "operator": "DoesNotExist"},
        {"key": "team", "operator": "Exists"},
        {"key": "env", "operator": "NotIn", "values": ["dev"]}]})
    assert text == spec == Selector((Requirement("k8s", "app", "In", ("web",)),
                                     Requirement("any", "tier", "In", ("a", "b")),
                                     Requirement("any", "legacy", "DoesNotExist"),
                                     Requirement("any", "team", "Exists"),
                                     Requirement("any", "env", "NotIn", ("dev",))))
    labels = parse_hubble_labels(["k8s:app=web", "k8s:tier=a", "k8s:team=x"])
    assert text.matches(labels) and spec.matches(labels)
    assert not text.matches(parse_hubble_labels(["k8s:app=web", "k8s:tier=a", "k8s:team=x", "k8s:env=dev"]))


def test_a_flow_label_without_a_source_matches_only_a_key_without_one():
    bare = parse_hubble_labels(["app=web"], bare_source="")
    assert parse_selector("app=web").matches(bare)
    assert not parse_selector("k8s:app=web").matches(bare)
    # the policy engine reads such a label as k8s (Cilium's default source)
    assert parse_selector("k8s:app=web").matches(parse_hubble_labels(["app=web"]))
