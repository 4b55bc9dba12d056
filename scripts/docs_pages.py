"""The pages a user reads: README.md, then the guides of docs/ in the order of the README's
"Guides" table. readme_commands.py runs their commands and readme_figures.py writes their
figures; a guide that the table does not list is an error (it would be checked by nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md, README first, the guides in the Guides table's order."""
    readme = root / "README.md"
    listed = re.findall(r"^\| \[docs/([\w-]+\.md)\]", readme.read_text(), re.M)
    present = sorted(p.name for p in (root / "docs").glob("*.md"))
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise SystemExit(f"error: README.md's Guides table does not list docs/{unlisted[0]}")
    return [readme, *(root / "docs" / name for name in listed)]
