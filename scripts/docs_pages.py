"""The pages a user reads: README.md, then the guides of docs/ in the order of the README's
"Guides" table, and the commands they show. readme_commands.py runs those commands and
readme_figures.py writes their figures; a guide that the table does not list is an error (it would
be checked by nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPAN = re.compile(r"(python |tensorboard |pytest|pip )")  # an inline span that is a command


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md, README first, the guides in the Guides table's order."""
    readme = root / "README.md"
    listed = re.findall(r"^\| \[docs/([\w-]+\.md)\]", readme.read_text(), re.M)
    present = sorted(p.name for p in (root / "docs").glob("*.md"))
    unlisted = sorted(set(present) - set(listed))
    if unlisted:
        raise SystemExit(f"error: README.md's Guides table does not list docs/{unlisted[0]}")
    return [readme, *(root / "docs" / name for name in listed)]


def markdown() -> str:
    """README.md and the guides of docs/, in reading order, as one text."""
    return "\n\n".join(page.read_text() for page in pages())


def fenced_blocks(markdown: str) -> list[tuple[int, int, str, str]]:
    """(start, end, language, body) of each ``` block."""
    found = re.finditer(r"^```(\w*)\n(.*?)^```", markdown, re.S | re.M)
    return [(m.start(), m.end(), m[1], m[2]) for m in found]


def strip_comment(line: str) -> str:
    """The line without its `# comment` (a # outside quotes, at the start or after a space)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def extract_commands(markdown: str) -> list[str]:
    """The commands of the ```bash blocks (continuations joined, comments dropped) and the
    inline code spans of the prose that start like a command, in order, each once."""
    commands: list[str] = []
    pos = 0
    for start, end, language, body in [*fenced_blocks(markdown), (len(markdown), 0, "", "")]:
        for span in re.findall(r"`([^`\n]+(?:\n[^`\n]+)*)`", markdown[pos:start]):
            span = " ".join(span.split())  # a span may wrap onto the next line
            commands += [span] if SPAN.match(span) else []
        if language == "bash":
            lines = re.sub(r"\s*\\\n\s*", " ", body).splitlines()
            commands += [strip_comment(line) for line in lines]
        pos = end
    return list(dict.fromkeys(c for c in commands if c))


def readme_block(markdown: str, text: str) -> str:
    """The one fenced block that contains `text` (the README's own model and own dataset)."""
    (body,) = [body for _, _, _, body in fenced_blocks(markdown) if text in body]
    return body
