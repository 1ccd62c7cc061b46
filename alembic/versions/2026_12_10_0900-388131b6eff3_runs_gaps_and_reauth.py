"""sync runs resumable, sync gaps, accounts that need re-authorisation

- sync_runs: `gaps`, `resumes`, `published_at`, and a partial index on the unfinished runs.
- sync_gaps: windows the marketplace's caps kept a sync from reading completely.
- marketplace_accounts: `status` (active | needs_reauth) with `status_since`; `last_error`
  becomes `status_reason` (an account with one was refused: it starts as needs_reauth).
- account_events: each change of an account's status.

Revision ID: 388131b6eff3
Revises: 7392c74ff767
Create Date: 2026-12-10 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "388131b6eff3"
down_revision: str | None = "7392c74ff767"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _sync_runs()
    _sync_gaps()
    _accounts()
    _account_events()


def _sync_runs() -> None:
    for name in ("gaps", "resumes"):
        op.add_column(
            "sync_runs", sa.Column(name, sa.Integer(), server_default="0", nullable=False)
        )
    op.add_column("sync_runs", sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_sync_runs_active",
        "sync_runs",
        ["seller_id", "channel"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def _sync_gaps() -> None:
    op.create_table(
        "sync_gaps",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("marketplace", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("list_name", sa.String(length=16), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("last_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "found_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "checked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("channel IN ('review', 'question')", name=op.f("ck_sync_gaps_channel")),
        sa.CheckConstraint(
            "list_name IN ('unanswered', 'answered')", name=op.f("ck_sync_gaps_list_name")
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_sync_gaps_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_gaps_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_gaps_last_run_id_sync_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_gaps")),
    )
    op.create_index(op.f("ix_sync_gaps_run_id"), "sync_gaps", ["run_id"], unique=False)
    op.create_index(op.f("ix_sync_gaps_last_run_id"), "sync_gaps", ["last_run_id"], unique=False)
    op.create_index(
        "uq_sync_gaps_open_window",
        "sync_gaps",
        ["seller_id", "marketplace", "channel", "list_name", "window_from", "window_to"],
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def _accounts() -> None:
    op.alter_column("marketplace_accounts", "last_error", new_column_name="status_reason")
    op.add_column(
        "marketplace_accounts",
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
    )
    op.add_column(
        "marketplace_accounts",
        sa.Column("status_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute(
        "UPDATE marketplace_accounts SET status = 'needs_reauth', status_since = updated_at "
        "WHERE status_reason IS NOT NULL"
    )
    op.create_check_constraint(
        op.f("ck_marketplace_accounts_status"),
        "marketplace_accounts",
        "status IN ('active', 'needs_reauth')",
    )


def _account_events() -> None:
    op.create_table(
        "account_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("marketplace", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('needs_reauth', 'reauthorised')", name=op.f("ck_account_events_kind")
        ),
        sa.CheckConstraint(
            "source IN ('sync', 'reply', 'check', 'rotation')",
            name=op.f("ck_account_events_source"),
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_account_events_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["marketplace_accounts.id"],
            name=op.f("fk_account_events_account_id_marketplace_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_events")),
    )
    op.create_index(
        op.f("ix_account_events_account_id"), "account_events", ["account_id"], unique=False
    )
    op.create_index(
        "ix_account_events_seller_created",
        "account_events",
        ["seller_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("account_events")
    op.drop_constraint(
        op.f("ck_marketplace_accounts_status"), "marketplace_accounts", type_="check"
    )
    op.drop_column("marketplace_accounts", "status_since")
    op.drop_column("marketplace_accounts", "status")
    op.alter_column("marketplace_accounts", "status_reason", new_column_name="last_error")
    op.drop_table("sync_gaps")
    op.drop_index(
        "ix_sync_runs_active",
        table_name="sync_runs",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    for name in ("published_at", "resumes", "gaps"):
        op.drop_column("sync_runs", name)
