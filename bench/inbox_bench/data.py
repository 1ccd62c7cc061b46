"""The data: sellers and operator, the set-based load of 1M interactions (and chat messages, link
candidates), what was loaded, and the samples the scenarios draw from it."""

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from pydantic import SecretStr

from bench.inbox_bench.app_api import (
    Settings,
    auth_service,
    create_engine,
    create_sessionmaker,
    sellers_service,
    transaction,
)
from bench.inbox_bench.corpus import KINDS, POOLS, SEARCHES
from bench.inbox_bench.options import (
    BIG_ROWS,
    CUSTOMERS_PER_ROW,
    EMAIL,
    JWT_SECRET,
    LINK_ROWS,
    LOAD_STATEMENT_TIMEOUT,
    PASSWORD,
    PG_SETTINGS,
    PRODUCT_SKEW,
    PRODUCTS,
    SECRETS_KEY,
    SMALL_ROWS,
    Options,
)
from bench.inbox_bench.report import Report
from bench.stack import BenchError, Services, plain_url, say


def _pick(list_sql: str, r: str) -> str:
    """SQL: one element of the text[] `list_sql`, chosen by the uniform random column `r`."""
    return f"{list_sql}[1 + floor({r} * cardinality({list_sql}))::int]"


# $1 big seller, $2 small seller, $3/$4 first/last n, $5 now, $6 operator (assignee),
# $7 every $7-th n is the small seller's, $8 products, $9 customers.
LOAD_INTERACTIONS = f"""
INSERT INTO interactions (
    seller_id, marketplace, channel, external_id, thread_key, customer_id, order_id,
    customer_name, nm_id, product_article, product_name, text, pros, cons, rating, photos_count,
    status, priority, priority_reason, intent, needs_response, is_read, assignee_id, sla_due_at,
    occurred_at, first_response_at, source, extra)
WITH r AS MATERIALIZED (
    SELECT n, CASE WHEN n % $7 = 0 THEN $2::bigint ELSE $1::bigint END AS seller_id,
           random() AS r_ch, random() AS r_st, random() AS r_rat, random() AS r_int,
           random() AS r_nm, random() AS r_t, random() AS r_a, random() AS r_b, random() AS r_c,
           random() AS r_d, random() AS r_e, random() AS r_f, random() AS r_g, random() AS r_h,
           random() AS r_i, random() AS r_j, random() AS r_k, random() AS r_l, random() AS r_m,
           random() AS r_n
    FROM generate_series($3::bigint, $4::bigint) AS n
), c AS (
    SELECT r.*,
           CASE WHEN r_ch < 0.70 THEN 'review' WHEN r_ch < 0.95 THEN 'question' ELSE 'chat' END
               AS channel,
           CASE WHEN r_rat < 0.11 THEN 1 WHEN r_rat < 0.17 THEN 2 WHEN r_rat < 0.25 THEN 3
                WHEN r_rat < 0.40 THEN 4 ELSE 5 END AS stars,
           floor($8::int * power(r_nm, {PRODUCT_SKEW}))::int AS product,
           r_d < 0.01 AS alarming
    FROM r
), s AS (
    SELECT c.*,
           CASE WHEN r_st < 0.15 THEN 'open'
                WHEN channel = 'review' AND r_st < 0.17 THEN 'pending_reply'
                WHEN channel = 'question' AND r_st < 0.18 THEN 'closed'
                ELSE 'responded' END AS status,
           CASE WHEN channel <> 'review' THEN 'all' WHEN stars <= 2 THEN 'low'
                WHEN stars = 3 THEN 'mid' ELSE 'high' END AS band,
           CASE channel WHEN 'review' THEN 1440 WHEN 'question' THEN 240 ELSE 60 END AS sla_min
    FROM c
), t AS (
    SELECT s.*, k.intent, p.phrases,
           CASE WHEN status = 'open'
                -- occurred up to one SLA + 12 h ago (never in the future): due 12 h ago …
                -- one SLA ahead
                THEN $5::timestamptz + sla_min * interval '1 minute'
                     - r_t * (sla_min * interval '1 minute' + interval '12 hours') END AS open_due
    FROM s
    JOIN bench_kind k ON k.channel = s.channel AND k.band = s.band
                     AND s.r_int >= k.lo AND s.r_int < k.hi
    JOIN bench_pool p ON p.name = k.pool
), u AS (
    SELECT t.*,
           coalesce(open_due - sla_min * interval '1 minute',
                    $5::timestamptz - interval '1 hour' - r_t * interval '730 days') AS occurred,
           CASE WHEN channel = 'chat' OR (channel = 'review' AND r_j < 0.25)
                THEN 'c' || floor(r_k * $9::int)::int END AS customer
    FROM t
), l AS (
    SELECT {", ".join(f"max(phrases) FILTER (WHERE name = '{k}') AS {k}" for k in POOLS)}
    FROM bench_pool
)
SELECT
    u.seller_id, 'wildberries', u.channel,
    CASE u.channel WHEN 'review' THEN 'fb-' WHEN 'question' THEN 'q-' ELSE 'chat-' END || u.n,
    CASE WHEN u.channel = 'chat' THEN 'chat-' || u.n END,
    u.customer,
    CASE WHEN u.customer IS NOT NULL AND (u.channel = 'chat' OR u.r_l < 0.5)
         THEN u.customer || '-' || floor(u.r_l * 4)::int END,
    CASE WHEN u.channel <> 'question' THEN {_pick("l.names", "u.r_i")} END,
    CASE WHEN u.seller_id = $1 THEN 100000000 ELSE 200000000 END + u.product * 37,
    CASE WHEN u.channel <> 'chat' THEN 'ART-' || (10000 + u.product) END,
    CASE WHEN u.channel <> 'chat'
         THEN l.categories[1 + u.product % cardinality(l.categories)] || ', '
              || l.colors[1 + (u.product / cardinality(l.categories)) % cardinality(l.colors)]
         END,
    CASE WHEN u.channel = 'review' AND u.stars >= 4 AND u.r_e < 0.25 THEN ''
         ELSE {_pick("u.phrases", "u.r_a")}
              || CASE WHEN u.r_b < 0.25 THEN ' ' || {_pick("u.phrases", "u.r_c")}
                      WHEN u.r_b < 0.5 AND u.channel = 'review'
                      THEN ' ' || {_pick("l.filler", "u.r_c")}
                      ELSE '' END
              || CASE WHEN u.alarming THEN ' ' || {_pick("l.urgent", "u.r_m")} ELSE '' END
    END,
    CASE WHEN u.channel = 'review' AND u.r_g < 0.35 THEN {_pick("l.pros", "u.r_h")} END,
    CASE WHEN u.channel = 'review' AND u.stars <= 3 AND u.r_g > 0.5
         THEN {_pick("l.cons", "u.r_h")} END,
    CASE WHEN u.channel = 'review' THEN u.stars END,
    CASE WHEN u.channel = 'review' AND u.r_f > 0.8 THEN 1 + floor(u.r_n * 5)::int ELSE 0 END,
    u.status,
    CASE WHEN u.alarming THEN 'urgent'
         WHEN u.channel = 'review' THEN
              CASE WHEN u.stars <= 2 AND u.intent IN ('defect_quality', 'return_refund')
                   THEN 'urgent'
                   WHEN u.stars <= 2 THEN 'high'
                   WHEN u.stars = 3 OR u.intent IN ('defect_quality', 'return_refund')
                   THEN 'normal'
                   ELSE 'low' END
         WHEN u.channel = 'question' THEN
              CASE WHEN u.intent = 'other' THEN 'normal' ELSE 'high' END
         WHEN u.intent IN ('return_refund', 'defect_quality') THEN 'urgent'
         ELSE 'high' END,
    CASE WHEN u.alarming THEN 'safety, fraud or legal wording'
         WHEN u.channel = 'review' THEN u.stars || '★ review (' || u.intent || ')'
         WHEN u.channel = 'question' THEN 'question (' || u.intent || ')'
         ELSE 'buyer chat about ' || u.intent END,
    u.intent,
    u.status = 'open',
    u.status <> 'open' OR u.r_e < 0.5,
    CASE WHEN u.seller_id = $1 AND u.r_f < 0.1 THEN $6::bigint END,
    coalesce(u.open_due,
             CASE WHEN u.channel <> 'chat' THEN u.occurred + u.sla_min * interval '1 minute' END),
    u.occurred,
    CASE WHEN u.status IN ('responded', 'pending_reply') AND u.channel <> 'review'
         THEN u.occurred + u.r_n * u.sla_min * 1.5 * interval '1 minute' END,
    'wb_api',
    CASE u.channel
      WHEN 'review' THEN jsonb_build_object(
        'answer', CASE WHEN u.status IN ('responded', 'pending_reply') THEN jsonb_build_object(
            'text', {_pick("l.replies", "u.r_m")},
            'state', CASE WHEN u.status = 'pending_reply' THEN 'reviewRequired' ELSE 'wbRu' END,
            'editable', false) END,
        'state', 'wbRu', 'brand', l.brands[1 + u.product % cardinality(l.brands)],
        'size', {_pick("l.sizes", "u.r_h")}, 'order_status', 'buyout',
        'matching_size', CASE WHEN u.intent = 'sizing_fit' AND u.stars <= 3 THEN 'smaller'
                              ELSE 'ok' END,
        'bables', '[]'::jsonb, 'has_video', false, 'was_viewed', true,
        'parent_feedback_id', NULL)
      WHEN 'question' THEN jsonb_build_object(
        'answer', CASE WHEN u.status = 'responded' THEN jsonb_build_object(
            'text', {_pick("l.replies", "u.r_m")}, 'editable', true,
            'createDate', u.occurred + u.r_n * interval '6 hours') END,
        'state', CASE WHEN u.status = 'closed' THEN 'none' ELSE 'wbRu' END,
        'brand', l.brands[1 + u.product % cardinality(l.brands)],
        'was_viewed', true, 'is_warned', false)
      ELSE jsonb_build_object(
        'reply_sign', md5(u.n::text), 'last_message_at', u.occurred + interval '30 minutes',
        'last_sender', CASE WHEN u.status = 'open' THEN 'client' ELSE 'seller' END,
        'price', 990 + (u.product % 50) * 100, 'size', {_pick("l.sizes", "u.r_h")})
    END
FROM u CROSS JOIN l
ORDER BY u.occurred  -- in the order they occurred, as the sync stores them (dateAsc windows)
"""  # noqa: S608 - interpolates only this module's constants

