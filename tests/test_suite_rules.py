"""The suite's own rules, checked over its source so a new test cannot quietly break them.

- one way to wait (``tests/wait.py``): no hand-rolled deadline loops, no fixed sleeps
  except a simulated device's pacing, marked ``# pacing:``;
- browser tests wait with locator assertions, never a predicate string the page's CSP
  refuses, nor a fixed ``wait_for_timeout``;
- fixtures reach tests by name (``conftest.py`` and its plugins), never by ``import *`` nor
  by importing them; the shared fixtures (``app``, ``desk_device`` …) are defined once;
- a test module imports from no other test module (nor from ``conftest.py``): run alone it
  would get the builder but not the fixtures around it; what two modules share lives in
  ``conftest.py`` (fixtures) or a support module (builders, constants);
- tests ask public queries, not private attributes of the objects they test;
- test-only helpers stay out of the shipped package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path``, at any depth, relative ones
    resolved against ``tests``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(p for p in ("tests", module) if p)
            yield node.lineno, module, [alias.name for alias in node.names]


def fixtures_of(path: Path) -> set[str]:
    """The names of the functions ``path`` decorates with ``pytest.fixture``."""
    def is_fixture(d: ast.expr) -> bool:
        target = d.func if isinstance(d, ast.Call) else d
        return isinstance(target, ast.Attribute | ast.Name) and \
            (target.attr if isinstance(target, ast.Attribute) else target.id) == "fixture"

    return {node.name for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.FunctionDef) and any(map(is_fixture, node.decorator_list))}


def test_no_test_module_imports_another_or_conftest() -> None:
    hits = [f"{path.name}:{line}: imports {target}" for path in SOURCES
            for line, module, names in imports(path)
            for target in (module, *(f"{module}.{name}" for name in names))
            if re.fullmatch(r"tests\.(test_\w+|conftest)", target)]
    assert not hits, "move what is shared to conftest.py (fixtures) or a support module:\n" + \
        "\n".join(hits)


def test_fixtures_are_not_imported() -> None:
    fixtures = {f"tests.{p.stem}": fixtures_of(p) for p in SOURCES}
    hits = [f"{path.name}:{line}: imports the fixture {name} from {module}"
            for path in SOURCES for line, module, names in imports(path)
            for name in names if name in fixtures.get(module, set())]
    assert not hits, "ask for a fixture by name (conftest.py or its plugins):\n" + \
        "\n".join(hits)


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
                       r"^def moto_server\(", r"^def free_port\(", r"^def desk_device\(",
                       r"^def mall_devices\(", r"^def photos\("):
        assert len(offending(definition)) == 1, definition


def test_test_only_helpers_are_not_shipped() -> None:
    shipped = [p for p in (REPO / "oneeye").rglob("*.py") if "class TcpProxy" in p.read_text()]
    assert shipped == []
