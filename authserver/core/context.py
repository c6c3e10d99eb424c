"""Who and where: per-request (or per-command) context for audit records."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Origin:
    """The actor behind the current operation and where it came from."""

    actor: str | None = None  # "user:<uuid>", "client:<id>", "cli:<os user>"
    ip: str | None = None


current_origin: ContextVar[Origin] = ContextVar("current_origin", default=Origin())