# Every chat gets 2–7 messages, alternating buyer/seller; the last is the buyer's when open.
LOAD_MESSAGES = """
INSERT INTO chat_messages (seller_id, interaction_id, external_id, direction, sender_name, text,
                           attachments, sent_at)
SELECT i.seller_id, i.id, i.external_id || '-ev' || g, d.direction,
       CASE WHEN d.direction = 'in' THEN i.customer_name ELSE 'seller' END,
       CASE WHEN g = m.cnt AND d.direction = 'in' THEN i.text
            WHEN d.direction = 'in'
            THEN l.chat_any[1 + (i.id * 7 + g) % cardinality(l.chat_any)]
            ELSE l.replies[1 + (i.id * 13 + g) % cardinality(l.replies)] END,
       '[]'::jsonb,
       i.occurred_at + (g - 1) * interval '9 minutes'
FROM interactions i
CROSS JOIN LATERAL (SELECT 2 + (i.id % 6)::int AS cnt) m
CROSS JOIN LATERAL generate_series(1, m.cnt) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g = m.cnt THEN CASE WHEN i.status = 'open' THEN 'in' ELSE 'out' END
                WHEN g % 2 = 1 THEN 'in' ELSE 'out' END AS direction
) d
CROSS JOIN (
    SELECT max(phrases) FILTER (WHERE name = 'chat_any') AS chat_any,
           max(phrases) FILTER (WHERE name = 'replies') AS replies
    FROM bench_pool
) l
WHERE i.channel = 'chat'
"""

