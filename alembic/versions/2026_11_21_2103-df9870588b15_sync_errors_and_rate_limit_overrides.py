"""sync errors and rate limit overrides

Revision ID: df9870588b15
Revises: 2e3b5b499519
Create Date: 2026-11-21 21:03:26.155366+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "df9870588b15"
down_revision: str | None = "2e3b5b499519"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_errors",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_errors_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_sync_errors_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_errors")),
    )
    op.create_index(op.f("ix_sync_errors_run_id"), "sync_errors", ["run_id"], unique=False)
    op.create_index(
        "ix_sync_errors_seller_created", "sync_errors", ["seller_id", "created_at"], unique=False
    )
    op.add_column(
        "seller_settings",
        sa.Column(
            "rate_limits",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("seller_settings", "rate_limits")
    op.drop_index("ix_sync_errors_seller_created", table_name="sync_errors")
    op.drop_index(op.f("ix_sync_errors_run_id"), table_name="sync_errors")
    op.drop_table("sync_errors")
