"""search: the seller's words per 16-hour block, and its word pairs, in a GIN index of their own

The relevance window of a rare query used to walk the dense recent hours through the hour
buckets of `search_vector`: a stage intersects the query's lexemes with a bucket that holds
every row of its hours, so its cost grows with the rows in the range, not with the matches.
A block lexeme '<seller>:<block>:<word>' holds only the rows of one 16-hour block that contain
the word, so a stage over a few blocks costs what the query's own words cost there. A pair
'<seller>::<word> <next word>' (adjacent positions) narrows a phrase to the rows that hold its
words side by side: without it, six of seven rows holding both words of the benchmark's phrase
were read and rejected (see app/interactions/search.py).

Revision ID: b7c41e9d2a05
Revises: adab1f1c9c72
Create Date: 2026-12-04 06:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7c41e9d2a05"
down_revision: str | None = "adab1f1c9c72"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The document's words of `search_vector` (the upper-case hour buckets left out), each prefixed
# with the seller and the row's 16-hour block (hour >> 4, the hours of search_vector's buckets),
# and each pair of words at adjacent positions, prefixed with the seller. PL/pgSQL: the same in
# one SQL statement (unnest, a self-join on positions) cost twice as much per row.
BLOCK_LEXEMES = """
CREATE FUNCTION interaction_block_lexemes(seller bigint, at timestamptz, doc tsvector)
RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    block text := seller || ':' || (floor(extract(epoch FROM at) / 3600)::bigint >> 4) || ':';
    word_at text[] := '{}';
    terms text[] := '{}';
    w record;
    p int;
BEGIN
    FOR w IN SELECT lexeme, positions FROM unnest(doc) WHERE lexeme NOT LIKE 'T%' LOOP
        terms := terms || (block || w.lexeme);
        IF w.positions IS NOT NULL THEN
            FOREACH p IN ARRAY w.positions LOOP
                word_at[p] := w.lexeme;
            END LOOP;
        END IF;
    END LOOP;
    FOR p IN coalesce(array_lower(word_at, 1), 1) .. coalesce(array_upper(word_at, 1), 0) - 1 LOOP
        IF word_at[p] IS NOT NULL AND word_at[p + 1] IS NOT NULL THEN
            terms := terms || (seller || '::' || word_at[p] || ' ' || word_at[p + 1]);
        END IF;
    END LOOP;
    RETURN array_to_tsvector(terms);
END
$$
"""

# The query for the blocks first..last: the part of `q` an index can search (`querytree`: no
# negation), each lexeme an OR of its block lexemes, a phrase's distance operators as AND, and
# for two words side by side ('a' <-> 'b') their pair as well. Rows that match `q` match it,
# so it finds candidates and `q` itself decides. NULL when nothing of `q` can be searched (only
# negations, or no lexeme at all).
BLOCK_QUERY = r"""
CREATE FUNCTION interaction_block_query(q tsquery, seller bigint, first_block bigint,
                                        last_block bigint)
RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT string_agg(
               CASE
                   WHEN token[1] IS NOT NULL THEN (
                       SELECT '(' || string_agg(
                                  '''' || seller || ':' || block || ':' || token[1] || ''''
                                  || coalesce(':' || token[2], ''), ' | ') || ')'
                       FROM generate_series(first_block, last_block) AS block)
                   WHEN token[3] = '<->' AND before[1] IS NOT NULL AND before[2] IS NULL
                        AND after[1] IS NOT NULL AND after[2] IS NULL
                       THEN '& ''' || seller || '::' || before[1] || ' ' || after[1] || ''' &'
                   WHEN token[3] IS NOT NULL THEN '&'
                   ELSE token[4]
               END, ' ' ORDER BY n)::tsquery
    FROM (SELECT querytree(q) AS tree) AS t,
         LATERAL (
             SELECT token, n, lag(token) OVER w AS before, lead(token) OVER w AS after
             FROM regexp_matches(
                 tree, '''((?:[^'']|'''')*)''(?::(\*)?[A-D]*)?|(<[0-9-]+>)|([&|()])', 'g'
             ) WITH ORDINALITY AS m(token, n)
             WINDOW w AS (ORDER BY n)
         ) AS tokens
    WHERE tree NOT IN ('', 'T')
$$
"""


def upgrade() -> None:
    op.execute(BLOCK_LEXEMES)
    op.execute(BLOCK_QUERY)
    op.execute(
        "CREATE INDEX ix_interactions_search_blocks ON interactions "
        "USING gin (interaction_block_lexemes(seller_id, occurred_at, search_vector))"
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_search_blocks", table_name="interactions")
    op.execute("DROP FUNCTION interaction_block_query(tsquery, bigint, bigint, bigint)")
    op.execute("DROP FUNCTION interaction_block_lexemes(bigint, timestamptz, tsvector)")