# A sample of the big seller's interactions, each linked to the next one on its product (level C,
# the shape the scorer produces) and, when it has a customer id, to another of that customer's
# (level B); written in both directions as the scorer does. $1 seller, $2 sample fraction.
LOAD_LINKS = """
WITH src AS (
    SELECT id, nm_id, occurred_at, customer_id
    FROM interactions
    WHERE seller_id = $1 AND random() < $2
), c_pairs AS (
    SELECT s.id AS a, t.id AS b
    FROM src s
    CROSS JOIN LATERAL (
        SELECT t.id FROM interactions t
        WHERE t.seller_id = $1 AND t.nm_id = s.nm_id AND t.occurred_at > s.occurred_at
        ORDER BY t.occurred_at LIMIT 1
    ) t
), b_pairs AS (
    SELECT s.id AS a, t.id AS b, t.order_id IS NOT NULL AS same_order
    FROM src s
    CROSS JOIN LATERAL (
        SELECT t.id, t.order_id FROM interactions t
        WHERE t.seller_id = $1 AND t.customer_id = s.customer_id AND t.id <> s.id
        LIMIT 1
    ) t
    WHERE s.customer_id IS NOT NULL
), pairs AS (
    SELECT a, b, 'C' AS level, false AS deterministic,
           round(0.45 + ((a * 31 + b) % 56) / 100.0, 3) AS confidence,
           'probable_same_customer' AS match_reason
    FROM c_pairs
    UNION ALL
    SELECT a, b, 'B', true, CASE WHEN same_order THEN 1.0 ELSE 0.9 END,
           CASE WHEN same_order THEN 'same_customer_order' ELSE 'same_customer' END
    FROM b_pairs
), both_ways AS (
    SELECT a AS source_id, b AS target_id, level, deterministic, confidence, match_reason
    FROM pairs
    UNION ALL
    SELECT b, a, level, deterministic, confidence, match_reason FROM pairs
)
INSERT INTO link_candidates (seller_id, source_id, target_id, level, deterministic, confidence,
                             band, match_reason, signals)
SELECT $1, source_id, target_id, level, deterministic, confidence,
       CASE WHEN confidence >= 0.85 THEN 'high' WHEN confidence >= 0.65 THEN 'medium'
            ELSE 'low' END,
       match_reason,
       CASE WHEN level = 'B' THEN jsonb_build_object(match_reason, confidence)
            ELSE jsonb_build_object('same_product_7d', 0.45,
                                    'within_24h', CASE WHEN confidence >= 0.65 THEN 0.2 END)
       END
FROM both_ways
ON CONFLICT (source_id, target_id) DO NOTHING
"""


