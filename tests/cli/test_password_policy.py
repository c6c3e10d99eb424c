"""authctl refuses the passwords the API refuses, in the same words."""

import subprocess
from pathlib import Path

import pytest

from authserver.crud.user import UserRepository
from tests.cli.conftest import Cli
from tests.cli.helpers import authctl_path, clean_environ, cli_env, one_error_line
from tests.factories import make_user
from tests.password_policy import REFUSED

# A terminal's line discipline and CliRunner both carry text: these go in as
# text; the lone surrogate needs a real process (below).
TYPED = {name: case for name, case in REFUSED.items() if name != "lone-surrogate"}


@pytest.mark.parametrize(("password", "message"), list(TYPED.values()), ids=list(TYPED))
@pytest.mark.parametrize("command", ["create", "set-password"])
def test_authctl_refuses_what_the_policy_refuses(
    cli: Cli, command: str, password: str, message: str
) -> None:
    user = cli.seed(lambda f: make_user(f, username="alice"))
    username = "bob" if command == "create" else "alice"

    result = cli("user", command, username, "--password-stdin", input=f"{password}\n")

    assert one_error_line(result) == f"error: {message}"
    stored = cli.db(lambda s: UserRepository(s).get(user.id))
    assert stored is not None and stored.password_hash == user.password_hash
    assert cli.db(lambda s: UserRepository(s).list())[1] == 1


@pytest.mark.parametrize("command", ["create", "set-password"])
def test_authctl_refuses_undecodable_stdin_in_a_c_locale(
    cli: Cli, tmp_path: Path, command: str
) -> None:
    """In the C locale Python reads stdin with surrogateescape: invalid UTF-8
    arrives as lone surrogates, which bcrypt cannot hash."""
    cli.seed(lambda f: make_user(f, username="alice"))
    username = "bob" if command == "create" else "alice"
    env = clean_environ(
        {**cli_env(cli.database_url, cli.keys_dir), "LC_ALL": "C", "LANG": "C"}
    )

    done = subprocess.run(
        [authctl_path(), "user", command, username, "--password-stdin"],
        env=env,
        cwd=tmp_path,
        input=b"half \xed\xa0\x80 a pair\n",
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr.decode() == f"error: {REFUSED['lone-surrogate'][1]}\n"
