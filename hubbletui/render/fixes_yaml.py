"""Fixes as YAML for `kubectl apply -f -`: objects built as data and emitted by PyYAML, each document headed by
comments naming the drops it fixes and its blast radius. A patch to an existing object is a comment carrying
its `kubectl patch` command. Per group, the best fix is live; alternatives follow commented out, so that
applying the stream applies one fix per group. Same input, same bytes.
"""

from __future__ import annotations

import re

import yaml

from hubbletui.untrusted import printable
from hubbletui.suggest.model import GroupFixes, Suggestion

# beyond printable's control characters, YAML also breaks lines at NEL and the Unicode line/paragraph separators
_YAML_BREAKS = re.compile("[\x85\u2028\u2029]")


def comment(text: str) -> str:
    """One comment line; untrusted text cannot end it early."""
    safe = _YAML_BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", printable(text))
    return f"# {safe}".rstrip()


def dump(obj: dict) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=False, width=100)


def objects_yaml(s: Suggestion) -> str:
    """The new objects of a suggestion as a YAML stream ("" when it only patches)."""
    return yaml.safe_dump_all(s.new_objects, sort_keys=False, default_flow_style=False, allow_unicode=False,
                              width=100) if s.new_objects else ""


def header(group: GroupFixes, s: Suggestion, live: bool) -> list[str]:
    total = len(group.suggestions)
    what = "fix" if live else "alternative"
    lines = [comment(f"fixes: {group.case.fixes_text}"),
             comment(f"{what} {s.rank} of {total} ({s.kind}, checked): {s.summary}"),
             comment(f"blast radius: {s.blast.text(limit=10)}")]
    lines += [comment(f"note: {n}") for n in s.notes]
    for patch in s.patches:
        lines.append(comment(f"patch {patch.target.text}:"))
        lines.append(comment(f"  {patch.command()}"))
    return lines


def suggestion_documents(group: GroupFixes, s: Suggestion, live: bool = True) -> list[str]:
    """The documents of one suggestion: header comments, then its objects (commented out when not live)."""
    head = header(group, s, live)
    objects = s.new_objects
    if not objects:
        return ["\n".join(head) + "\n"]
    docs = []
    for i, obj in enumerate(objects):
        lines = head if i == 0 else [comment(f"fixes: {group.case.fixes_text}"),
                                     comment(f"part {i + 1} of {len(objects)} of {'fix' if live else 'alternative'} "
                                             f"{s.rank}; blast radius: {s.blast.text(limit=3)}")]
        body = dump(obj)
        if not live:
            body = "".join(f"#   {line}\n" for line in body.splitlines())
        docs.append("\n".join(lines) + "\n" + body)
    return docs


def render_yaml(groups: list[GroupFixes]) -> str:
    """Every group with fixes: its best fix live, the others commented out."""
    docs: list[str] = []
    for group in groups:
        for s in group.suggestions:
            docs += suggestion_documents(group, s, live=s.rank == 1)
    return "---\n".join(docs)


def render_one(group: GroupFixes, s: Suggestion) -> str:
    """One suggestion on its own, live (a file of `--out-dir`)."""
    return "---\n".join(suggestion_documents(group, s, live=True))
