"""The store behind the TUI: flows policy audit mode passed are drop rows, charged to their pods as audited."""

from __future__ import annotations

from audit_mode import write_audit_twin
from paths import ROOT

DEMO = ROOT / "hubbletui" / "demo"


def test_the_store_charges_audited_flows_as_drops(tmp_path):
    from hubbletui.flows.recording import read_events
    from hubbletui.flows.store import FlowStore

    audit = write_audit_twin(DEMO / "flows.jsonl", tmp_path / "audit.jsonl")
    store = FlowStore()
    store.add_events(list(read_events(str(audit))), now=0.0)
    rows = [r for r in store.rows.values() if r.key.verdict == "AUDIT"]
    assert rows and all(r.is_drop and r.is_audit and r.key.reason in ("POLICY_DENIED", "POLICY_DENY") for r in rows)
    assert sum(p.audited for p in store.pods.values()) == 152
