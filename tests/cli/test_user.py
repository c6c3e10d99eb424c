"""authctl user: each command, its failures, and the database afterwards."""

import json

import pytest

from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.user import UserRepository
from authserver.db.session import SessionFactory
from authserver.models import User
from tests.cli.conftest import Cli
from tests.cli.helpers import add_refresh_token, failed, ok, one_error_line
from tests.cli.helpers import password_matches as matches
from tests.factories import DEFAULT_PASSWORD, make_client, make_user

NEW_PASSWORD = "a brand new passphrase"


def get_user(cli: Cli, username: str) -> User | None:
    return cli.db(lambda s: UserRepository(s).get_by_username(username))


def seed_user(cli: Cli, username: str, **options: object) -> User:
    return cli.seed(lambda f: make_user(f, username=username, **options))


def seed_tokens(cli: Cli, user: User, count: int = 2) -> list[str]:
    client = cli.seed(make_client).client

    async def add(factory: SessionFactory) -> list[str]:
        return [
            await add_refresh_token(factory, user.id, client.id) for _ in range(count)
        ]

    return cli.seed(add)


def revoked(cli: Cli, jti: str) -> bool:
    record = cli.db(lambda s: RefreshTokenRepository(s).get(jti))
    return record is not None and record.revoked_at is not None


# --- create -------------------------------------------------------------------


def test_create_from_stdin_prints_json(cli: Cli) -> None:
    result = ok(
        cli(
            "user",
            "create",
            "alice",
            "--email",
            "Alice@Example.com",
            "--password-stdin",
            "--json",
            input=f"{NEW_PASSWORD}\n",
        )
    )
    body = json.loads(result.stdout)
    user = get_user(cli, "alice")
    assert user is not None
    assert body["id"] == str(user.id)
    assert body["username"] == "alice"
    assert body["email"] == "alice@example.com"
    assert body["is_active"] is True and body["is_admin"] is False
    assert NEW_PASSWORD not in result.output and "password_hash" not in body
    assert matches(NEW_PASSWORD, user.password_hash)


def test_create_asks_twice_and_again_on_mismatch(cli: Cli, terminal: None) -> None:
    answers = f"{NEW_PASSWORD}\nsomething else\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    result = ok(cli("user", "create", "bob", "--admin", input=answers))
    assert "do not match" in result.stderr
    assert NEW_PASSWORD not in result.output  # the prompt is hidden
    assert "created administrator bob" in result.stdout
    user = get_user(cli, "bob")
    assert user is not None and user.is_admin
    assert matches(NEW_PASSWORD, user.password_hash)


def test_create_keeps_spaces_of_a_stdin_password(cli: Cli) -> None:
    ok(cli("user", "create", "carol", "--password-stdin", input="  padded pass  \r\n"))
    user = get_user(cli, "carol")
    assert user is not None and matches("  padded pass  ", user.password_hash)


def test_create_accepts_a_password_beyond_bcrypt_72_bytes(cli: Cli) -> None:
    long_password = "é" * 100  # 200 bytes: must not be truncated to 72
    ok(cli("user", "create", "dave", "--password-stdin", input=long_password + "\n"))
    user = get_user(cli, "dave")
    assert user is not None
    assert matches(long_password, user.password_hash)
    assert not matches("é" * 36, user.password_hash)


def test_create_duplicate_username_ignores_case(cli: Cli) -> None:
    seed_user(cli, "alice")
    line = one_error_line(
        cli("user", "create", "ALICE", "--password-stdin", input=f"{NEW_PASSWORD}\n")
    )
    assert "taken" in line
    users, total = cli.db(lambda s: UserRepository(s).list())
    assert total == 1


BAD_CREATES = {
    "bad-username": (["bad name!"], f"{NEW_PASSWORD}\n", "USERNAME"),
    "short-password": (["erin"], "short\n", "at least 8 characters"),
    "long-password": (["erin"], "x" * 1025 + "\n", "at most 1024 characters"),
    "bad-email": (["erin", "--email", "not-an-email"], f"{NEW_PASSWORD}\n", "--email"),
    "empty-stdin": (["erin"], "", "no password on standard input"),
}


@pytest.mark.parametrize(
    ("args", "stdin", "message"), list(BAD_CREATES.values()), ids=list(BAD_CREATES)
)
def test_create_rejects(cli: Cli, args: list[str], stdin: str, message: str) -> None:
    result = cli("user", "create", *args, "--password-stdin", "--json", input=stdin)
    assert message in one_error_line(result)
    assert cli.db(lambda s: UserRepository(s).list())[1] == 0


