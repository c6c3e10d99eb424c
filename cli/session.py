"""authctl session: the browser sign-in sessions of the hosted login page.

Revoking a session signs that browser out: its next authorization request
asks for the password again (prompt=none gets login_required), and the tokens
apps got through its sign-ins (code exchanges) stop working. The user's
password-grant tokens live on; `authctl user disable` ends those too.
"""

from typing import Annotated, Any

import typer

from cli.common import open_unit_of_work, run
from cli.output import (
    JsonOpt,
    add_row,
    confirm,
    fail,
    plural,
    print_json,
    print_table,
    say,
    table,
    when,
)

app = typer.Typer(
    help="List and revoke browser sign-in sessions.\n\n"
    "Example: authctl session revoke --user alice",
    no_args_is_help=True,
)

UserOpt = Annotated[
    str | None,
    typer.Option("--user", metavar="USER", help="Only this user (username or UUID)."),
]


@app.command("list")
def list_sessions(user: UserOpt = None, as_json: JsonOpt = False) -> None:
    """List live sessions, newest sign-in first.

    Example: authctl session list --user alice --json
    """
    rows = run(_list(user))
    if as_json:
        print_json(rows)
        return
    grid = table("Session ID", "User", "Signed in", "Expires", "IP", "Browser")
    for row in rows:
        add_row(
            grid,
            row["id"],
            row["username"],
            row["auth_time"],
            row["expires_at"],
            row["ip"],
            row["user_agent"],
        )
    print_table(grid)
    say(plural(len(rows), "session"))


async def _list(user_ref: str | None) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from authserver.crud.login_session import LoginSessionRepository
    from authserver.crud.user import UserRepository
    from authserver.services.sessions import list_live
    from authserver.services.users import resolve_user

    async with open_unit_of_work() as uow:
        session = uow.session
        users = UserRepository(session)
        user_id = (await resolve_user(users, user_ref)).id if user_ref else None
        live = await list_live(
            LoginSessionRepository(session), now=datetime.now(UTC), user_id=user_id
        )
        names: dict[Any, str] = {}
        rows = []
        for login in live:
            if login.user_id not in names:
                owner = await users.get(login.user_id)
                names[login.user_id] = owner.username if owner else "?"
            rows.append(
                {
                    "id": str(login.id),
                    "user_id": str(login.user_id),
                    "username": names[login.user_id],
                    "auth_time": when(login.auth_time),
                    "expires_at": when(login.expires_at),
                    "ip": login.ip,
                    "user_agent": login.user_agent,
                }
            )
        return rows


@app.command("revoke")
def revoke(
    session_id: Annotated[
        str | None, typer.Argument(metavar="SESSION_ID", help="One session's id.")
    ] = None,
    user: UserOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """End one session, or every session of --user (asks first for --user),
    and revoke the tokens apps got through those sign-ins.

    Example: authctl session revoke 3f0c...  |  authctl session revoke --user alice
    """
    if (session_id is None) == (user is None):
        fail("give a SESSION_ID or --user, not both")
    if user is not None:
        confirm(f"Sign {user} out of every browser?", yes=yes)
    ended = run(_revoke(session_id, user))
    say(f"ended {plural(ended, 'session')}")


async def _revoke(session_id: str | None, user_ref: str | None) -> int:
    import uuid
    from datetime import UTC, datetime

    from authserver.core.exceptions import NotFoundError
    from authserver.crud.login_session import LoginSessionRepository
    from authserver.crud.user import UserRepository
    from authserver.services.sessions import sign_out, sign_out_everywhere
    from authserver.services.users import resolve_user

    now = datetime.now(UTC)
    async with open_unit_of_work() as uow:
        session = uow.session
        repo = LoginSessionRepository(session)
        if user_ref is not None:
            owner = await resolve_user(UserRepository(session), user_ref)
            return await sign_out_everywhere(uow, owner.id, at=now)
        assert session_id is not None
        try:
            login = await repo.get(uuid.UUID(session_id))
        except ValueError:
            login = None
        if login is None or login.ended_at is not None:
            raise NotFoundError(f"no live session {session_id!r}")
        return int(await sign_out(uow, login, at=now, event="session_revoked"))
