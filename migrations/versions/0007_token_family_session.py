"""token families remember the login session a code exchange made them from

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Families made before this revision stay unbound (only their codes named
    # the session, and codes are purged once expired): ending that session
    # leaves them to their own lifetime.
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_token_families_session_id"), ["session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_families_session_id"))
        batch_op.drop_column("session_id")
