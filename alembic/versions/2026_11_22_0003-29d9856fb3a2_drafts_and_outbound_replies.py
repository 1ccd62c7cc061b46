"""drafts and outbound replies

Revision ID: 29d9856fb3a2
Revises: 700fa71d8126
Create Date: 2026-11-22 00:03:48.060686+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "29d9856fb3a2"
down_revision: str | None = "700fa71d8126"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("interaction_id", sa.BigInteger(), nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("fallback_reason", sa.String(length=300), nullable=True),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_drafts_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_drafts_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_drafts_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_drafts")),
    )
    op.create_index(op.f("ix_drafts_seller_id"), "drafts", ["seller_id"], unique=False)
    op.create_table(
        "outbound_replies",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("interaction_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_by", sa.String(length=8), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("draft_text", sa.Text(), nullable=True),
        sa.Column("quality", sa.String(length=16), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("action IN ('answer', 'edit')", name=op.f("ck_outbound_replies_action")),
        sa.CheckConstraint(
            "quality IS NULL OR quality IN ('draft_accepted', 'draft_edited', 'reply_manual')",
            name=op.f("ck_outbound_replies_quality"),
        ),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed', 'dead')",
            name=op.f("ck_outbound_replies_state"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_outbound_replies_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_outbound_replies_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_outbound_replies_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_replies")),
        sa.UniqueConstraint(
            "seller_id",
            "idempotency_key",
            name=op.f("uq_outbound_replies_seller_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_outbound_replies_due",
        "outbound_replies",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("state IN ('queued', 'sending', 'failed')"),
    )
    op.create_index(
        "ix_outbound_replies_interaction",
        "outbound_replies",
        ["interaction_id", "id"],
        unique=False,
    )
    op.create_index(
        "uq_outbound_replies_one_answer",
        "outbound_replies",
        ["interaction_id", "action"],
        unique=True,
        postgresql_where=sa.text("channel <> 'chat' AND state <> 'dead'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_outbound_replies_one_answer",
        table_name="outbound_replies",
        postgresql_where=sa.text("channel <> 'chat' AND state <> 'dead'"),
    )
    op.drop_index("ix_outbound_replies_interaction", table_name="outbound_replies")
    op.drop_index(
        "ix_outbound_replies_due",
        table_name="outbound_replies",
        postgresql_where=sa.text("state IN ('queued', 'sending', 'failed')"),
    )
    op.drop_table("outbound_replies")
    op.drop_index(op.f("ix_drafts_seller_id"), table_name="drafts")
    op.drop_table("drafts")
