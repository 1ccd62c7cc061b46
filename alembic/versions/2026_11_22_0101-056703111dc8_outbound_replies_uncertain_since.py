"""outbound replies uncertain since

Revision ID: 056703111dc8
Revises: 29d9856fb3a2
Create Date: 2026-11-22 01:01:38.056734+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "056703111dc8"
down_revision: str | None = "29d9856fb3a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "outbound_replies", sa.Column("uncertain_since", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("outbound_replies", "uncertain_since")
