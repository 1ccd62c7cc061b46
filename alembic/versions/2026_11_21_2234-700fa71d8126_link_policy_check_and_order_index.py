"""link policy check and order index

Revision ID: 700fa71d8126
Revises: 7ed56fea1021
Create Date: 2026-11-21 22:34:12.294570+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "700fa71d8126"
down_revision: str | None = "7ed56fea1021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_seller_order",
        "interactions",
        ["seller_id", "order_id"],
        unique=False,
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
    op.create_check_constraint(
        op.f("ck_link_candidates_c_is_probabilistic"),
        "link_candidates",
        "level <> 'C' OR NOT deterministic",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_link_candidates_c_is_probabilistic"), "link_candidates", type_="check"
    )
    op.drop_index(
        "ix_interactions_seller_order",
        table_name="interactions",
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
