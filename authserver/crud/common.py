"""Helpers the repositories share."""

from sqlalchemy import CursorResult


def rowcount(result: object) -> int:
    """Rows an UPDATE, DELETE or INSERT touched (the result of session.execute)."""
    assert isinstance(result, CursorResult)
    return result.rowcount
