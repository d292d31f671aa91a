"""The suite's own rules, checked over its source so a new test cannot quietly break them.

- one way to wait (``tests/wait.py``): no hand-rolled deadline loops, no fixed sleeps
  except a simulated device's pacing, marked ``# pacing:``;
- browser tests wait with locator assertions, never a predicate string the page's CSP
  refuses, nor a fixed ``wait_for_timeout``;
- fixtures reach tests by name (``conftest.py`` and its plugins), never by ``import *``;
  the dashboard ``app`` fixture is defined once;
- tests ask public queries, not private attributes of the objects they test;
- test-only helpers stay out of the shipped package.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SOURCES = sorted(p for p in TESTS.glob("*.py") if p.name != Path(__file__).name)


def offending(pattern: str, *, skip: tuple[str, ...] = (),
              allow: str | None = None) -> list[str]:
    """``file:line: text`` of every test-source line matching ``pattern``."""
    rx, ok = re.compile(pattern), re.compile(allow) if allow else None
    hits = []
    for path in SOURCES:
        if path.name in skip:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if rx.search(line) and not (ok and ok.search(line)):
                hits.append(f"{path.name}:{n}: {line.strip()}")
    return hits


@pytest.mark.parametrize(("rule", "pattern", "skip", "allow"), [
    ("deadline loops: use tests.wait.wait_until", r"deadline\s*=\s*time\.monotonic\(\)",
     ("wait.py",), None),
    ("fixed sleeps: wait for the condition (or mark a device's '# pacing:')",
     r"\btime\.sleep\(", ("wait.py",), r"#\s*pacing:"),
    ("predicate strings / fixed browser waits: use expect(locator)",
     r"\.wait_for_function\(|\.wait_for_timeout\(", (), None),
    ("fixtures by import *: register a plugin in conftest.py", r"^from \S+ import \*", (), None),
    ("private attributes of objects under test: add a public query",
     r"(?<![\w.])(?!self\b|cls\b|os\b|sys\b)[a-z_]\w*\._[a-z]\w*", ("wait.py",), None),
])
def test_suite_source_follows_the_rule(rule: str, pattern: str, skip: tuple[str, ...],
                                       allow: str | None) -> None:
    assert offending(pattern, skip=skip, allow=allow) == [], rule


def test_the_app_fixture_and_wait_until_are_defined_once() -> None:
    for definition in (r"^def app\(", r"^def wait_until\(", r"^def signer\(",
                       r"^def moto_server\(", r"^def free_port\("):
        assert len(offending(definition)) == 1, definition


def test_test_only_helpers_are_not_shipped() -> None:
    shipped = [p for p in (REPO / "oneeye").rglob("*.py") if "class TcpProxy" in p.read_text()]
    assert shipped == []
