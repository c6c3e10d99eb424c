"""How authctl's help looks where Typer has no setting for it."""

from typing import Any

import typer.core


def hide_flag_types() -> None:
    """Show no value type (`<bool>`) beside a flag: a flag takes no value.

    Typer prints the type of every option in its help panels, flags included;
    options that take a value (`--port <int>`) keep theirs.
    """
    shown = typer.core.TyperOption.display_type_rich
    if getattr(shown, "hides_flags", False):
        return

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.hides_flags = True  # type: ignore[attr-defined]
    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
