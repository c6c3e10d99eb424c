"""a retried refresh is re-signed from its records, not stored sealed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The scope the rotation's access token got (a refresh may narrow it): a
    # retry of the same request gets the same answer re-signed, one of another
    # scope is reuse. retry_blob stays for the sealed answers of rotations made
    # before this revision (still answered, for their retry window) and for
    # servers of the previous release during a rolling upgrade.
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_scope", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("retry_scope")
