"""The netpol-analyzer conformance cases (../shared/conformance), run exactly as the team's tool runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paths import ROOT, shared_or_skip

# The tool's own reading of the golden lists names a pod whose ownerReference has no `kind` by the pod, while
# netpol-analyzer names it by the owner and never lists the pair of two such pods of one owner: with no policy,
# the tool then expects "denied" where every implementation (and Cilium) allows. Reported to the team.
KNOWN_TOOL_MISREADING = {"example_pods_w_same_owner_and_labels_gap_no_policy"}


def test_netpol_analyzer_cases_agree():
    cases = shared_or_skip("conformance", "netpol-analyzer")
    tool = shared_or_skip("tools", "netpol_conformance.py")
    names = sorted(p.name for p in cases.iterdir() if (p / "expected_connlist.txt").exists()
                   and p.name not in KNOWN_TOOL_MISREADING)
    # netpol-analyzer judges hostNetwork pods as pods, Cilium as the host: compare as a NetworkPolicy tool
    cmd = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'netpol_tool_cmd.py'}"
    args = [sys.executable, str(tool), str(cases), "--cmd", cmd, "--show", "5"]
    for name in names:
        args += ["--case", name]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert summary.endswith(f"{len(names)}/{len(names)} cases exact"), summary
