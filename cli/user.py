"""authctl user: create, list and manage user accounts.

Every rule (password policy, revoking refresh tokens on disable, delete and
password change) lives in authserver.services.users, shared with the API.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import build, check, open_unit_of_work, run, settings
from cli.output import (
    JsonOpt,
    add_row,
    confirm,
    fail,
    plural,
    print_details,
    print_json,
    print_table,
    say,
    table,
    when,
    yes_no,
)
from cli.parsing import SecretArgsCommand

if TYPE_CHECKING:
    from authserver.db.unit_of_work import UnitOfWork
    from authserver.models import User
    from authserver.schemas.user import UserCreate
    from authserver.services.users import UserService

    Action = Callable[[UserService, User], Awaitable[int | None]]

app = typer.Typer(
    help="Manage user accounts. USER is a username or a user id (UUID).\n\n"
    "Example: authctl user create alice --email alice@example.com",
    no_args_is_help=True,
)

UserArg = Annotated[str, typer.Argument(metavar="USER", help="Username or UUID.")]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input.",
    ),
]

# Schema field -> what the admin typed, for one-line validation errors.
FIELDS = {"username": "USERNAME", "email": "--email"}
HINTS = {"username": "use 1 to 150 letters, digits and . _ @ + -"}
PAGE_SIZE = 500


@app.command("create", cls=SecretArgsCommand)
def create(
    username: Annotated[
        str,
        typer.Argument(
            metavar="USERNAME", help="Login name: letters, digits and . _ @ + -"
        ),
    ],
    email: Annotated[
        str | None, typer.Option(metavar="EMAIL", help="Email address.")
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="Make the user an administrator.")
    ] = False,
    password_stdin: PasswordStdinOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user. Asks for the password twice (hidden) unless --password-stdin.

    A password is never taken as an argument: it would end up in the shell
    history and the process list.

    Example: authctl user create alice --email alice@example.com --admin

    Example: printf '%s\\n' "$PW" | authctl user create bot --password-stdin --json
    """
    from authserver.schemas.user import UserCreate

    fields = {"username": username, "email": email, "is_admin": admin}
    check(UserCreate, FIELDS, HINTS, later="password", **fields)
    password = read_password(password_stdin, lambda: _check_free(username))
    data = build(UserCreate, FIELDS, HINTS, password=password, **fields)
    user = run(_create(data))
    if as_json:
        print_json(user)
        return
    role = "administrator" if user["is_admin"] else "user"
    say(f"created {role} {user['username']} (id {user['id']})")


async def _check_free(username: str) -> None:
    from authserver.core.exceptions import AlreadyExistsError
    from authserver.crud.user import UserRepository

    async with open_unit_of_work() as uow:
        if await UserRepository(uow.session).get_by_username(username) is not None:
            raise AlreadyExistsError(f"username {username!r} is taken")


async def _create(data: UserCreate) -> dict[str, Any]:
    async with open_unit_of_work() as uow:
        return user_json(await user_service(uow).create(data))


