"""What the flows say the cluster state lacks. Hubble names the policies that allowed or denied a flow (its
*_allowed_by / *_denied_by lists), and a policy drop needs a policy (or `enable-policy=always`) to happen. When a
named policy is not in the state, or policy drops arrive while the state holds no policy Cilium enforces, the
state read is not the one the flows were judged by: every answer built on it is incomplete, not confident."""

from __future__ import annotations

from collections import Counter

from hubbletui.diagnose import drop_reasons
from hubbletui.flows.model import Flow
from hubbletui.policy.engine import PolicyEngine

# the kinds Hubble's Policy.kind names (Cilium's derived-from label) that a snapshot can hold
CILIUM_ENFORCED = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")


class ImpliedGaps:
    """Fed every flow of a run; says afterwards what the flows imply the cluster state is missing."""

    def __init__(self, engine: PolicyEngine):
        self.engine = engine
        self.missing: Counter[str] = Counter()  # policy ref Hubble names -> flows naming it
        self.policy_drops = 0
        self._known: dict[tuple[str, str, str], bool] = {}

    def observe(self, flow: Flow) -> None:
        for ref in (*flow.egress_allowed_by, *flow.ingress_allowed_by, *flow.egress_denied_by,
                    *flow.ingress_denied_by):
            if ref.kind in CILIUM_ENFORCED and not self._holds(ref.kind, ref.namespace, ref.name):
                self.missing[ref.ref] += 1
        if flow.is_drop and drop_reasons.is_policy(flow.drop_reason):
            self.policy_drops += 1

    def _holds(self, kind: str, namespace: str, name: str) -> bool:
        key = (kind, "" if kind == "CiliumClusterwideNetworkPolicy" else namespace, name)
        if key not in self._known:
            self._known[key] = self.engine.state.get(*key) is not None
        return self._known[key]

    def reasons(self) -> list[str]:
        out = [f"Hubble names {ref} ({n} flow{'s' if n > 1 else ''}), which the cluster state does not hold"
               for ref, n in sorted(self.missing.items())]
        state = self.engine.state
        unread = any(kind in self.engine.incomplete for kind in CILIUM_ENFORCED)  # already said, with its cause
        if self.policy_drops and self.engine.enforcement_mode != "always" and not unread \
                and not any(state.list(kind) for kind in CILIUM_ENFORCED):
            n = self.policy_drops
            out.append(f"Hubble reports {n} policy drop{'s' if n > 1 else ''}, yet the cluster state holds no "
                       "NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy")
        return out
