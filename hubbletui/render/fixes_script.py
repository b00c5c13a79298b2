"""Fixes as a shell script to review and run: the best fix of every group, each a `kubectl apply` of its new
objects (a quoted here-document of PyYAML output) and/or a `kubectl patch` of an existing object (every word
quoted by shlex). Strict mode so that the first refused command stops the run; `DRY_RUN=server` turns every
command into a server-side dry run. Same input, same bytes.
"""

from __future__ import annotations

import yaml

from hubbletui.render.fixes_yaml import comment
from hubbletui.suggest.model import GroupFixes, Suggestion

PREAMBLE = """#!/usr/bin/env bash
# Suggested fixes from hubbletui: the best checked fix of every group of dropped flows, one block per group.
# Review before running. Try it first without changing anything:
#   DRY_RUN=server bash fixes.sh     (the API server validates every object and patch, stores nothing)
set -euo pipefail
"""
# empty unless DRY_RUN is set; safe under `set -u`, unlike an empty array on bash before 4.4
DRY_FLAG = '${DRY_RUN:+--dry-run="$DRY_RUN"}'


def _heredoc_end(body: str) -> str:
    """A here-document delimiter that no line of the body equals, so that the body cannot end it early."""
    end = "HUBBLETUI_YAML"
    lines = set(body.splitlines())
    while end in lines:
        end += "_"
    return end


def _block(group: GroupFixes, s: Suggestion) -> list[str]:
    lines = ["", comment(f"fixes: {group.case.fixes_text}"),
             comment(f"fix 1 of {len(group.suggestions)} ({s.kind}, checked): {s.summary}"),
             comment(f"blast radius: {s.blast.text(limit=10)}")]
    lines += [comment(f"note: {n}") for n in s.notes]
    for change in s.changes:
        if change.new_object is not None:
            body = yaml.safe_dump(change.new_object, sort_keys=False, default_flow_style=False,
                                  allow_unicode=False, width=100)
            end = _heredoc_end(body)
            lines.append("kubectl apply " + DRY_FLAG + f" -f - <<'{end}'")
            lines.append(body.rstrip("\n"))
            lines.append(end)
        if change.patch is not None:
            # the command is shlex-quoted word by word; the dry-run flag goes in right after `kubectl patch`
            cmd = change.patch.command()
            lines.append(cmd.replace("kubectl patch ", f"kubectl patch {DRY_FLAG} ", 1))
    return lines


def render_script(groups: list[GroupFixes]) -> str:
    out = [PREAMBLE.rstrip("\n")]
    for group in groups:
        if group.suggestions:
            out += _block(group, group.suggestions[0])
    return "\n".join(out) + "\n"
