"""The shared reference beside the checkout (../shared/reference), read by the registry tests."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

# Relative to the checkout, as CI lays it out (shared/ beside the clone), not an absolute path.
REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "published_tables.md"


def hyperparameter_rows(heading: str, n_values: int, section_end: str = "\n### ") -> Dict[str, List[str]]:
    """A hyperparameter table of published_tables.md §11 as {row label: [one cell per column]}."""
    section = REFERENCE.read_text(encoding="utf-8").split(heading, 1)[1].split(section_end, 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == n_values + 1 and cells[0] and not set(cells[0]) <= {"-"}:
            rows[cells[0]] = cells[1:]
    return rows