def test_create_never_takes_a_password_argument(cli: Cli) -> None:
    stderr = failed(cli("user", "create", "frank", "--password", "x"), code=2)
    assert "No such option" in stderr


SECRET_COMMANDS = {
    "create": ["create", "frank"],
    "create-stdin": ["create", "frank", "--password-stdin"],
    "set-password": ["set-password", "alice"],
}


@pytest.mark.parametrize(
    "args", list(SECRET_COMMANDS.values()), ids=list(SECRET_COMMANDS)
)
@pytest.mark.parametrize("extra", [["hunter2 pass"], ["hunter2", "more"]])
def test_a_password_typed_as_an_argument_is_not_echoed(
    cli: Cli, terminal: None, args: list[str], extra: list[str]
) -> None:
    seed_user(cli, "alice")
    result = cli("user", *args, *extra, input=f"{NEW_PASSWORD}\n")
    stderr = failed(result, code=2)  # a usage error, as README documents
    assert "unexpected extra argument" in stderr and "(not shown)" in stderr
    assert "hunter2" not in result.output
    assert get_user(cli, "frank") is None
    assert matches(DEFAULT_PASSWORD, get_user(cli, "alice").password_hash)


PROMPTS = {
    "create": ["create", "frank"],
    "set-password": ["set-password", "alice"],
}


