"""Alembic migrations (a package so the installed project can find them)."""
