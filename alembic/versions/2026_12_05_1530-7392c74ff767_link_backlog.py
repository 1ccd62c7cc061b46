"""link backlog: interactions whose links are still to be computed, committed with them

A sync page (or a seed, or `POST /links/recompute`) records its new interactions here in its own
transaction; one coalesced `links.recompute` task per seller drains the rows in the transaction
that writes their links. NULL `interaction_id`: every interaction of the seller.

Revision ID: 7392c74ff767
Revises: b7c41e9d2a05
Create Date: 2026-12-05 15:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7392c74ff767"
down_revision: str | None = "b7c41e9d2a05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_backlog",
        sa.Column("seller_id", sa.BigInteger(), nullable=False),
        sa.Column("interaction_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["seller_id"],
            ["sellers.id"],
            name=op.f("fk_link_backlog_seller_id_sellers"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "seller_id",
            "interaction_id",
            name=op.f("uq_link_backlog_seller_id_interaction_id"),
            postgresql_nulls_not_distinct=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("link_backlog")
