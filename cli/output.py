"""What authctl prints: tables, lines, JSON, error exits, in one style.

Light on purpose (typer and rich only): `authctl --help` imports it.

Every stored string reaches the terminal through `inert` (via `add_row`, `say`,
`note`, `fail` and `print_details`), so a name, email or user agent holding
escape sequences cannot move the cursor, retitle the window or write to the
clipboard of the admin reading it. JSON is inert already: `json.dumps` escapes
every control character (and, ASCII only, every non-ASCII one).
"""

import json
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

# `--json` on every listing and create command: JSON only on stdout, for scripts.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only (scripts).")]

console = Console()
err_console = Console(stderr=True)

# C0 and DEL, C1, and the bidirectional overrides and isolates (which reorder
# what the terminal shows: "Trojan Source", CVE-2021-42574).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def inert(text: str) -> str:
    r"""`text` with every control character shown as an escape (ESC as \x1b)."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def fail(message: str, code: int = 1) -> NoReturn:
    """One `error: ...` line on stderr, then exit `code` (1: expected failure)."""
    # Text, not markup: messages quote user input, which may contain "[...]".
    err_console.print(
        Text.assemble(("error: ", "red"), inert(message)),
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit(code)


def print_json(data: object) -> None:
    """JSON and nothing else on stdout, for scripts (`--json`)."""
    sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """One plain line on stdout (no markup: it may quote user input)."""
    console.print(Text(inert(message)), highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """Advice for the human at the terminal; stderr keeps stdout parseable."""
    err_console.print(
        Text(inert(message), style="yellow"), highlight=False, soft_wrap=True
    )


def confirm(question: str, *, yes: bool) -> None:
    """Ask before a destructive step unless --yes; "no" (or no answer) exits 1."""
    if yes:
        return
    try:
        agreed = typer.confirm(inert(question), err=True)
    except typer.Abort:  # end of input or Ctrl-C, at the prompt
        err_console.print()
        fail("no answer, nothing changed (--yes skips the question)")
    if not sys.stdin.isatty():
        err_console.print()  # an answer from a pipe is not echoed: end the line
    if not agreed:
        fail("not confirmed, nothing changed")


# --- values ----------------------------------------------------------------------


def when(moment: datetime | str | None) -> str | None:
    """The one timestamp format of every authctl output, tables and JSON alike:
    UTC, ISO 8601, to the second (2026-12-03T06:44:20Z). None stays None."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:  # stored as UTC without an offset (SQLite)
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- tables --------------------------------------------------------------------


def table(*columns: str) -> Table:
    """A table with headers in the one style: a capital first letter, the rest
    lower case but for abbreviations (Client ID, Created, Signs from)."""
    return Table(*columns, highlight=False)


def add_row(grid: Table, *cells: object) -> None:
    grid.add_row(*(Text("-" if cell is None else inert(str(cell))) for cell in cells))


def print_table(grid: Table) -> None:
    if console.is_terminal:
        console.print(grid)
        return
    # Piped or redirected: Rich would squeeze the table into 80 columns and cut
    # ids short with an ellipsis; print whole values for grep and friends.
    natural = Measurement.get(console, console.options.update_width(10_000), grid)
    Console(width=max(natural.maximum, console.width)).print(grid)


def print_details(pairs: Mapping[str, object]) -> None:
    """Field/value lines for `show` commands."""
    pad = max(map(len, pairs), default=0) + 2
    for field, value in pairs.items():
        say(f"{field:<{pad}}{'-' if value is None else value}")
