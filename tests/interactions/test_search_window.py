"""The relevance window read through the hour buckets is exactly the newest matches."""

import itertools
import random
from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions import repository, search
from app.interactions.schemas import InteractionFilters
from tests import factories

NOW = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)

# Every stage gets matches: the future, this hour, hours, days, years, and before 7.5 years.
OFFSETS = [
    timedelta(days=400), timedelta(minutes=10), timedelta(0), timedelta(0), timedelta(minutes=-20),
    timedelta(hours=-1), timedelta(hours=-2, minutes=-59), timedelta(hours=-3), timedelta(hours=-7),
    timedelta(hours=-16), timedelta(days=-1), timedelta(days=-2, hours=-16), timedelta(days=-11),
    timedelta(days=-43), timedelta(days=-170), timedelta(days=-700), timedelta(days=-2800),
    timedelta(days=-3000), timedelta(days=-9000), timedelta(days=-19000),
]  # fmt: skip


def test_blocks_tile_every_range_with_aligned_blocks() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        first = rng.randrange(0, 600_000)
        last = first + rng.choice([0, 1, 3, 17, 255, 4096, 70_000, 500_000])
        covered = []
        for shift, index in search.blocks(first, last):
            assert shift % search.SHIFT_STEP == 0
            assert shift <= search.MAX_SHIFT
            covered.append(((index << shift), ((index + 1) << shift) - 1))
        assert covered[0][0] == first
        assert covered[-1][1] == last
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(covered))


def test_stages_tile_every_hour_once_newest_first() -> None:
    hour = search.hour_of(NOW)
    newest_first = []
    stage_list = search.stages(7, hour)
    # Exact tiles, one to four of each size below the 7.5-year blocks (merged into one stage).
    assert len(stage_list) <= 2 + 4 * search.MAX_SHIFT // search.SHIFT_STEP
    for stage in stage_list:
        spans = []
        for lexeme in stage.buckets.split(" | "):
            seller, _, rest = lexeme[1:].partition("S")
            shift, index = (int(v) for v in rest.split("B"))
            assert seller == "7"
            spans.append((index << shift, ((index + 1) << shift) - 1))
        first = min(a for a, _ in spans)
        last = max(b for _, b in spans)
        assert sum(b - a + 1 for a, b in spans) == last - first + 1
        newest_first.append((first, last))
    assert newest_first[0][0] == hour
    assert newest_first[0][1] > hour + 15 * 365 * 24
    assert newest_first[-1][0] == 0
    assert all(newer[0] == older[1] + 1 for newer, older in itertools.pairwise(newest_first))


async def _newest(session: AsyncSession, seller_id: int, q: str, size: int) -> set[int]:
    rows = await session.execute(
        text(
            "SELECT id FROM interactions WHERE seller_id = :s"
            " AND search_vector @@ websearch_to_tsquery('russian', :q)"
            " ORDER BY occurred_at DESC, id DESC LIMIT :n"
        ),
        {"s": seller_id, "q": q, "n": size},
    )
    return set(rows.scalars())


async def test_window_is_the_newest_matches_for_every_size(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, _ = await factories.operator(session, client, "window@example.com", "Window")
    other, _ = await factories.operator(session, client, "other@example.com", "Other")
    for n, offset in enumerate(OFFSETS):
        words = "брак " * (1 + n % 3) + ("доставка" if n % 2 else "")
        for shop in (seller, other):
            await factories.create_interaction(session, shop, text=words, occurred_at=NOW + offset)
        await factories.create_interaction(session, seller, text="всё отлично")

    db = await session.connection()
    for q in ("брак", "доставка", "брак доставка"):
        filters = InteractionFilters(q=q)
        for size in range(1, len(OFFSETS) + 2):
            rows = await repository.list_page(
                db, seller.id, filters, user_id=0, sort="relevance", after=None, limit=100,
                now=NOW, window=size,
            )  # fmt: skip
            assert {row["id"] for row in rows} == await _newest(session, seller.id, q, size)
            scores = [(row["score"], row["id"]) for row in rows]
            assert scores == sorted(scores, reverse=True)


async def test_time_buckets_never_match_a_search(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "buckets@example.com", "Buckets")
    await factories.create_interaction(session, seller, text="брак", occurred_at=NOW)
    bucket = f"T{seller.id}S0B{search.hour_of(NOW)}"

    for sort in ("relevance", "newest"):
        response = await client.get(f"/api/v1/interactions?q={bucket}&sort={sort}", headers=headers)
        assert response.status_code == 200
        assert response.json()["items"] == []
