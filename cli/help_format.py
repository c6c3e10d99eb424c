"""How authctl's help looks where Typer has no setting for it."""

from typing import Any

import typer.core


def show_names_not_types() -> None:
    """Show no Python type (`<str>`, `<list[str]>`, `<path>`) in help.

    Typer prints a type beside every parameter. An argument's name column
    already shows its metavar (`USERNAME`), and a flag takes no value; an
    option that takes one shows its own metavar there instead (`--grant
    GRANT`), which every such option of authctl sets (tests/cli/test_help.py
    holds that). So arguments and flags show nothing in the type column.
    """
    option_type = typer.core.TyperOption.display_type_rich
    if getattr(option_type, "names_not_types", False):
        return

    def option_display(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else option_type(self, ctx)

    def argument_display(self: typer.core.TyperArgument, ctx: Any) -> None:
        return None

    option_display.names_not_types = True  # type: ignore[attr-defined]
    typer.core.TyperOption.display_type_rich = option_display  # type: ignore[method-assign]
    typer.core.TyperArgument.display_type_rich = argument_display  # type: ignore[method-assign,assignment]


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
