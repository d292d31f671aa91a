"""Every module in ``oneeye/`` and ``dashboard/`` holds one idea: past ~400 lines it says at
its top why.

A module that grows past :data:`MAX_LINES` is usually doing several jobs (issue 15:
the 614-line ``gallery.py`` did seven). Split it, or put a one-line reason among its
first lines as a comment ``# Long module: <why it is one idea>``.
"""
from __future__ import annotations

import re
from pathlib import Path

from tests.paths import REPO

#: Lines past which a module must give a reason (issue 15, "Done when").
MAX_LINES = 400
#: The reason comment, found among the first :data:`HEAD_LINES` lines.
REASON = re.compile(r"^# Long module: \S.*$", re.MULTILINE)
HEAD_LINES = 5
#: Modules whose owners are splitting or explaining them on other branches; remove an entry
#: once its module is split or gives its reason (none are pending now).
PENDING: set[str] = set()


def _gives_reason(path: Path) -> bool:
    return bool(REASON.search("\n".join(path.read_text().splitlines()[:HEAD_LINES])))


def _long_without_reason(path: Path) -> bool:
    return len(path.read_text().splitlines()) > MAX_LINES and not _gives_reason(path)


#: The packages the rule holds (the dashboard too, since issue 19).
PACKAGES = ("oneeye", "dashboard")


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def test_long_modules_say_why_at_their_top() -> None:
    long = [f"{p.relative_to(REPO).as_posix()}: {len(p.read_text().splitlines())} lines"
            for p in _modules()
            if p.relative_to(REPO).as_posix() not in PENDING and _long_without_reason(p)]
    assert not long, (f"over {MAX_LINES} lines with no '# Long module: <reason>' in the first "
                      f"{HEAD_LINES} lines; split it into modules that hold one idea:\n"
                      + "\n".join(long))


def test_pending_names_no_module_that_gives_its_reason() -> None:
    # A pending module that is gone was split, and one under the limit may grow on its
    # owner's branch; one that explains itself no longer needs the exception.
    stale = sorted(name for name in PENDING
                   if (REPO / name).is_file() and _gives_reason(REPO / name))
    assert not stale, "explained now; remove from PENDING: " + ", ".join(stale)


def test_the_rule_covers_the_dashboard() -> None:
    found = {p.relative_to(REPO).as_posix() for p in _modules()}
    assert {"dashboard/__init__.py", "dashboard/store/events.py", "oneeye/cli.py"} <= found


def test_the_rule_sees_a_long_module_and_its_reason(tmp_path: Path) -> None:
    body = "x = 1\n" * (MAX_LINES + 1)
    bare = tmp_path / "bare.py"
    bare.write_text('"""Doc."""\n' + body)
    explained = tmp_path / "explained.py"
    explained.write_text('"""Doc."""\n# Long module: one state machine, split it and it hides\n'
                         + body)
    short = tmp_path / "short.py"
    short.write_text(body[: 6 * MAX_LINES])
    assert _long_without_reason(bare)
    assert not _long_without_reason(explained)
    assert not _long_without_reason(short)
