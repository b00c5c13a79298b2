"""Ranking: fewest newly allowed pairs, then the smallest change, then label changes before rule patches,
Istio fixes and new policies; the number of newly allowed ports and the stable id settle the rest."""

from __future__ import annotations

from hubbletui.suggest.model import KIND_ORDER, Suggestion


def rank_key(s: Suggestion) -> tuple:
    return s.blast.count, s.size, KIND_ORDER[s.kind], s.blast.port_count, s.id


def ranked(suggestions: list[Suggestion]) -> list[Suggestion]:
    """Best first, duplicates (the same changes reached two ways) dropped, ``rank`` set from 1."""
    out: list[Suggestion] = []
    seen: set[str] = set()
    for s in sorted(suggestions, key=rank_key):
        if s.id in seen:
            continue
        seen.add(s.id)
        s = Suggestion(s.changes, s.fixes, s.blast, s.notes, s.checked, len(out) + 1)
        out.append(s)
    return out
