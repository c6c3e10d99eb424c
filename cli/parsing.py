"""Command classes for the two places authctl reads argv differently from Click.

Both are passed as `cls=` to `app.command`; everything else (help, usage errors,
exit code 2) stays Typer's.
"""

import re

import typer.core

# Typer vendors Click; TyperCommand's methods are typed with its Context.
from typer import _click

NEGATIVE_NUMBER = re.compile(r"-[0-9]+")


class NegativeNumberCommand(typer.core.TyperCommand):
    """Reads `-1` as an argument, not an option: `authctl db downgrade -1 --yes`.

    Click takes every word that starts with "-" for an option. Like argparse,
    this command takes a negative number for an argument instead, by moving it
    behind `--`. That keeps the order of arguments only because the command
    has one argument, and takes no option value only because every option of
    the command is a flag: use it for no other kind of command.
    """

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        words, rest = args[:end], args[end + 1 :]
        numbers = [word for word in words if NEGATIVE_NUMBER.fullmatch(word)]
        if numbers:
            others = [word for word in words if not NEGATIVE_NUMBER.fullmatch(word)]
            args = [*others, "--", *numbers, *rest]
        return super().parse_args(ctx, args)


class SecretArgsCommand(typer.core.TyperCommand):
    """Never echoes an unexpected argument: it may be a password typed by mistake.

    Click's "Got unexpected extra argument(s) (...)" quotes it, on a terminal
    that may be shared or recorded.
    """

    def parse_args(self, ctx: _click.Context, args: list[str]) -> list[str]:
        allowed = ctx.allow_extra_args
        ctx.allow_extra_args = True  # so that Click leaves the complaint to us
        try:
            extra = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = allowed
        if extra and not allowed and not ctx.resilient_parsing:
            noun = "argument" if len(extra) == 1 else "arguments"
            ctx.fail(
                f"unexpected extra {noun} (not shown); a password is never an "
                "argument: it is asked for, or read with --password-stdin"
            )
        return extra