@dataclass
class Tenancy:
    big: int
    small: int
    user_id: int


def bench_settings(services: Services) -> Settings:
    return Settings(
        env="production",
        database_url=services.database_url,
        redis_url=services.redis_url,
        secrets_key=SecretStr(SECRETS_KEY),
        jwt_secret=SecretStr(JWT_SECRET),
        log_level="WARNING",
    )


async def create_tenants(settings: Settings) -> Tenancy:
    """The sellers and the operator, through the services `app.cli create-operator` uses."""
    engine = create_engine(settings, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            big = await sellers_service.create_seller(session, "Bench big shop")
            small = await sellers_service.create_seller(session, "Bench other shop")
            user = await auth_service.create_user(
                session, seller_id=big.id, email=EMAIL, password=PASSWORD, role="owner"
            )
            return Tenancy(big.id, small.id, user.id)
    finally:
        await engine.dispose()


async def find_tenants(settings: Settings) -> Tenancy:
    conn = await asyncpg.connect(plain_url(settings.require_database_url()))
    try:
        row = await conn.fetchrow("SELECT id, seller_id FROM users WHERE email = $1", EMAIL)
        if row is None:
            raise BenchError("--reuse-data: the database has no bench operator")
        small = await conn.fetchval(
            "SELECT id FROM sellers WHERE id <> $1 ORDER BY id LIMIT 1", row["seller_id"]
        )
        return Tenancy(int(row["seller_id"]), int(small), int(row["id"]))
    finally:
        await conn.close()


async def _timed(conn: Any, sql: str, *args: Any) -> tuple[float, str]:
    started = time.perf_counter()
    status = await conn.execute(sql, *args, timeout=LOAD_STATEMENT_TIMEOUT)
    return time.perf_counter() - started, str(status)


def _rows(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1]) if status and status[-1].isdigit() else 0