@pytest.mark.parametrize("args", list(PROMPTS.values()), ids=list(PROMPTS))
@pytest.mark.parametrize("stdin", [f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n", ""])
def test_no_prompt_without_a_terminal(cli: Cli, args: list[str], stdin: str) -> None:
    seed_user(cli, "alice")
    line = one_error_line(cli("user", *args, input=stdin))
    assert line == "error: no terminal to ask for the password; use --password-stdin"
    assert get_user(cli, "frank") is None
    assert matches(DEFAULT_PASSWORD, get_user(cli, "alice").password_hash)


BEFORE_THE_PROMPT = {
    "bad-username": (["create", "bad name!"], "USERNAME"),
    "uuid-username": (
        ["create", "00000000-0000-4000-8000-000000000000"],
        "may not look like a UUID",
    ),
    "bad-email": (["create", "erin", "--email", "not-an-email"], "--email"),
    "taken-username": (["create", "ALICE"], "username 'ALICE' is taken"),
    "unknown-user": (["set-password", "nobody"], "no user 'nobody'"),
}


@pytest.mark.parametrize(
    ("args", "message"), list(BEFORE_THE_PROMPT.values()), ids=list(BEFORE_THE_PROMPT)
)
def test_bad_input_fails_before_the_password_prompt(
    cli: Cli, terminal: None, args: list[str], message: str
) -> None:
    seed_user(cli, "alice")
    result = cli("user", *args, input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert message in one_error_line(result)
    assert "Password" not in result.output  # nobody was asked to type it
    assert cli.db(lambda s: UserRepository(s).list())[1] == 1


# --- list and show --------------------------------------------------------------


def test_list_shows_active_users_unless_all(cli: Cli) -> None:
    seed_user(cli, "alice")
    seed_user(cli, "bob", is_active=False)
    seed_user(cli, "carol", is_admin=True)

    active = json.loads(ok(cli("user", "list", "--json")).stdout)
    assert [u["username"] for u in active] == ["alice", "carol"]
    everyone = json.loads(ok(cli("user", "list", "--all", "--json")).stdout)
    assert [u["username"] for u in everyone] == ["alice", "bob", "carol"]
    assert [u["is_active"] for u in everyone] == [True, False, True]

    human = ok(cli("user", "list")).stdout
    assert "alice" in human and "carol" in human and "bob" not in human
    assert "2 active users" in human
    assert str(everyone[0]["id"]) in human  # whole ids, even when piped


def test_list_empty(cli: Cli) -> None:
    assert json.loads(ok(cli("user", "list", "--json")).stdout) == []


def test_show_by_username_or_uuid(cli: Cli) -> None:
    user = seed_user(cli, "alice", email="alice@example.com")
    by_name = json.loads(ok(cli("user", "show", "ALICE", "--json")).stdout)
    by_id = json.loads(ok(cli("user", "show", str(user.id), "--json")).stdout)
    assert by_name == by_id
    assert by_name["email"] == "alice@example.com"
    human = ok(cli("user", "show", "alice")).stdout
    assert str(user.id) in human and "alice@example.com" in human


# --- changes ----------------------------------------------------------------------


def test_disable_revokes_refresh_tokens_and_enable_restores(cli: Cli) -> None:
    user = seed_user(cli, "alice")
    jtis = seed_tokens(cli, user)

    result = ok(cli("user", "disable", "alice"))
    assert "revoked 2 refresh tokens" in result.stdout
    assert get_user(cli, "alice").is_active is False
    assert all(revoked(cli, jti) for jti in jtis)

    ok(cli("user", "enable", str(user.id)))
    assert get_user(cli, "alice").is_active is True


def test_set_password_from_stdin_revokes_refresh_tokens(cli: Cli) -> None:
    user = seed_user(cli, "alice")
    jtis = seed_tokens(cli, user, count=1)
    result = ok(
        cli("user", "set-password", "alice", "--password-stdin", input=NEW_PASSWORD)
    )
    assert "revoked 1 refresh token" in result.stdout
    stored = get_user(cli, "alice")
    assert stored is not None
    assert matches(NEW_PASSWORD, stored.password_hash)
    assert not matches(DEFAULT_PASSWORD, stored.password_hash)
    assert stored.password_changed_at > user.password_changed_at
    assert revoked(cli, jtis[0])


def test_set_password_by_prompt(cli: Cli, terminal: None) -> None:
    seed_user(cli, "alice")
    ok(cli("user", "set-password", "alice", input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"))
    stored = get_user(cli, "alice")
    assert stored is not None and matches(NEW_PASSWORD, stored.password_hash)


def test_set_password_refuses_a_weak_one(cli: Cli) -> None:
    user = seed_user(cli, "alice")
    jtis = seed_tokens(cli, user, count=1)
    line = one_error_line(
        cli("user", "set-password", "alice", "--password-stdin", input="short\n")
    )
    assert "at least 8 characters" in line
    stored = get_user(cli, "alice")
    assert stored is not None and matches(DEFAULT_PASSWORD, stored.password_hash)
    assert not revoked(cli, jtis[0])


def test_grant_and_revoke_admin(cli: Cli) -> None:
    seed_user(cli, "alice")
    assert "now an administrator" in ok(cli("user", "grant-admin", "alice")).stdout
    assert get_user(cli, "alice").is_admin is True
    ok(cli("user", "revoke-admin", "alice"))
    assert get_user(cli, "alice").is_admin is False


def test_delete_with_yes_removes_user_and_tokens(cli: Cli) -> None:
    user = seed_user(cli, "alice")
    jtis = seed_tokens(cli, user)
    assert "deleted alice" in ok(cli("user", "delete", "alice", "--yes")).stdout
    assert get_user(cli, "alice") is None
    assert cli.db(lambda s: RefreshTokenRepository(s).get(jtis[0])) is None


def test_delete_asks_first(cli: Cli) -> None:
    user = seed_user(cli, "alice")
    declined = cli("user", "delete", "ALICE", input="n\n")
    assert f"Delete user 'alice' (id {user.id})" in failed(declined)
    assert declined.stderr.splitlines()[-1] == "error: not confirmed, nothing changed"
    no_answer = failed(cli("user", "delete", "alice", input=""))
    assert no_answer.splitlines()[-1].startswith("error: no answer, nothing changed")
    assert get_user(cli, "alice") is not None
    ok(cli("user", "delete", "alice", input="y\n"))
    assert get_user(cli, "alice") is None


def test_delete_of_an_unknown_user_does_not_ask(cli: Cli) -> None:
    line = one_error_line(cli("user", "delete", "nobody", input="y\n"))
    assert line == "error: no user 'nobody'"


UNKNOWN_USER = {
    "show": ["show"],
    "disable": ["disable"],
    "enable": ["enable"],
    "grant-admin": ["grant-admin"],
    "revoke-admin": ["revoke-admin"],
    "delete": ["delete", "--yes"],
    "set-password": ["set-password", "--password-stdin"],
}


@pytest.mark.parametrize("args", list(UNKNOWN_USER.values()), ids=list(UNKNOWN_USER))
def test_unknown_user(cli: Cli, args: list[str]) -> None:
    line = one_error_line(cli("user", *args, "nobody", input=f"{NEW_PASSWORD}\n"))
    assert line == "error: no user 'nobody'"


def test_unknown_uuid(cli: Cli) -> None:
    seed_user(cli, "alice")
    ref = "00000000-0000-4000-8000-000000000000"
    assert one_error_line(cli("user", "show", ref)) == f"error: no user {ref!r}"


def test_user_without_command_shows_help_and_exits_2(cli: Cli) -> None:
    result = cli("user")
    assert result.exit_code == 2
    assert "grant-admin" in result.output
