"""The layout the README and docs/architecture.md draw is the tree (issue 19, "Done when").

Both documents carry the same block (the fenced one that starts with ``oneeye/``). Every
room of the shared package and every module of the edge and cloud rooms is named in it,
and every ``name/`` or ``name.py`` it names exists, so a move or a new module that the
documents do not show fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.paths import REPO

DOCS = ("README.md", "docs/architecture.md")
#: The rooms whose modules the block names one by one (the others are named as rooms).
SPELLED_OUT = ("oneeye", "oneeye/edge", "oneeye/edge/camera", "oneeye/edge/detect",
               "oneeye/edge/comms", "oneeye/edge/gallery", "oneeye/edge/device",
               "oneeye/cloud")


def block_of(doc: str) -> str:
    text = (REPO / doc).read_text()
    found = re.search(r"```\n(oneeye/ +the one shared package.*?)\n```", text, flags=re.S)
    assert found, f"{doc}: no layout block starting with 'oneeye/'"
    return found.group(1)


def rooms() -> list[Path]:
    return sorted(p for p in (REPO / "oneeye").rglob("*")
                  if p.is_dir() and p.name != "__pycache__" and any(p.glob("*.py")))


def test_both_documents_draw_the_same_layout() -> None:
    assert block_of(DOCS[0]) == block_of(DOCS[1])


@pytest.mark.parametrize("doc", DOCS)
def test_every_room_and_module_is_drawn(doc: str) -> None:
    block = block_of(doc)
    words = set(re.findall(r"[\w.]+/?", block))
    missing = [f"{p.relative_to(REPO)}/" for p in rooms() if f"{p.name}/" not in words]
    for room in SPELLED_OUT:
        missing += [str(m.relative_to(REPO)) for m in sorted((REPO / room).glob("*.py"))
                    if m.name != "__init__.py" and m.name not in words]
    assert not missing, f"{doc} does not show: {', '.join(missing)}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_name_drawn_exists(doc: str) -> None:
    # a path word stands alone ("camera/", "sources.py,"), unlike "upload/cases" in prose
    names = set(re.findall(r"(?:^|[\s,(])([a-z_]+(?:\.py|/))(?=[\s,)]|$)", block_of(doc),
                           flags=re.MULTILINE))
    everything = {p.name + ("/" if p.is_dir() else "")
                  for p in REPO.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts}
    assert not sorted(names - everything), f"{doc} names what is not in the tree"
