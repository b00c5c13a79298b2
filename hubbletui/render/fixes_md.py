"""Fixes as Markdown, for a pull request or an incident note. Names from the cluster are escaped in prose and
fenced in code blocks whose fence no content can close."""

from __future__ import annotations

import re

from hubbletui.render.fixes_yaml import dump
from hubbletui.render.markdown import md_text as text
from hubbletui.untrusted import printable
from hubbletui.suggest.model import GroupFixes

def fenced(body: str, lang: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    lines = (printable(line) for line in body.rstrip("\n").split("\n"))
    return f"{fence}{lang}\n" + "\n".join(lines) + f"\n{fence}"


def render_md(groups: list[GroupFixes], other_drops: int = 0) -> str:
    lines = ["# Suggested fixes", ""]
    fixed = sum(1 for g in groups if g.suggestions)
    lines.append(f"{len(groups)} group(s) of dropped or refused flows, {fixed} with a checked fix. Each fix was "
                 "applied to a copy of the cluster state: the drops became allowed and every forwarded flow "
                 "stayed allowed. Apply one fix per group (the first is the best).")
    if other_drops:
        lines.append("")
        lines.append(f"{other_drops} drop(s) had reasons no policy change fixes; see `hubbletui explain`.")
    for n, group in enumerate(groups, start=1):
        lines += ["", f"## {n}. {text(group.case.fixes_text)}", "", text(group.explanation)]
        for s in group.suggestions:
            lines += ["", f"### Fix {s.rank} ({s.kind}): {text(s.summary)}", "",
                      f"Blast radius: {text(s.blast.text(limit=10))}."]
            lines += [f"- note: {text(note)}" for note in s.notes]
            for patch in s.patches:
                lines += ["", fenced(patch.command(), "sh")]
            for obj in s.new_objects:
                lines += ["", fenced(dump(obj), "yaml")]
        if group.not_offered:
            lines += ["", "Not offered:"] + [f"- {text(reason)}" for reason in group.not_offered]
    return "\n".join(lines) + "\n"