@app.command("list")
def list_users(
    show_all: Annotated[
        bool, typer.Option("--all", help="Include disabled users.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List users, ordered by username (active users only unless --all).

    Example: authctl user list --all --json
    """
    users = run(_list(show_all))
    if as_json:
        print_json(users)
        return
    grid = table("Username", "Email", "Active", "Admin", "Created", "ID")
    for user in users:
        add_row(
            grid,
            user["username"],
            user["email"],
            yes_no(user["is_active"]),
            yes_no(user["is_admin"]),
            user["created_at"],
            user["id"],
        )
    print_table(grid)
    if show_all:
        say(plural(len(users), "user"))
    else:
        say(f"{plural(len(users), 'active user')} (--all shows disabled ones too)")


async def _list(show_all: bool) -> list[dict[str, Any]]:
    from authserver.crud.user import UserRepository

    repo_filter = None if show_all else True
    users: list[dict[str, Any]] = []
    async with open_unit_of_work() as uow:
        repo = UserRepository(uow.session)
        while True:
            page, total = await repo.list(
                offset=len(users), limit=PAGE_SIZE, is_active=repo_filter
            )
            users.extend(user_json(user) for user in page)
            if not page or len(users) >= total:
                return users


@app.command("show")
def show(user_ref: UserArg, as_json: JsonOpt = False) -> None:
    """Show one user's account.

    Example: authctl user show alice
    """
    user = run(_apply(user_ref, None))[0]
    if as_json:
        print_json(user)
        return
    print_details(
        {
            "id": user["id"],
            "username": user["username"],
            "email": user["email"],
            "email verified": yes_no(user["email_verified"]),
            "active": yes_no(user["is_active"]),
            "admin": yes_no(user["is_admin"]),
            "created": user["created_at"],
            "updated": user["updated_at"],
            "password changed": user["password_changed_at"],
            "failed logins": user["failed_logins"],
            "locked until": user["locked_until"],
        }
    )


@app.command("disable")
def disable(user_ref: UserArg) -> None:
    """Disable a user: no new logins, and every refresh token is revoked.

    Access tokens already issued are self-contained: resource servers that
    check them locally accept them until they expire.

    Example: authctl user disable alice
    """
    user, revoked = run(_apply(user_ref, lambda s, u: s.set_active(u, False)))
    say(f"disabled {user['username']}; revoked {_tokens(revoked)}")


@app.command("enable")
def enable(user_ref: UserArg) -> None:
    """Enable a disabled user again.

    Example: authctl user enable alice
    """
    user, _ = run(_apply(user_ref, lambda s, u: s.set_active(u, True)))
    say(f"enabled {user['username']}")


@app.command("unlock")
def unlock(user_ref: UserArg) -> None:
    """Lift a brute-force lock and reset the failed-login count.

    Example: authctl user unlock alice
    """

    async def clear(service: UserService, user: User) -> None:
        await service.unlock(user)

    user, _ = run(_apply(user_ref, clear))
    say(f"unlocked {user['username']}")


@app.command("set-password", cls=SecretArgsCommand)
def set_password(user_ref: UserArg, password_stdin: PasswordStdinOpt = False) -> None:
    """Set a new password (asked twice, hidden); revokes every refresh token.

    Example: authctl user set-password alice
    """
    from authserver.schemas.account import PasswordSet

    password = read_password(password_stdin, lambda: _apply(user_ref, None))
    new = build(PasswordSet, password=password)

    async def change(service: UserService, user: User) -> int:
        return await service.set_password(user, new)

    user, revoked = run(_apply(user_ref, change))
    say(f"password of {user['username']} changed; revoked {_tokens(revoked)}")


@app.command("grant-admin")
def grant_admin(user_ref: UserArg) -> None:
    """Make a user an administrator (may then be granted the admin scope).

    Example: authctl user grant-admin alice
    """
    user, _ = run(_apply(user_ref, _admin(True)))
    say(f"{user['username']} is now an administrator")


@app.command("revoke-admin")
def revoke_admin(user_ref: UserArg) -> None:
    """Take administrator rights away; the next refresh drops the admin scope.

    Example: authctl user revoke-admin alice
    """
    user, _ = run(_apply(user_ref, _admin(False)))
    say(f"{user['username']} is no longer an administrator")


@app.command("delete")
def delete(
    user_ref: UserArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a user and their refresh tokens, for good (asks first).

    Example: authctl user delete alice --yes
    """
    if not yes:
        # An unknown USER fails before the question; the answer then applies
        # to this very account, by id, even if its username changes meanwhile.
        found, _ = run(_apply(user_ref, None))
        question = f"Delete user {found['username']!r} (id {found['id']})"
        confirm(f"{question} and all their refresh tokens?", yes=False)
        user_ref = found["id"]

    async def remove(service: UserService, user: User) -> None:
        await service.delete(user)

    user, _ = run(_apply(user_ref, remove))
    say(f"deleted {user['username']} (id {user['id']})")


async def _apply(
    user_ref: str, action: Action | None
) -> tuple[dict[str, Any], int | None]:
    """Resolve USER and run one service operation (which commits it)."""
    async with open_unit_of_work() as uow:
        service = user_service(uow)
        user = await service.resolve(user_ref)
        result = await action(service, user) if action else None
        return user_json(user), result  # every column is loaded, even once deleted


def _admin(flag: bool) -> Action:
    async def change(service: UserService, user: User) -> None:
        await service.set_admin(user, flag)

    return change


def user_service(uow: UnitOfWork) -> UserService:
    from authserver.services.passwords import PasswordHasher
    from authserver.services.users import UserService

    return UserService.over(uow, PasswordHasher(settings().bcrypt_rounds))


def _tokens(count: int | None) -> str:
    return plural(count or 0, "refresh token")


TIMES = ("created_at", "updated_at", "password_changed_at", "locked_until")


def user_json(user: User) -> dict[str, Any]:
    """The API's UserRead, with authctl's one timestamp format."""
    from authserver.schemas.user import UserRead

    data = UserRead.model_validate(user).model_dump(mode="json")
    return {**data, **{name: when(data[name]) for name in TIMES}}


def read_password(
    from_stdin: bool, precheck: Callable[[], Coroutine[Any, Any, object]]
) -> str:
    """The new password: a hidden prompt asked twice, or stdin's first line.

    `precheck` runs before the prompt: whatever would refuse the password (a
    taken username, an unknown user, the database) fails before it is typed.
    """
    settings()  # a broken configuration fails before anyone types a password
    if from_stdin:
        if stdin_is_terminal():
            # readline() would echo the password on the terminal as it is typed.
            fail("--password-stdin reads a pipe; at a terminal, leave it out")
        # Only the line ending is stripped: spaces may be part of the password.
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            fail("no password on standard input")
        return password
    if not stdin_is_terminal():
        # getpass would read the pipe (or find nothing there) with a warning
        # that the password may be echoed; a script wants --password-stdin.
        fail("no terminal to ask for the password; use --password-stdin")
    run(precheck())
    prompted: str = typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True
    )
    return prompted


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()
