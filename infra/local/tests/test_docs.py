"""The README orients and `docs/` holds the depth: every relative link in `README.md` and `docs/` resolves (the file
exists and, for a Markdown page, the `#anchor` is one of its headings as GitHub names them), the README stays
short, and each `docs/` page first says who it is for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks."""
    kept, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(page.read_text()).splitlines():
        heading = re.match(r"^#{1,6} (.*)", line)
        if heading:
            name, n = slug(heading.group(1)), 1
            unique = name
            while unique in found:
                unique, n = f"{name}-{n}", n + 1
            found.add(unique)
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not target.startswith(("http://", "https://", "mailto:"))]


def test_the_docs_exist_and_the_readme_links_each_page():
    assert len(PAGES) > 10
    linked = {(REPO_ROOT / target.partition("#")[0]).resolve() for target in relative_links(REPO_ROOT / "README.md")}
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README.md does not link {page.relative_to(REPO_ROOT)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: {file.relative_to(REPO_ROOT)} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(REPO_ROOT)}: " + "; ".join(broken)


def test_the_link_check_catches_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## A section\n\n[ok](#a-section) [gone](#nowhere) [file](other.md)\n")
    targets = relative_links(page)
    assert targets == ["#a-section", "#nowhere", "other.md"]
    assert anchors(page) == {"title", "a-section"}
    assert slug("`GET /api/resman/tours?conversation_id=...`") == "get-apiresmantoursconversation_id"


def test_the_readme_orients_in_a_screen_or_two():
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; depth belongs in docs/"


@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_each_docs_page_says_first_who_it_is_for(page):
    blocks = [b.strip() for b in page.read_text().split("\n\n") if b.strip()]
    assert blocks[0].startswith("# "), f"{page.name} starts without a title"
    assert blocks[1].startswith("For "), f"{page.name}: the paragraph after the title should say who it is for"
