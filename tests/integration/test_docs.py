"""Every ```python block in README.md and docs/ is a complete program, and it must run.

Each block runs as ``__main__`` in its own Python subprocess, so blocks cannot leak state into
each other. Fragments that are not complete programs are fenced with another info string
(```python fragment), and this module skips them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import actorkit
import actorkit.testing
import actorkit_durable

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = "python"
"""The info string of a runnable block; anything else (``python fragment``) is skipped."""
KNOWN_INFO = {RUNNABLE, "python fragment", "pycon", "bash", "console", "text", "toml", ""}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")
TIMEOUT = 60.0


class Block:
    def __init__(self, path: Path, line: int, info: str, code: str) -> None:
        self.path = path
        self.line = line
        """1-based line number of the opening fence."""
        self.info = info
        self.code = code

    @property
    def location(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def test_id(self) -> str:
        """``tutorial.md:120`` for docs/tutorial.md, ``README.md:30`` for the README."""
        base = ROOT / "docs" if self.path.is_relative_to(ROOT / "docs") else ROOT
        return f"{self.path.relative_to(base).as_posix()}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced code block in ``path``, with its info string and its opening line."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    opening: tuple[int, str, str, str] | None = None  # line index, indent, fence, info
    body: list[str] = []
    for index, text in enumerate(lines):
        match = FENCE.match(text)
        if opening is None:
            if match:
                opening = (index, match["indent"], match["fence"], match["info"].strip())
                body = []
        elif match and match["fence"].startswith(opening[2]) and not match["info"].strip():
            start, indent, _, info = opening
            code = "\n".join(line.removeprefix(indent) for line in body) + "\n"
            blocks.append(Block(path, start + 1, info, code))
            opening = None
        else:
            body.append(text)
    if opening is not None:
        raise AssertionError(f"{path.relative_to(ROOT)}:{opening[0] + 1}: unclosed code fence")
    return blocks


ALL_BLOCKS = [block for path in DOCUMENTS for block in fenced_blocks(path)]
RUNNABLE_BLOCKS = [block for block in ALL_BLOCKS if block.info == RUNNABLE]


@pytest.mark.parametrize("block", RUNNABLE_BLOCKS, ids=[b.test_id for b in RUNNABLE_BLOCKS])
def test_block_runs(block: Block, tmp_path: Path) -> None:
    # Blank lines in front keep the traceback's line numbers equal to the document's.
    script = tmp_path / (block.path.name + ".py")
    script.write_text("\n" * block.line + block.code, encoding="utf-8")
    try:
        result = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the code block at {block.location} ran for more than {TIMEOUT:g} s")
    if result.returncode != 0:
        pytest.fail(
            f"the code block at {block.location} exited with {result.returncode} "
            f"(traceback line numbers are lines of {block.path.name}):\n{result.stderr}",
            pytrace=False,
        )


def test_every_document_has_runnable_blocks() -> None:
    """Guards against a parser change that silently finds nothing to run."""
    for name in ("README.md", "docs/tutorial.md", "docs/testing.md", "docs/reference.md"):
        assert any(b.path == ROOT / name for b in RUNNABLE_BLOCKS), f"no runnable block in {name}"


def test_code_fences_are_marked() -> None:
    """A block meant to run must say ``python``; a typo such as ``py`` would skip it."""
    unknown = [f"{b.location}: {b.info!r}" for b in ALL_BLOCKS if b.info not in KNOWN_INFO]
    assert not unknown, "unknown code fence info strings:\n" + "\n".join(unknown)


NOT_YET_DOCUMENTED: set[str] = set()
"""Public names docs/reference.md may leave out while they are in progress (none now)."""


def public_names(module: ModuleType) -> list[str]:
    return [
        name
        for name in dir(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), ModuleType)
    ]


@pytest.mark.parametrize(
    "module", [actorkit, actorkit.testing, actorkit_durable], ids=lambda m: m.__name__
)
def test_reference_covers_every_public_name(module: ModuleType) -> None:
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    missing = [
        name
        for name in public_names(module)
        if name not in NOT_YET_DOCUMENTED
        and not re.search(rf"`(ak\.|actorkit\.testing\.|dur\.)?{name}\b", reference)
    ]
    assert not missing, f"docs/reference.md does not document {module.__name__}: {missing}"


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file, as GitHub generates them."""
    slugs = set()
    in_code = False
    for text in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(text):
            in_code = not in_code
        elif not in_code and text.startswith("#"):
            title = text.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(document: Path) -> None:
    broken = []
    for match in LINK.finditer(document.read_text(encoding="utf-8")):
        target = match["target"]
        if re.match(r"[a-z]+:", target):
            continue  # an external address
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert not broken, f"{document.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)
