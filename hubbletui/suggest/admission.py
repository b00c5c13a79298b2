"""The last gate before a fix is shown: would the cluster's own validators accept every object it writes?

Cilium's agent refuses a CiliumNetworkPolicy that fails `cilium_validate` (the policy is then not enforced at
all) and istiod refuses an invalid AuthorizationPolicy (`istio_validate`); a fix that writes one would be
confidently wrong, so it is dropped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from hubbletui.policy.cilium_validate import validate_policy
from hubbletui.policy.istio_validate import validate_authorization_policy
from hubbletui.suggest.model import Change

CILIUM_POLICY_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")


def object_refusal(obj: dict) -> str:
    """Why the cluster would refuse ``obj`` ("" when it would accept it)."""
    kind = obj.get("kind", "")
    if kind in CILIUM_POLICY_KINDS:
        problem = validate_policy(obj)
        return f"Cilium would reject it: {problem}" if problem else ""
    if kind == "AuthorizationPolicy":
        problem = validate_authorization_policy(obj)
        return f"Istio would reject it: {problem}" if problem else ""
    return ""


def refusal(changes: Iterable[Change]) -> str:
    for change in changes:
        for obj in change.after:
            problem = object_refusal(obj)
            if problem:
                return f"{change.summary}: {problem}"
    return ""
