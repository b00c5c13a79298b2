"""A suggested fix as the drop detail screen shows, writes, copies and `pick` prints it (headless).

The YAML is the suggest module's own rendering (PyYAML-emitted objects under comments naming the drops they
fix and the blast radius), the same bytes `hubbletui suggest --out-dir` writes for one fix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hubbletui.render.fixes_yaml import render_one
from hubbletui.untrusted import printable
from hubbletui.render.fixes_out import slug

if TYPE_CHECKING:  # annotations only: these are imported where first needed, not at start-up
    from hubbletui.suggest.model import GroupFixes, Suggestion


def fix_yaml(group: GroupFixes, suggestion: Suggestion) -> str:
    return render_one(group, suggestion)


def patch_text(suggestion: Suggestion) -> str:
    """The fix as changes to make: each patch as its `kubectl patch` command and body, each new object named."""
    lines: list[str] = []
    for change in suggestion.changes:
        lines.append(f"# {printable(change.summary)}")
        if change.patch is not None:
            patch = change.patch
            lines.append(f"# {patch.type} patch of {printable(patch.target.text)}:")
            lines.append(patch.command())
            lines.append(json.dumps(patch.body, indent=2, sort_keys=True))
        if change.new_object is not None:
            meta = change.new_object.get("metadata") or {}
            where = f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("namespace") else meta.get("name")
            lines.append(f"# a new {change.new_object.get('kind')} {printable(str(where))}: "
                         "write it with w, then kubectl apply -f FILE")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def default_path(out_dir: Path, group: GroupFixes, suggestion: Suggestion) -> Path:
    return out_dir / f"{slug(group.case)}--{suggestion.kind}-{suggestion.id}.yaml"


def picked_yaml(picked: list[tuple[GroupFixes, Suggestion]]) -> str:
    """What `hubbletui pick` prints: each marked fix, live, as one YAML stream."""
    return "---\n".join(fix_yaml(group, suggestion) for group, suggestion in picked)
