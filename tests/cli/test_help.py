"""authctl's help and usage errors: every command says what it does, with an example."""

import re
import subprocess
import sys
from typing import Any

import click
import pytest
import typer
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def all_commands() -> list[list[str]]:
    """Every command path, e.g. ["user", "create"], from the app itself."""
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


COMMANDS = all_commands()


def test_every_command_of_the_issue_exists() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {
        "db upgrade", "db downgrade", "db current", "db history",
        "user create", "user list", "user show", "user disable", "user enable",
        "user set-password", "user grant-admin", "user revoke-admin", "user delete",
        "client create", "client list", "client show", "client rotate-secret",
        "client delete", "key list", "key rotate", "key prune", "serve",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "root")
def test_help_says_what_and_shows_an_example(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: authctl" in result.output


def command_at(path: list[str]) -> Any:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "root")
def test_help_never_cuts_an_option_name_short(path: list[str]) -> None:
    # CliRunner's console is 80 columns wide, like a small terminal.
    output = runner.invoke(app, [*path, "--help"]).output
    names = [
        name
        for param in command_at(path).params
        for name in [*param.opts, *param.secondary_opts]
        if name.startswith("--")
    ]
    assert all(name in output.split() for name in names), output
    assert "…" not in output


def test_root_help_lists_the_resources() -> None:
    output = runner.invoke(app, ["--help"]).output
    for group in ("user", "client", "key", "db", "serve"):
        assert group in output


USAGE_ERRORS = {
    "no-command": [],
    "unknown-command": ["frobnicate"],
    "unknown-subcommand": ["user", "frobnicate"],
    "missing-argument": ["user", "show"],
    "unknown-option": ["user", "list", "--colour"],
    "bad-integer": ["serve", "--port", "http"],
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("authctl ")


# Modules `authctl --help` and `--version` must not load: each command imports
# the stack when it runs, so help answers at once (see cli/main.py). Not
# pydantic: Typer itself loads it for some commands' options.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "joserfc",
    "passlib",
    "authserver.main",
    "authserver.core.config",
    "authserver.services",
)
PROBE = """
import sys
from cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("LOADED", heavy, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["-h"], ["user", "--help"], ["client", "create", "-h"]],
    ids=lambda args: " ".join(args),
)
def test_help_and_version_load_no_heavy_module(args: list[str]) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.stdout.strip(), probe.stderr  # it did print help or the version
    assert probe.stderr.strip().splitlines()[-1] == "LOADED []", probe.stderr


def test_the_stack_is_loaded_when_a_command_runs() -> None:
    """The probe above can see a heavy module: a command does load them."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), "db", "history"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "'sqlalchemy'" in probe.stderr and "'alembic'" in probe.stderr


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "root")
def test_h_is_help_and_flags_show_no_type(path: list[str]) -> None:
    long = runner.invoke(app, [*path, "--help"], terminal_width=200)
    short = runner.invoke(app, [*path, "-h"], terminal_width=200)
    assert short.exit_code == 0, short.output
    assert short.output == long.output
    assert "<bool>" not in long.output


# The labels Typer gives Python types: <str>, <int range>, <list[str]>, <path>...
TYPE_TAG = re.compile(
    r"<(?:str|int|float|bool|uuid|datetime|path|file|directory|text|choice"
    r"|list\[[^>]*\]|[a-z]+ range)>"
)
METAVAR = re.compile(r"[A-Z][A-Z0-9_]*")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "root")
def test_help_shows_value_names_not_python_types(path: list[str]) -> None:
    """Every option that takes a value shows an upper-case metavar, as the
    README writes it (`--grant GRANT`); no parameter shows its type."""
    command = command_at(path)
    output = runner.invoke(app, [*path, "-h"], terminal_width=200).output
    ctx = typer.Context(command)
    typer_labels = {param.display_type(ctx) for param in command.params}
    assert not TYPE_TAG.search(output), output
    assert not [label for label in typer_labels if label in output], output

    # Option rows of the help table: "│ --grant  GRANT  Allowed grant type..."
    rows = {
        line.split()[1]: line.split()[1:]
        for line in output.splitlines()
        if line.startswith("│ --")
    }
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_flag or param.hidden:
            continue
        assert param.metavar and METAVAR.fullmatch(param.metavar), param.opts
        long, *short = sorted(param.opts, key=lambda opt: not opt.startswith("--"))
        shown = [long, *short, param.metavar]
        assert rows[long][: len(shown)] == shown, output


def test_root_help_lists_commands_in_the_order_of_a_first_session() -> None:
    output = runner.invoke(app, ["--help"], terminal_width=200).output
    order = [output.index(f"│ {name} ") for name in ("serve", "user", "client", "key")]
    assert order == sorted(order)


ARGUMENT_NAMES = {
    "user create": "{USERNAME}",
    "user show": "{USER}",
    "client create": "{NAME}",
    "client show": "{CLIENT_ID}",
    "key revoke": "{KID}",
    "key export": "{DIR}",
    "db upgrade": "[REVISION]",
    "db downgrade": "{REVISION}",
}


@pytest.mark.parametrize(
    ("command", "name"), list(ARGUMENT_NAMES.items()), ids=list(ARGUMENT_NAMES)
)
def test_arguments_are_named_as_the_readme_names_them(command: str, name: str) -> None:
    output = runner.invoke(app, [*command.split(), "-h"], terminal_width=200).output
    assert f"authctl {command} [OPTIONS] {name}" in output
