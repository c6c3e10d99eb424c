"""token families: a revocable row per login

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_families",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_token_families_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_token_families_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_families")),
    )
    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_families_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_token_families_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_token_families_user_id"), ["user_id"], unique=False
        )
    # Every family that has refresh tokens gets its row; one whose every token
    # is revoked starts revoked.
    op.execute(
        "INSERT INTO token_families"
        " (id, user_id, client_id, created_at, expires_at, revoked_at)"
        " SELECT family_id, user_id, client_id, MIN(issued_at),"
        " MAX(family_expires_at),"
        " CASE WHEN COUNT(*) = COUNT(revoked_at) THEN MAX(revoked_at) END"
        " FROM refresh_tokens GROUP BY family_id, user_id, client_id"
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("family_expires_at")


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("family_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE refresh_tokens SET family_expires_at = (SELECT expires_at"
        " FROM token_families WHERE token_families.id = refresh_tokens.family_id)"
    )
    op.execute(
        "UPDATE refresh_tokens SET family_expires_at = expires_at"
        " WHERE family_expires_at IS NULL"
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.alter_column("family_expires_at", nullable=False)

    with op.batch_alter_table("token_families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_token_families_user_id"))
        batch_op.drop_index(batch_op.f("ix_token_families_expires_at"))
        batch_op.drop_index(batch_op.f("ix_token_families_client_id"))

    op.drop_table("token_families")
