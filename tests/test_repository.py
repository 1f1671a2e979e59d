"""The repository reads well on its own: a short README, documentation links that
resolve, and no references to documents or trackers that live outside it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 260
VENDORED = "inventory/static/vendor/"

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)

# Written so that this file does not match them itself.
OUTSIDE_REFERENCES = {
    "a path outside the repository": re.compile(r"\.\./shared"),
    "a specification document": re.compile(r"\bS[P]EC\b"),
    "an issue number": re.compile(r"\bissues?\s*#?\d+", re.I),
    "a tracker's issue": re.compile(r"\bthe\s+issue\b|/issues/\d", re.I),
}


def _prose(markdown: str) -> str:
    """The text a reader follows links in: code blocks and code spans left out."""
    return _INLINE_CODE.sub("", _FENCE.sub("", markdown))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links in ``path`` whose file (or heading anchor) does not exist in ``root``."""
    broken = []
    for target in _LINK.findall(_prose(path.read_text())):
        if _EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
        elif not linked.is_relative_to(root):
            broken.append(f"{target} (outside the repository)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no such heading)")
    return broken


def tracked_text_files(git: str) -> list[Path]:
    """Every text file git tracks, vendored assets aside."""
    listed = subprocess.run(  # noqa: S603 - git, found on PATH by the caller
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if name.startswith(VENDORED) or not path.is_file():
            continue
        content = path.read_bytes()
        if b"\0" in content:
            continue  # binary
        files.append(path)
    return files


def outside_references(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in OUTSIDE_REFERENCES.items():
            if match := pattern.search(line):
                relative = path.relative_to(ROOT)
                found.append(f"{relative}:{number}: {what} ({match.group(0)!r})")
    return found


def test_readme_is_a_front_door():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    for command in ("make run", "make test"):
        assert command in README.read_text()


def test_readme_links_only_to_files_that_exist():
    assert broken_links(README) == []


def test_readme_links_every_documentation_page():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in _LINK.findall(_prose(README.read_text()))
        if not _EXTERNAL.match(target)
    }
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages, "docs/ has no pages"
    assert pages - linked == set()


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_documentation_links_resolve(page):
    assert broken_links(DOCS / page) == []


def test_documentation_contents_lists_every_page():
    contents = DOCS / "README.md"
    linked = {target.partition("#")[0] for target in _LINK.findall(_prose(contents.read_text()))}
    pages = {page.name for page in DOCS.glob("*.md")} - {"README.md"}
    assert pages - linked == set()


def test_broken_links_are_found(tmp_path):
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) [web](https://example.com)\n"
        "[gone](missing.md) [no anchor](there.md#nothing) `[code](ignored.md)`\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "missing.md",
        "there.md#nothing (no such heading)",
    ]
    assert broken_links(page, root=tmp_path / "elsewhere") == [
        "there.md (outside the repository)",
        "there.md#a-heading (outside the repository)",
        "missing.md",
        "there.md#nothing (outside the repository)",
    ]


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("see " + "../" + "shared/notes.md", True),
        ("as the " + "SP" + "EC says", True),
        ("details in " + "issue" + " 10", True),
        ("fixed by " + "issue" + " #12", True),
        ("what " + "the " + "issue asks", True),
        ("INTROSPECT = '{ __schema { queryType { name } } }'", False),
        ("P = ParamSpec('P'); an openapi spec; this raises an issue with it", False),
    ],
)
def test_outside_references_are_recognised(line, found):
    assert any(pattern.search(line) for pattern in OUTSIDE_REFERENCES.values()) is found


def test_nothing_refers_to_documents_outside_the_repository():
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    found = [hit for path in tracked_text_files(git) for hit in outside_references(path)]
    assert found == []
