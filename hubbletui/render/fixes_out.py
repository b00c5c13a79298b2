"""Putting fixes where people want them: stdout in one of three forms, or one file per fix plus an index.

Also `hubbletui demo --print-fixes`: the built-in scenario's fixes, headless.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from hubbletui.errors import ExitCode, HubbleTuiError
from hubbletui.files import write_atomic
from hubbletui.render.fixes_json import render_json
from hubbletui.render.fixes_md import render_md
from hubbletui.render.fixes_md import text as md_text
from hubbletui.render.fixes_script import render_script
from hubbletui.render.fixes_yaml import render_one, render_yaml
from hubbletui.untrusted import printable
from hubbletui.diagnose.groups import DropGroup
from hubbletui.suggest.model import GroupFixes

INDEX = "index.md"
_SLUG_BAD = re.compile(r"[^a-z0-9.]+")
SLUG_MAX = 120


def _legacy_key(case: DropGroup) -> tuple:
    """The tuple earlier releases hashed into colliding file names: kept so that names stay stable."""
    return case.src, case.dst, case.port.number, case.protocol, case.reason


def slug(case: DropGroup) -> str:
    """A stable file-name part for a case: the same group gets the same name in every run."""
    raw = f"{case.src}--{case.dst}--{case.port.number}-{case.protocol}--{case.reason}".lower()
    name = "-".join(p for p in _SLUG_BAD.split(raw.replace("/", ".")) if p) or "group"
    if len(name) > SLUG_MAX:
        name = name[:SLUG_MAX - 9].rstrip("-.") + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return name


def render(groups: list[GroupFixes], output: str, fmt: str, other_drops: int = 0) -> bytes:
    if output == "json":
        return render_json(groups, fmt, other_drops)
    if output == "md":
        return render_md(groups, other_drops).encode("utf-8")
    if output == "script":
        return render_script(groups).encode("utf-8")
    return render_yaml(groups).encode("utf-8")


def write_out_dir(groups: list[GroupFixes], out_dir: str | Path) -> list[Path]:
    """One YAML file per fix (named after its group, rank and kind), then an index; each written atomically."""
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HubbleTuiError(f"cannot create {folder}: {exc.strerror or exc}") from None
    written: list[Path] = []
    rows = ["# Suggested fixes", "",
            ("One file per fix; apply one fix per group, the first ranked is the best. Patches are comments "
            "carrying their `kubectl patch` command."), "",
            "| file | fixes | rank | kind | blast radius |", "|---|---|---|---|---|"]
    used: set[str] = set()
    for group in groups:
        base = slug(group.case)
        if base in used:  # two groups whose names differ only where a file name cannot
            base += "-" + hashlib.sha256(repr(_legacy_key(group.case)).encode()).hexdigest()[:8]
        used.add(base)
        for s in group.suggestions:
            name = f"{base}.{s.rank}-{s.kind}.yaml"
            written.append(write_atomic(folder / name, render_one(group, s)))
            rows.append(f"| [{md_text(name)}]({name}) | {md_text(group.case.fixes_text)} | {s.rank} | {s.kind} | "
                        f"{md_text(s.blast.text(limit=3))} |")
        for reason in group.not_offered if not group.suggestions else ():
            rows.append(f"| - | {md_text(group.case.fixes_text)} | - | none | {md_text(reason)} |")
    written.append(write_atomic(folder / INDEX, "\n".join(rows) + "\n"))
    return written


def say_unfixed(groups: list[GroupFixes], other_drops: int) -> None:
    """Talk for stderr: the groups without a fix, and why."""
    for group in groups:
        if group.suggestions:
            continue
        why = group.not_offered[0] if group.not_offered else "no candidate found"
        print(f"hubbletui: no fix for {printable(group.case.fixes_text)}: {printable(why)}", file=sys.stderr)
    if other_drops:
        print(f"hubbletui: {other_drops} drop(s) had reasons no policy change fixes (see `hubbletui explain`)",
              file=sys.stderr)


def say_not_applyable(groups: list[GroupFixes]) -> None:
    """Talk for stderr with `-o yaml`: a best fix that patches an existing object (a label change, a rule added
    to a policy) is not an object `kubectl apply -f -` can take, so its YAML carries it only as a comment; say so,
    with the command and the forms that apply it."""
    for group in groups:
        if not group.suggestions or not group.suggestions[0].patches:
            continue
        best = group.suggestions[0]
        print(f"hubbletui: the fix for {printable(group.case.fixes_text)} is a patch ({best.kind}), not applied by "
              f"`kubectl apply -f -`; run it, or use `-o script` or `--out-dir DIR`:", file=sys.stderr)
        for patch in best.patches:
            print(f"  {printable(patch.command())}", file=sys.stderr)


def print_fixes(recording, cluster, cluster_name: str = "default") -> int:
    """`hubbletui demo --print-fixes`: the best fix of every group of the scenario, as YAML on stdout."""
    from hubbletui.cluster.snapshot import load_snapshot
    from hubbletui.flows.recording import read_events
    from hubbletui.policy.engine import PolicyEngine
    from hubbletui.suggest.fixes import suggest_groups

    engine = PolicyEngine(load_snapshot(cluster), cluster_name=cluster_name)
    groups, other = suggest_groups(engine, read_events(str(recording)), top=1)
    say_unfixed(groups, other)
    sys.stdout.write(render_yaml(groups))
    sys.stdout.flush()
    return ExitCode.OK if any(g.suggestions for g in groups) else ExitCode.NOTHING_TO_FIX
