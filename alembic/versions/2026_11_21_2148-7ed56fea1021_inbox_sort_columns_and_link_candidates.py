"""inbox sort columns and link candidates

Revision ID: 7ed56fea1021
Revises: df9870588b15
Create Date: 2026-11-21 21:48:20.317949+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7ed56fea1021"
down_revision: str | None = "df9870588b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_candidates",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("deterministic", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Numeric(precision=4, scale=3, asdecimal=False), nullable=False),
        sa.Column("band", sa.String(length=8), nullable=False),
        sa.Column("match_reason", sa.String(length=64), nullable=False),
        sa.Column(
            "signals", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
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
        sa.CheckConstraint(
            "band IN ('high', 'medium', 'low')", name=op.f("ck_link_candidates_band")
        ),
        sa.CheckConstraint("level IN ('A', 'B', 'C')", name=op.f("ck_link_candidates_level")),
        sa.CheckConstraint(
            "confidence BETWEEN 0 AND 1", name=op.f("ck_link_candidates_confidence")
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_link_candidates_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["interactions.id"],
            name=op.f("fk_link_candidates_source_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["interactions.id"],
            name=op.f("fk_link_candidates_target_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_candidates")),
        sa.UniqueConstraint(
            "source_id", "target_id", name=op.f("uq_link_candidates_source_id_target_id")
        ),
    )
    op.create_index(
        "ix_link_candidates_seller_source",
        "link_candidates",
        ["seller_id", "source_id", "confidence"],
        unique=False,
    )
    op.create_index(
        op.f("ix_link_candidates_target_id"), "link_candidates", ["target_id"], unique=False
    )
    op.add_column(
        "interactions",
        sa.Column(
            "priority_rank",
            sa.SmallInteger(),
            sa.Computed(
                "CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END",
                persisted=True,
            ),
            nullable=False,
        ),
    )
    op.add_column(
        "interactions",
        sa.Column(
            "sla_sort_at",
            sa.DateTime(timezone=True),
            sa.Computed("coalesce(sla_due_at, 'infinity'::timestamptz)", persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_interactions_seller_assignee",
        "interactions",
        ["seller_id", "assignee_id"],
        unique=False,
    )
    op.create_index(
        "ix_interactions_seller_priority_sla",
        "interactions",
        ["seller_id", "priority_rank", "sla_sort_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_interactions_seller_status_priority_sla",
        "interactions",
        ["seller_id", "status", "priority_rank", "sla_sort_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_seller_status_priority_sla", table_name="interactions")
    op.drop_index("ix_interactions_seller_priority_sla", table_name="interactions")
    op.drop_index("ix_interactions_seller_assignee", table_name="interactions")
    op.drop_column("interactions", "sla_sort_at")
    op.drop_column("interactions", "priority_rank")
    op.drop_index(op.f("ix_link_candidates_target_id"), table_name="link_candidates")
    op.drop_index("ix_link_candidates_seller_source", table_name="link_candidates")
    op.drop_table("link_candidates")
