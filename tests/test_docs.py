"""The documentation stays a reference: README short and starting with the two set-up commands CI runs, every
relative link (and its #anchor) resolving, and no temporary machine paths or work-process names in the docs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 260

_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)


def _prose(text: str) -> str:
    """The text outside fenced code blocks."""
    return _FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for match in _HEADING.finditer(_prose(path.read_text(encoding="utf-8"))):
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _code_blocks(text: str) -> list[str]:
    return [block.split("\n", 1)[1].rsplit("```", 1)[0].strip() for block in _FENCE.findall(text)]


def test_readme_is_short_and_starts_with_the_two_set_up_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_README_LINES, f"README.md has {len(text.splitlines())} lines; move details to docs/"
    blocks = _code_blocks(text)
    assert blocks[0].startswith("pip install . && python examples/make_digits_folder.py digits-train && repcurate build")
    assert blocks[1].endswith('pip install ".[keras,export,nncf,ray,detection,test]" && python -m pytest')
    assert text.index(blocks[1]) < text.index("\n## "), "the two set-up commands come before any section"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1] in ci.splitlines(), ".ci/run must run README's test command verbatim"


def test_readme_keeps_the_safety_section_and_the_exit_codes() -> None:
    text = README.read_text(encoding="utf-8")
    assert "\n## Safety\n" in text
    for code in ("0", "1", "2", "3", "4", "5", "130", "143"):
        assert re.search(rf"^\| {code} \|", text, re.M), f"README.md: exit code {code} is not documented"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for match in _LINK.finditer(_prose(path.read_text(encoding="utf-8"))):
        target = match.group(1) or match.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{path.relative_to(ROOT)}: broken links: {broken}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_name_no_temporary_paths_or_work_process(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = [m.group(0) for m in re.finditer(
        r"/tmp/\S*|\bh1\d[a-z]\b|\bsession \d+|\bhelper h\d+|\bwork round \d+|\bround \d+ of the work", text, re.I)]
    assert not found, f"{path.relative_to(ROOT)}: write `--work DIR` / describe the product, not the work: {found}"
