"""search vector carries the seller's time buckets

The relevance window (the newest matches of a query, ranked) is read stage by stage, newest hours
first; each stage intersects the query's lexemes with the seller's hour buckets inside the GIN
index, so Postgres visits only the rows that match both (see app/interactions/search.py).

Revision ID: 5e1f2a7c9b40
Revises: 056703111dc8
Create Date: 2026-11-22 03:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e1f2a7c9b40"
down_revision: str | None = "056703111dc8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = (
    "to_tsvector('russian'::regconfig, coalesce(text, '') || ' ' || coalesce(pros, '') || ' ' || "
    "coalesce(cons, '') || ' ' || coalesce(product_name, '') || ' ' || "
    "coalesce(customer_name, ''))"
)

# Upper-case lexemes: to_tsvector and websearch_to_tsquery lower-case everything, so no text and
# no user query can produce or match one. 'T<seller>S<shift>B<hour >> shift>' for shifts
# 0, 2, …, 16: blocks of 1, 4, 16, … 65,536 hours (7.5 years).
TIME_LEXEMES = """
CREATE FUNCTION interaction_time_lexemes(seller bigint, at timestamptz) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_tsvector(array_agg('T' || seller || 'S' || shift || 'B' || (hour >> shift)))
    FROM (SELECT floor(extract(epoch FROM at) / 3600)::bigint AS hour) AS h,
         generate_series(0, 16, 2) AS shift
$$
"""


def _search_vector(expression: str) -> None:
    op.drop_index("ix_interactions_search", table_name="interactions", postgresql_using="gin")
    op.drop_column("interactions", "search_vector")
    op.add_column(
        "interactions",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(expression, persisted=True),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_interactions_search",
        "interactions",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )


def upgrade() -> None:
    op.execute(TIME_LEXEMES)
    _search_vector(f"{DOCUMENT} || interaction_time_lexemes(seller_id, occurred_at)")


def downgrade() -> None:
    _search_vector(DOCUMENT)
    op.execute("DROP FUNCTION interaction_time_lexemes(bigint, timestamptz)")
