"""card context indexes

The card's product context read a best-seller's newest items through ix_interactions_seller_nm
and filtered them: past a thousand other-channel items for the newest reviews, past thousands of
unanswered ones for the seller's last answers, and a thousand heap rows for the typical intents.
Per channel (intent and rating included: the intents are read from the index alone), and the
answered items on their own, each part is an exact index range.

Revision ID: adab1f1c9c72
Revises: 5e1f2a7c9b40
Create Date: 2026-11-22 03:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "adab1f1c9c72"
down_revision: str | None = "5e1f2a7c9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app.interactions.models.ANSWERED at the time of this revision.
ANSWERED = "channel IN ('review', 'question') AND status IN ('responded', 'pending_reply')"


def upgrade() -> None:
    op.create_index(
        "ix_interactions_seller_nm_channel",
        "interactions",
        ["seller_id", "nm_id", "channel", "occurred_at"],
        unique=False,
        postgresql_include=["intent", "rating"],
    )
    op.create_index(
        "ix_interactions_seller_nm_answered",
        "interactions",
        ["seller_id", "nm_id", "occurred_at"],
        unique=False,
        postgresql_where=sa.text(ANSWERED),
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_seller_nm_answered", table_name="interactions")
    op.drop_index("ix_interactions_seller_nm_channel", table_name="interactions")
