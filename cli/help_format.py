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


def keep_option_names_whole() -> None:
    """Never cut an option's name short (`--remove-post-logout-r…`) in help.

    In a narrow terminal Rich shrinks every column of Typer's option tables,
    the names' too, which then end in an ellipsis; here only the last column,
    the description, gives way (it wraps).
    """
    import typer.rich_utils as rich_utils
    from rich.table import Table

    if getattr(rich_utils, "Table", None) is not Table:
        return  # done already (or Typer changed: then leave it alone)

    class OptionTable(Table):
        def add_row(self, *renderables: Any, **options: Any) -> None:
            super().add_row(*renderables, **options)
            for column in self.columns[:-1]:
                column.no_wrap = True

    rich_utils.Table = OptionTable  # type: ignore[attr-defined]
