"""authctl db: schema migrations (Alembic) from the project's migrations."""

from typing import Annotated

import typer

from authserver.db import migrate
from authserver.db.session import create_engine
from cli.common import console, run, settings

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (default: head).

    Example: authctl db upgrade
    """

    async def _upgrade() -> None:
        engine = create_engine(settings())
        try:
            await migrate.upgrade(engine, revision)
        finally:
            await engine.dispose()

    run(_upgrade())
    console.print(f"database upgraded to {revision}")
