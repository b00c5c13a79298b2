"""Fixes in machine form (`suggest -o json`): per group its explanation and its checked candidates, each with
kind, target, the YAML of its new objects or its patches, blast radius and `checked: true`."""

from __future__ import annotations

import orjson

from hubbletui.render.fixes_yaml import objects_yaml
from hubbletui.suggest.model import GroupFixes, Suggestion
from hubbletui.untrusted import json_safe


def candidate_dict(s: Suggestion) -> dict:
    patches = [p.to_dict() for p in s.patches]
    return {**s.to_dict(), "yaml": objects_yaml(s) or None, "patch": patches[0] if patches else None,
            "patches": patches}


def fixes_document(groups: list[GroupFixes], fmt: str, other_drops: int = 0) -> dict:
    out_groups = []
    for group in groups:
        data = group.to_dict()
        data["candidates"] = [candidate_dict(s) for s in group.suggestions]
        out_groups.append(data)
    return {"format": fmt, "groups": out_groups,
            "fixes": sum(1 for g in groups if g.suggestions), "other_drops": other_drops}


def render_json(groups: list[GroupFixes], fmt: str, other_drops: int = 0) -> bytes:
    return json_safe(orjson.dumps(fixes_document(groups, fmt, other_drops), option=orjson.OPT_INDENT_2)) + b"\n"
