"""The documentation holds together: a short README, links that lead somewhere, no orphan docs.

Plain text processing, no TensorFlow: README.md has at most 300 lines; every relative link and
image in README.md and docs/*.md points at a file that exists and, with a #fragment into a
Markdown file, at a heading of it (GitHub's anchor rules); every docs/*.md is linked from the
README. Links inside code (fenced blocks, `inline code`) are not links and are left alone.
"""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 300

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target); the text may hold one level of brackets (an image in a link)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+\"[^\"]*\"|\s+'[^']*')?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
        elif fence is None:
            lines.append(line)
    return lines


def link_targets(text: str) -> list[str]:
    targets = []
    for line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        targets += [m.group(1) for m in LINK.finditer(line)]
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in targets]


def is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith("//")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lowercased, punctuation dropped,
    spaces turned into hyphens (github-slugger's rules)."""
    text = INLINE_CODE.sub(lambda m: m.group(2).strip(), heading)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # images: their alt text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w)|~~)", "", text)  # emphasis markers
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #fragment that leads into the Markdown file `path` on GitHub."""
    found, seen = set(), {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(m.group(1) for m in HTML_ANCHOR.finditer(line))
        heading = HEADING.match(line)
        if not heading:
            continue
        slug = github_slug(heading.group(2) or "")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if not is_relative(target):
            continue
        path_part, _, fragment = target.partition("#")
        path_part = unquote(path_part.split("?", 1)[0])
        if not path_part:
            destination = page
        elif path_part.startswith("/"):  # GitHub reads /x as the repository's root
            destination = (ROOT / path_part.lstrip("/")).resolve()
        else:
            destination = (page.parent / path_part).resolve()
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and unquote(fragment).lower() not in anchors(destination):
            broken.append(f"{target}: no heading with that anchor in {shown(destination)}")
    return broken


def test_the_readme_has_at_most_300_lines():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_an_existing_file_and_heading(page):
    assert broken_links(page) == []


def test_every_doc_is_linked_from_the_readme():
    linked = set()
    for target in link_targets(README.read_text(encoding="utf-8")):
        if is_relative(target):
            path_part = unquote(target.partition("#")[0])
            if path_part:
                linked.add((ROOT / path_part).resolve())
    assert DOCS, "no docs/*.md found"
    assert [str(d.relative_to(ROOT)) for d in DOCS if d.resolve() not in linked] == []


def test_the_anchor_rules_are_githubs():
    assert github_slug("Resuming, and what a run survives") == "resuming-and-what-a-run-survives"
    assert github_slug("Determinism (`--deterministic-ops`)") == "determinism---deterministic-ops"
    assert github_slug("On the device: `colorize_tflite.py`") == "on-the-device-colorize_tflitepy"
    assert github_slug("Checked against the report's code") == "checked-against-the-reports-code"
    assert github_slug("The pretrained variant (report VI.C)") == "the-pretrained-variant-report-vic"
    assert github_slug("**Bold** and [a link](x.md)") == "bold-and-a-link"
    assert github_slug("snake_case name") == "snake_case-name"


def test_links_in_code_are_not_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n`[not](missing.md)`\n\n```\n[nor](missing.md)\n```\n\n[yes](#title)\n[no](#nope)\n",
                    encoding="utf-8")
    assert link_targets(page.read_text(encoding="utf-8")) == ["#title", "#nope"]
    assert broken_links(page) == [f"#nope: no heading with that anchor in {page}"]
