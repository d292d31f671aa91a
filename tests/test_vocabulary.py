"""One name for one thing, defined once.

``oneeye/types.py`` is the vocabulary (watchlists, the id grammar, camera states, face
boxes, image suffixes, desk kinds, the UTC clock, the SMS limit) and ``oneeye/errors.py``
is the one exception tree. These tests read the source tree and fail when a second
definition of a concept appears anywhere else, so a copy cannot drift from the original
(an ``@`` once passed one copy of the id grammar and failed another).
"""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path
from typing import get_args

import pytest

from oneeye import events, types
from tests.paths import REPO

#: The trees whose code must use the vocabulary (tests may spell values out on purpose).
TREES = ("oneeye", "dashboard", "edge", "cloud", "bench", "scripts")
#: Where a concept is defined when it is not in the vocabulary module.
HOME = {"botocore error sniffing": "oneeye/aws.py"}

#: concept → regex that finds a (re)definition of it in source code.
CONCEPTS: dict[str, str] = {
    "the Watchlist literal": r"""["']customers["']\s*,\s*["']missing["']"""
                             r"""|["']missing["']\s*,\s*["']customers["']"""
                             r"|missing\|customers|customers\|missing",
    "the id grammar": r"\[A-Za-z0-9\]\[A-Za-z0-9_",
    "the CameraState literal": r"""["']ok["']\s*,\s*["']connecting["']""",
    "the BBox alias": r"tuple\[int,\s*int,\s*int,\s*int\]",
    "IMAGE_SUFFIXES": r"^\s*IMAGE_SUFFIXES\s*(:[^=]*)?=",
    "a now-as-ISO-Z helper": r"""replace\(\s*["']\+00:00["']\s*,\s*["']Z["']\s*\)"""
                             r"|\.isoformat\(|^def\s+(_?now|_?utc_now|now_iso)\s*\(",
    "the desk kinds": r"""["']customer_arrived["']\s*,\s*["']missing_person_sighted["']""",
    "SMS_MAX": r"^\s*SMS_MAX\s*(:[^=]*)?=",
    "botocore error sniffing": r"""getattr\(\s*\w+\s*,\s*["']response["']""",
}

#: Files still holding a second definition, each owned by another change in flight.
#: The lead empties this list after merging those branches; do not add to it.
PENDING: dict[str, set[str]] = {
}


def _sources() -> list[Path]:
    return sorted(p for tree in TREES for p in (REPO / tree).rglob("*.py")
                  if ".venv" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, code) with comments and docstrings left out: prose may name values."""
    text = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            docstrings.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return [(n, line.split("  #")[0]) for n, line in enumerate(text.splitlines(), 1)
            if n not in docstrings and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("concept", sorted(CONCEPTS))
def test_each_concept_is_defined_once(concept: str) -> None:
    pattern = re.compile(CONCEPTS[concept])
    home = HOME.get(concept, "oneeye/types.py")
    found = {f"{_rel(p)}:{n}: {line.strip()}" for p in _sources() if _rel(p) != home
             for n, line in _code_lines(p) if pattern.search(line)}
    pending = PENDING.get(concept, set())
    unexpected = sorted(f for f in found if f.split(":")[0] not in pending)
    assert not unexpected, (f"{concept} is defined again; import it from oneeye.types "
                            f"(or oneeye.aws for AWS errors):\n" + "\n".join(unexpected))


def test_pending_list_names_only_files_that_still_need_it() -> None:
    # An entry whose file no longer repeats the concept must go, or it would hide a relapse.
    stale = [f"{concept}: {name}" for concept, files in PENDING.items() for name in sorted(files)
             if not (REPO / name).exists() or not any(
                 re.search(CONCEPTS[concept], line) for _, line in _code_lines(REPO / name))]
    assert not stale, "no longer repeat their concept; remove from PENDING:\n" + "\n".join(stale)


def test_vocabulary_derives_its_lists_from_the_literals() -> None:
    assert types.WATCHLISTS == get_args(types.Watchlist) == ("customers", "missing")
    assert get_args(types.CameraState) == types.CAMERA_STATES
    assert get_args(types.DeskKind) == types.DESK_KINDS


def test_the_contracts_speak_the_vocabulary() -> None:
    assert not hasattr(events, "Token"), "events.Token was a compatibility alias of types.Id"
    match_fields = events.MatchEvent.model_fields
    assert match_fields["watchlist"].annotation == types.Watchlist
    assert match_fields["bbox"].annotation == types.BBox
    assert events.DeskEvent.model_fields["kind"].annotation == types.DeskKind


# --- one exception tree -----------------------------------------------------------------

def _exception_classes(path: Path, known: set[str]) -> list[str]:
    """Classes in ``path`` deriving (within the file, or from ``known``) from an exception."""
    classes = {node.name: {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")
                           for b in node.bases}
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ClassDef)}
    found: set[str] = set()
    while True:
        more = {name for name, bases in classes.items() if bases & (known | found)} - found
        if not more:
            return sorted(found)
        found |= more


def test_every_exception_class_lives_in_errors_py() -> None:
    errors_py = REPO / "oneeye" / "errors.py"
    known = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
             and issubclass(getattr(builtins, n), BaseException)}
    known |= {"ClientError", "BotoCoreError", "HTTPException"}
    defined_here = _exception_classes(errors_py, known)
    known |= set(defined_here)
    assert {"OneEyeError", "NotFound", "ConditionFailed", "AlreadyExists"} <= set(defined_here)
    elsewhere = [f"{_rel(p)}: {name}" for tree in ("oneeye", "dashboard")
                 for p in sorted((REPO / tree).rglob("*.py")) if p != errors_py
                 for name in _exception_classes(p, known)]
    assert not elsewhere, "exception classes belong in oneeye/errors.py:\n" + "\n".join(elsewhere)


def test_every_oneeye_error_derives_from_the_one_base() -> None:
    from oneeye import errors

    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception) \
                and value.__module__ == errors.__name__:
            assert issubclass(value, errors.OneEyeError), name


# --- broad excepts only at process boundaries, each saying why --------------------------

#: Files owned by other changes in flight whose broad excepts still lack their reason.
PENDING_EXCEPTS: set[str] = set()


def _broad_excepts_without_reason(path: Path) -> list[int]:
    text = path.read_text()
    lines = text.splitlines()
    missing = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ExceptHandler) or not isinstance(node.type, ast.Name) \
                or node.type.id not in {"Exception", "BaseException"}:
            continue
        # Cleaning up and re-raising (or mapping to our own error) hides nothing.
        if any(isinstance(stmt, ast.Raise) for stmt in node.body):
            continue
        here = lines[node.lineno - 1]
        below = lines[node.lineno].strip() if node.lineno < len(lines) else ""
        if "#" not in here and not below.startswith("#"):
            missing.append(node.lineno)
    return missing


def test_broad_excepts_say_why() -> None:
    missing = [f"{_rel(p)}:{n}" for p in _sources() if _rel(p) not in PENDING_EXCEPTS
               for n in _broad_excepts_without_reason(p)]
    assert not missing, ("a broad except belongs at a process boundary with a comment "
                         "saying why it may swallow errors:\n" + "\n".join(missing))