async def load_data(services: Services, opts: Options, tenancy: Tenancy, report: Report) -> None:
    url = plain_url(services.database_url)
    big_rows, small_rows = opts.rows(BIG_ROWS), opts.rows(SMALL_ROWS)
    every = max(2, round((big_rows + small_rows) / small_rows))
    total = big_rows + small_rows
    products = max(10, min(PRODUCTS, big_rows // 50))
    customers = max(10, round(big_rows * CUSTOMERS_PER_ROW))
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute(
            "CREATE UNLOGGED TABLE bench_pool (name text PRIMARY KEY, phrases text[] NOT NULL);"
            "CREATE UNLOGGED TABLE bench_kind (channel text, band text, lo float8, hi float8,"
            " intent text, pool text)"
        )
        await conn.executemany("INSERT INTO bench_pool VALUES ($1, $2)", list(POOLS.items()))
        kinds = []
        for (channel, band), shares in KINDS.items():
            lo = 0.0
            for i, (share, intent, pool) in enumerate(shares):
                hi = 2.0 if i == len(shares) - 1 else lo + share
                kinds.append((channel, band, lo, hi, intent, pool))
                lo = hi
        await conn.executemany("INSERT INTO bench_kind VALUES ($1, $2, $3, $4, $5, $6)", kinds)
        # Secondary indexes are built after the load (a bulk build beats 1M incremental inserts,
        # GIN most of all), then re-created from their own definitions: the schema stays alembic's.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = 'interactions' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'interactions'::regclass)"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        say(
            f"loading {big_rows:,} + {small_rows:,} interactions ({opts.load_jobs} connections; "
            f"{len(indexes)} secondary indexes dropped until the end of the load)"
        )
        started = time.perf_counter()
        bounds = [1 + total * j // opts.load_jobs for j in range(opts.load_jobs + 1)]
        conns = [await asyncpg.connect(url) for _ in range(opts.load_jobs)]
        try:
            for j, c in enumerate(conns):
                await c.execute(f"SELECT setseed({(j + 1) / (opts.load_jobs + 1)})")
                await c.execute("SET work_mem = '256MB'")
            await asyncio.gather(
                *(
                    _timed(
                        c, LOAD_INTERACTIONS, tenancy.big, tenancy.small, bounds[j],
                        bounds[j + 1] - 1, now, tenancy.user_id, every, products, customers,
                    )
                    for j, c in enumerate(conns)
                )
            )  # fmt: skip
        finally:
            for c in conns:
                await c.close()
        seconds = time.perf_counter() - started
        report.load.append(
            ("interactions (INSERT … SELECT generate_series)", f"{total:,}", f"{seconds:.1f} s")
        )
        say(f"  interactions: {total:,} rows in {seconds:.1f} s")

        started = time.perf_counter()
        for row in indexes:
            await conn.execute(row["indexdef"], timeout=LOAD_STATEMENT_TIMEOUT)
        seconds = time.perf_counter() - started
        report.load.append(
            (
                f"{len(indexes)} secondary indexes of interactions (incl. GIN)",
                "",
                f"{seconds:.1f} s",
            )
        )
        say(f"  {len(indexes)} indexes built in {seconds:.1f} s")

        seconds, status = await _timed(conn, LOAD_MESSAGES)
        report.load.append(
            ("chat_messages (2–7 per chat)", f"{_rows(status):,}", f"{seconds:.1f} s")
        )
        say(f"  chat messages: {_rows(status):,} in {seconds:.1f} s")

        fraction = opts.rows(LINK_ROWS) / (2 * big_rows * (1 + 0.225))
        seconds, status = await _timed(conn, LOAD_LINKS, tenancy.big, fraction)
        report.load.append(
            (
                "link_candidates (level B + C, both directions)",
                f"{_rows(status):,}",
                f"{seconds:.1f} s",
            )
        )
        say(f"  link candidates: {_rows(status):,} in {seconds:.1f} s")

        await conn.execute("DROP TABLE bench_pool; DROP TABLE bench_kind")
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)", timeout=LOAD_STATEMENT_TIMEOUT)
        seconds = time.perf_counter() - started
        report.load.append(("VACUUM ANALYZE", "", f"{seconds:.1f} s"))
        say(f"  VACUUM ANALYZE in {seconds:.1f} s")
    finally:
        await conn.close()  # fmt: skip


async def describe_data(services: Services, tenancy: Tenancy, report: Report) -> list[str]:
    """The data as loaded (what the scenarios run against), for the report."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        big = tenancy.big
        by = {
            r["k"]: r["n"]
            for r in await conn.fetch(
                "SELECT channel AS k, count(*) AS n FROM interactions WHERE seller_id = $1 "
                "GROUP BY 1 UNION ALL SELECT status, count(*) FROM interactions "
                "WHERE seller_id = $1 GROUP BY 1 UNION ALL SELECT 'prio:' || priority, count(*) "
                "FROM interactions WHERE seller_id = $1 GROUP BY 1",
                big,
            )
        }
        total = await conn.fetchval("SELECT count(*) FROM interactions WHERE seller_id = $1", big)
        other = await conn.fetchval(
            "SELECT count(*) FROM interactions WHERE seller_id = $1", tenancy.small
        )
        top = await conn.fetchrow(
            "SELECT nm_id, count(*) AS n, count(*) OVER () AS products "
            "FROM interactions WHERE seller_id = $1 GROUP BY nm_id ORDER BY n DESC LIMIT 1",
            big,
        )
        median = await conn.fetchval(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM "
            "(SELECT count(*) AS n FROM interactions WHERE seller_id = $1 GROUP BY nm_id) x",
            big,
        )
        overdue = await conn.fetchval(
            "SELECT count(*) FROM interactions WHERE seller_id = $1 AND status = 'open' "
            "AND sla_due_at < now()",
            big,
        )
        sizes = await conn.fetchrow(
            "SELECT pg_size_pretty(pg_table_size('interactions')) AS heap, "
            "pg_size_pretty(pg_indexes_size('interactions')) AS idx, "
            "pg_size_pretty(pg_relation_size('ix_interactions_search')) AS gin, "
            "pg_size_pretty(pg_relation_size('ix_interactions_search_blocks')) AS blocks, "
            "pg_size_pretty(pg_database_size(current_database())) AS db, "
            "(SELECT count(*) FROM chat_messages) AS messages, "
            "(SELECT count(*) FROM link_candidates) AS links"
        )
        counts = []
        for q in SEARCHES:
            n = await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE seller_id = $1 "
                "AND search_vector @@ websearch_to_tsquery('russian', $2)",
                big,
                q,
                timeout=120,
            )
            counts.append(f"`{q}` {n:,} ({n / max(total, 1):.1%})")
        settings = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name",
            list(PG_SETTINGS),
        )
        jit = await conn.fetchval("SELECT pg_jit_available()")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()

    def share(key: str) -> str:
        return f"{by.get(key, 0):,} ({by.get(key, 0) / max(total, 1):.0%})"

    pg = ", ".join(f"{r['name']}={r['value']}" for r in settings)
    report.notes.append(f"Postgres {version}: {pg} (JIT available: {jit})")
    return [
        f"big seller: {total:,} interactions — reviews {share('review')}, questions "
        f"{share('question')}, chats {share('chat')}; open {share('open')} (of them "
        f"{overdue:,} overdue), responded {share('responded')}, pending_reply "
        f"{share('pending_reply')}, closed {share('closed')}; priority urgent "
        f"{share('prio:urgent')}, high {share('prio:high')}, normal {share('prio:normal')}, "
        f"low {share('prio:low')}",
        f"{top['products']:,} products: the top one has {top['n']:,} interactions, the median "
        f"one {median:,.0f}; second seller: {other:,} interactions (interleaved ids); "
        f"{sizes['messages']:,} chat messages; {sizes['links']:,} link candidates",
        f"sizes: interactions heap {sizes['heap']}, its indexes {sizes['idx']} (GIN: "
        f"search_vector {sizes['gin']}, block lexemes and pairs {sizes['blocks']}); "
        f"database {sizes['db']}",
        "matches per search query (big seller): " + "; ".join(counts),
    ]


async def sample_ids(
    services: Services, seller_id: int, n: int, seed: float
) -> list[tuple[int, str]]:
    """`n` distinct random (id, channel) of the seller, the same for the same seed."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        await conn.execute(f"SELECT setseed({seed})")
        rows = await conn.fetch(
            "SELECT id, channel FROM interactions WHERE seller_id = $1 ORDER BY random() LIMIT $2",
            seller_id,
            n,
        )
    finally:
        await conn.close()
    return [(int(r["id"]), str(r["channel"])) for r in rows]


async def hot_id(services: Services, seller_id: int) -> int:
    """The newest review on the seller's busiest product: the card's worst case."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        return int(
            await conn.fetchval(
                "SELECT id FROM interactions WHERE seller_id = $1 AND channel = 'review' AND "
                "nm_id = (SELECT nm_id FROM interactions WHERE seller_id = $1 GROUP BY nm_id "
                "ORDER BY count(*) DESC LIMIT 1) ORDER BY occurred_at DESC LIMIT 1",
                seller_id,
            )
        )
    finally:
        await conn.close()


async def has_data(services: Services, opts: Options) -> bool:
    try:
        conn = await asyncpg.connect(plain_url(services.database_url))
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        n = await conn.fetchval("SELECT count(*) FROM interactions")
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()
    return bool(n == opts.rows(BIG_ROWS) + opts.rows(SMALL_ROWS))
