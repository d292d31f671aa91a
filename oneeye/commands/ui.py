"""Terminal output shared by the commands: progress bars and tables (both from ``rich``).

Progress goes to stderr and only when stderr is a terminal, so piped or captured runs
(``--json``, ``| jq``, CI logs) carry results only. Tables go to stdout with a header row.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Advance(Protocol):
    """Called once per item done; ``label`` names the item (a file, a person)."""

    def __call__(self, label: str = "", steps: int = 1) -> None: ...


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Advance]:
    """A progress bar on stderr for ``total`` items (``None``: count only), off unless a TTY."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[item]}"), console=console,
                   disable=not console.is_terminal, transient=False)
    with bar:
        task = bar.add_task(label, total=total, item="")

        def advance(label: str = "", steps: int = 1) -> None:
            bar.update(task, advance=steps, item=label[-40:])

        yield advance


def track(label: str, items: Sequence[T], name: Callable[[T], str] = str) -> Iterator[T]:
    """Yield ``items``, advancing a :func:`progress` bar after each (``continue`` included)."""
    with progress(label, len(items)) as advance:
        for item in items:
            yield item
            advance(name(item))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print ``rows`` under ``headers`` on stdout (plain text, no colours when piped)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Table(*headers, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for row in rows:  # Text: a value like "[red]" is data, not rich markup
        out.add_row(*(Text("" if v is None else str(v)) for v in row))
    stdout = sys.stdout
    # Piped output keeps long rows whole (a terminal wraps to its own width).
    Console(file=stdout, width=None if stdout.isatty() else 200).print(out)
