"""Rendering helpers. rich is imported here, and this module only inside commands."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped output is not cut at 80 columns, so ids and digests survive intact.
_PIPE_WIDTH = 200


def console(*, stderr: bool = False) -> Console:
    out = Console(highlight=False, stderr=stderr)
    if not out.is_terminal:
        out = Console(highlight=False, stderr=stderr, width=_PIPE_WIDTH)
    return out


def when(ms: int | None) -> str:
    """Milliseconds since the epoch as local time; empty for None."""
    if ms is None:
        return ""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(start: int, end: int | None) -> str:
    if end is None:
        return ""
    seconds = max(end - start, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    no_wrap: Sequence[str] = (),
) -> Table:
    """A table whose cells are plain text: user data is never read as rich markup."""
    grid = Table(title=Text(title, style="bold") if title else None, title_justify="left")
    for name in columns:
        grid.add_column(name, no_wrap=name in no_wrap, overflow="fold")
    for row in rows:
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    return grid


def heading(text: str) -> Text:
    return Text(text, style="bold")


def fields(pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column "name  value" block without borders."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(Text(name), Text("" if value is None else str(value)))
    return grid
