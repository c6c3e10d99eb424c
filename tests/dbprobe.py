"""Is anyone holding the database? Asked from outside, at the moment bcrypt starts.

`watch_hashes` wraps the password hasher so that each hash or verify first
asks the database, over a connection of its own, whether some session has a
transaction open: on SQLite, whether the one write lock is free (BEGIN
IMMEDIATE with no waiting); on PostgreSQL, whether any other backend is inside
a transaction. Run requests one at a time, so any holder is the code under test.
"""

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from authserver.services.passwords import PasswordHasher


async def database_holder(database_url: str) -> str | None:
    """What holds the database right now, or None when nothing does."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        connection = sqlite3.connect(url.database, timeout=0, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
            return None
        except sqlite3.OperationalError as exc:  # "database is locked"
            return f"sqlite write lock taken ({exc})"
        finally:
            connection.close()
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT state, left(query, 80) AS query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND xact_start IS NOT NULL"
        )
    finally:
        await connection.close()
    if not rows:
        return None
    return "; ".join(f"{row['state']}: {row['query']}" for row in rows)


@dataclass
class HashWatch:
    calls: list[str] = field(default_factory=list)  # "hash" / "verify", in order
    held: list[str] = field(default_factory=list)  # what held the database, per call


def watch_hashes(monkeypatch: pytest.MonkeyPatch, database_url: str) -> HashWatch:
    """Probe the database at the start of every PasswordHasher hash and verify."""
    watch = HashWatch()
    for name in ("hash", "verify"):
        original = getattr(PasswordHasher, name)

        async def probed(
            self: PasswordHasher,
            *args: Any,
            _name: str = name,
            _original: Any = original,
        ) -> Any:
            watch.calls.append(_name)
            holder = await database_holder(database_url)
            if holder is not None:
                watch.held.append(f"{_name}: {holder}")
            return await _original(self, *args)

        monkeypatch.setattr(PasswordHasher, name, probed)
    return watch
