"""authctl audit: read the security audit trail."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import open_unit_of_work, run
from cli.output import JsonOpt, add_row, fail, print_json, print_table, table, when
from cli.user import user_service

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from authserver.models import AuditEvent
    from authserver.services.users import UserService

app = typer.Typer(
    help="Read the security audit trail (logins, reuse detections, admin changes).\n\n"
    "Example: authctl audit list --user alice --since 24h",
    no_args_is_help=True,
)

# The actor of an API call made with a user's token (see core/context.py).
ACTOR_USER = "user:"
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
AGE = re.compile(r"([0-9]+)([smhd])")  # ASCII digits only: int() takes "²" too


@app.command("list")
def list_events(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            metavar="USER",
            help="Only events about this user: a username, or a user id "
            "(also of a deleted user).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="Only newer events: an ISO time or an age like 30m, 24h, 7d.",
        ),
    ] = None,
    event: Annotated[
        str | None,
        typer.Option(metavar="EVENT", help="Only this kind, e.g. login_failed."),
    ] = None,
    limit: Annotated[
        int, typer.Option(metavar="N", min=1, max=10_000, help="Most events shown.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Show audit events, newest first.

    Example: authctl audit list --user alice --since 7d --json
    """
    start = _parse_since(since) if since is not None else None
    events = run(_list(user, start, event, limit))
    if as_json:
        print_json(events)
        return
    grid = table(
        "Time", "Event", "Actor", "Subject", "Username", "Client", "IP", "Request ID"
    )
    for item in events:
        actor = item["actor"]
        if item["actor_username"] is not None:
            actor = f"{actor} ({item['actor_username']})"
        add_row(
            grid,
            item["at"],
            item["event"],
            actor,
            item["subject"],
            item["subject_username"],
            item["client_id"],
            item["ip"],
            item["request_id"],
        )
    print_table(grid)


async def _list(
    user_ref: str | None, since: datetime | None, event: str | None, limit: int
) -> list[dict[str, Any]]:
    from authserver.crud.audit import AuditRepository

    async with open_unit_of_work() as uow:
        subject = None
        if user_ref is not None:
            subject = await _subject(user_ref, user_service(uow))
        rows = await AuditRepository(uow.session).list(
            subject=subject, since=since, event=event, limit=limit
        )
        names = await _usernames(uow.session, rows)
        return [_json(row, names) for row in rows]


async def _subject(user_ref: str, service: UserService) -> str:
    """The subject id of USER's events: a user id as given, for the trail of a
    deleted user outlives the account; a username through the users table."""
    try:
        return str(uuid.UUID(user_ref))  # usernames may not look like UUIDs
    except ValueError:
        return str((await service.resolve(user_ref)).id)


async def _usernames(
    session: AsyncSession, rows: Sequence[AuditEvent]
) -> dict[str, str]:
    """Username by user id, for the ids the rows name as subject or actor."""
    from authserver.crud.user import UserRepository

    texts = [row.subject for row in rows] + [_actor_id(row.actor) for row in rows]
    ids = {user_id for text in texts if (user_id := _user_id(text)) is not None}
    found = await UserRepository(session).get_usernames(ids)
    return {str(user_id): name for user_id, name in found.items()}


def _actor_id(actor: str | None) -> str | None:
    """The user id in a "user:<id>" actor, else None."""
    if actor and actor.startswith(ACTOR_USER):
        return actor.removeprefix(ACTOR_USER)
    return None


def _user_id(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text else None
    except ValueError:  # a client_id (client credentials), not a user
        return None


def _username(text: str | None, names: dict[str, str]) -> str | None:
    user_id = _user_id(text)
    return names.get(str(user_id)) if user_id else None


def _json(row: AuditEvent, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": when(row.at),
        "event": row.event,
        "actor": row.actor,
        "actor_username": _username(_actor_id(row.actor), names),
        "subject": row.subject,
        "subject_username": _username(row.subject, names),
        "client_id": row.client_id,
        "ip": row.ip,
        "request_id": row.request_id,
        "detail": row.detail,
    }


def _parse_since(value: str) -> datetime:
    age = AGE.fullmatch(value)
    try:
        if age:
            return datetime.now(UTC) - timedelta(**{UNITS[age[2]]: int(age[1])})
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        fail(f"--since {value!r}: out of range")
    except ValueError:  # also int() of more than 4300 digits
        fail(
            f"--since {value!r}: use an ISO time (2026-01-31T12:00) or an age "
            "(30m, 24h, 7d)"
        )
