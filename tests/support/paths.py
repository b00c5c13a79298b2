"""Where things are: the repository, its fixtures, and the team's shared reference folder beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SHARED = ROOT.parent / "shared"
SAMPLES = SHARED / "samples" / "flows"


def shared_or_skip(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not here (the team's shared reference folder sits beside the repo in CI)")
    return path
