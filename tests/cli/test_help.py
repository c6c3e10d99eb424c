"""authctl's help and usage errors: every command says what it does, with an example."""

from typing import Any

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
