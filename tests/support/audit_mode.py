"""The audit-mode twin of an enforcing recording: what Hubble would have shown with `policy-audit-mode` on.

Audit mode lets a packet policy would drop through, and says so with a policy-verdict event (event type 5) of
verdict AUDIT: no drop reason (the datapath's verdict was "pass"), no drop-only fields (`file`), no matched rule
(`policy_match_type` none), the direction and the *_denied_by lists kept. The packet then goes on, so the
trace event of its delivery follows (FORWARDED, to-endpoint). Drops for other reasons stay drops: audit mode
changes only what policy decides.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

POLICY_REASONS = ("POLICY_DENIED", "POLICY_DENY")
_DROP_ONLY = ("drop_reason", "drop_reason_desc", "file", "policy_match_type")


def audit_twin_lines(lines: list[str], forwarded_twins: bool = True) -> list[str]:
    out = []
    for line in lines:
        doc = json.loads(line) if line.strip() else None
        flow = doc.get("flow") if isinstance(doc, dict) else None
        if flow is None or flow.get("verdict") != "DROPPED" or flow.get("drop_reason_desc") not in POLICY_REASONS:
            out.append(line.rstrip("\n"))
            continue
        audited = copy.deepcopy(doc)
        f = audited["flow"]
        for name in _DROP_ONLY:
            f.pop(name, None)
        f["verdict"] = "AUDIT"
        f["event_type"] = {"type": 5}
        out.append(json.dumps(audited, separators=(",", ":")))
        if forwarded_twins:
            delivered = copy.deepcopy(audited)
            d = delivered["flow"]
            d["verdict"] = "FORWARDED"
            d["event_type"] = {"type": 4, "sub_type": 0}
            d["trace_observation_point"] = "TO_ENDPOINT"
            for name in ("egress_denied_by", "ingress_denied_by"):
                d.pop(name, None)
            out.append(json.dumps(delivered, separators=(",", ":")))
    return out


def write_audit_twin(enforcing: Path, target: Path, forwarded_twins: bool = True) -> Path:
    lines = enforcing.read_text(encoding="utf-8").splitlines()
    target.write_text("\n".join(audit_twin_lines(lines, forwarded_twins)) + "\n", encoding="utf-8")
    return target
