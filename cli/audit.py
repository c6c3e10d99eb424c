"""authctl audit: read the security audit trail."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from authserver.crud.audit import AuditRepository
from authserver.models import AuditEvent
from authserver.services.users import UserService
from cli.common import (
    JsonOpt,
    add_row,
    fail,
    open_unit_of_work,
    print_json,
    print_table,
    run,
    table,
    when,
)
from cli.user import user_service

app = typer.Typer(
    help="Read the security audit trail (logins, reuse detections, admin changes).\n\n"
    "Example: authctl audit list --user alice --since 24h",
    no_args_is_help=True,
)

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
AGE = re.compile(r"([0-9]+)([smhd])")  # ASCII digits only: int() takes "²" too


@app.command("list")
def list_events(
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="Only events about this user: a username, or a user id "
            "(also of a deleted user).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only newer events: an ISO time or an age like 30m, 24h, 7d."
        ),
    ] = None,
    event: Annotated[
        str | None, typer.Option(help="Only this kind, e.g. login_failed.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Most events shown.")
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
    grid = table("at", "event", "actor", "subject", "client", "ip", "request id")
    for item in events:
        add_row(
            grid,
            when(datetime.fromisoformat(item["at"])),
            item["event"],
            item["actor"],
            item["subject"],
            item["client_id"],
            item["ip"],
            item["request_id"],
        )
    print_table(grid)


async def _list(
    user_ref: str | None, since: datetime | None, event: str | None, limit: int
) -> list[dict[str, Any]]:
    async with open_unit_of_work() as uow:
        subject = None
        if user_ref is not None:
            subject = await _subject(user_ref, user_service(uow))
        rows = await AuditRepository(uow.session).list(
            subject=subject, since=since, event=event, limit=limit
        )
        return [_json(row) for row in rows]


async def _subject(user_ref: str, service: UserService) -> str:
    """The subject id of USER's events: a user id as given, for the trail of a
    deleted user outlives the account; a username through the users table."""
    try:
        return str(uuid.UUID(user_ref))  # usernames may not look like UUIDs
    except ValueError:
        return str((await service.resolve(user_ref)).id)


def _json(row: AuditEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "event": row.event,
        "actor": row.actor,
        "subject": row.subject,
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
