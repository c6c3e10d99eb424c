"""authctl db: schema migrations (Alembic), run from code with the project's scripts.

The migrations ship inside the package, so these commands work from any
directory; the database URL is AUTH_DATABASE_URL, as for the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import database_engine, run
from cli.output import (
    JsonOpt,
    add_row,
    confirm,
    fail,
    print_json,
    print_table,
    say,
    table,
)
from cli.parsing import NegativeNumberCommand

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(
    help="Database schema migrations.\n\nExample: authctl db upgrade",
    no_args_is_help=True,
)


@app.command("upgrade")
def upgrade(
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION", help="Target revision (default: the latest)."
        ),
    ] = "head",
) -> None:
    """Apply pending migrations up to REVISION (default: head, the latest).

    Safe to run while servers are up and from several hosts at once: PostgreSQL
    runs one migration at a time under an advisory lock.

    Example: authctl db upgrade
    """
    from authserver.db import migrate

    _require(revision)
    current = run(
        _migrate(lambda engine: migrate.upgrade(engine, revision), create=True)
    )
    say(f"database at revision {_describe(current)}")


@app.command("downgrade", cls=NegativeNumberCommand)
def downgrade(
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION", help="Target revision, e.g. 0001, -1 or base."
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Revert migrations down to REVISION; data in dropped tables is lost (asks first).

    Example: authctl db downgrade -1 --yes
    """
    from authserver.db import migrate

    _require(revision)
    # An unknown or unreachable revision fails before the question, not after.
    run(_migrate(lambda engine: migrate.check_downgrade(engine, revision)))
    confirm(
        f"Downgrade the database to {revision}? Tables and columns added since "
        "then are dropped with their data.",
        yes=yes,
    )
    current = run(_migrate(lambda engine: migrate.downgrade(engine, revision)))
    say(f"database at revision {_describe(current)}")


@app.command("current")
def current(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless at the latest revision.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the database's schema revision and whether it is the latest.

    Example: authctl db current --check
    """
    from authserver.db import migrate

    revision = run(_migrate(None))
    head = migrate.head_revision()
    if as_json:
        print_json({"current": revision, "head": head, "at_head": revision == head})
    elif revision == head:
        say(f"{revision} (head)")
    else:
        say(f"{revision or 'none'} (latest is {head}: run `authctl db upgrade`)")
    if check and revision != head:
        raise typer.Exit(1)


@app.command("history")
def history(as_json: JsonOpt = False) -> None:
    """List the migrations this version knows, newest first (no database needed).

    Example: authctl db history
    """
    from alembic.script import ScriptDirectory

    from authserver.db import migrate

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    revisions: list[dict[str, Any]] = [
        {
            "revision": script.revision,
            "down_revision": script.down_revision,
            "description": (script.doc or "").strip(),
            "head": script.is_head,
        }
        for script in scripts.walk_revisions()
    ]
    if as_json:
        print_json(revisions)
        return
    grid = table("Revision", "Parent", "Description", "Head")
    for item in revisions:
        add_row(
            grid,
            item["revision"],
            item["down_revision"] or "(base)",
            item["description"],
            "yes" if item["head"] else "",
        )
    print_table(grid)


async def _migrate(
    action: Callable[[AsyncEngine], Awaitable[object]] | None,
    *,
    create: bool = False,
) -> str | None:
    """Run one migration step (or none) and return the revision it left."""
    from authserver.db import migrate

    engine = database_engine(create=create)
    try:
        if action is not None:
            await action(engine)
        return await migrate.get_current(engine)
    finally:
        await engine.dispose()


def _require(revision: str) -> None:
    if not revision.strip():
        fail("REVISION is empty: give a revision such as 0002, head, base or -1")


def _describe(revision: str | None) -> str:
    from authserver.db import migrate

    if revision is None:
        return "none (empty schema)"
    return f"{revision} (head)" if revision == migrate.head_revision() else revision
