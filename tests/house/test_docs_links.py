"""The documentation stands on its own: every relative link resolves inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.paths import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")
OUTSIDE = re.compile(r"(?<![\w.])\.\./[\w./-]+|/work/[\w./-]+")


def _docs() -> list[Path]:
    return [ROOT / "README.md", ROOT / "rules" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves_inside_the_repository() -> None:
    broken = []
    for doc in _docs():
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor of the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_no_document_points_at_a_path_outside_the_repository_or_missing() -> None:
    found = [
        f"{doc.relative_to(ROOT)}: {m}"
        for doc in _docs()
        for m in OUTSIDE.findall(doc.read_text())
        if not (doc.parent / m).resolve().is_relative_to(ROOT)
        or not (doc.parent / m).resolve().exists()
    ]
    assert not found, found
