"""The relevance window, read in stages through hour buckets and block lexemes, is exactly the
newest matches, whichever way the stages go."""

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions import repository, search
from app.interactions.schemas import InteractionFilters
from tests import factories

NOW = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)

# Every stage gets matches: the future, this hour, the hour before, the fine range (16–31 hours
# back), the tail's groups of 1, 4 and 16 blocks, and the rest of time back to 1974.
OFFSETS = [
    timedelta(days=400), timedelta(minutes=10), timedelta(0), timedelta(0), timedelta(minutes=-20),
    timedelta(hours=-1), timedelta(hours=-2, minutes=-59), timedelta(hours=-3), timedelta(hours=-7),
    timedelta(hours=-16), timedelta(days=-1), timedelta(days=-2, hours=-16), timedelta(days=-4),
    timedelta(days=-11), timedelta(days=-20), timedelta(days=-38), timedelta(days=-43),
    timedelta(days=-170), timedelta(days=-700), timedelta(days=-2800), timedelta(days=-19000),
]  # fmt: skip

# The stage list takes each way: the default (few matches here: the blocks), every query common
# (the hour-bucket tiles), and a probe that gives up at its first match (the tiles, after it).
WAYS = [
    search.Window(),
    search.Window(common=0),
    search.Window(probe=1),
]

# Ranks differ (one to three of a word), and a phrase needs its words side by side.
TEXTS = ["брак", "брак брак доставка", "доставка и брак", "брак доставка брак", "доставка"]
QUERIES = [
    "брак",
    "доставка",
    "брак доставка",
    '"брак доставка"',
    '"брак брак доставка"',  # two pairs
    '"доставка и брак"',  # a stop word between: no pair, the words two apart
    "брак -доставка",
    "доставка or отлично",
    "-доставка",  # no lexeme to search: the newest rows are walked
    "и",  # only a stop word: nothing
]


def _hours(stage: search.Stage) -> tuple[int, int]:
    """The first and last hour a stage reads (every hour in between, exactly)."""
    if stage.kind in ("probe", "coarse", "blocks"):
        first, last = stage.blocks
        hours = first << search.BLOCK_SHIFT, ((last + 1) << search.BLOCK_SHIFT) - 1
        if stage.before is not None:
            hours = hours[0], min(hours[1], search.hour_of(stage.before) - 1)
        return hours
    if stage.kind == "rest":
        assert stage.before is not None
        return 0, search.hour_of(stage.before) - 1
    spans = []
    for lexeme in stage.buckets.split(" | "):
        seller, _, rest = lexeme[1:].partition("S")
        shift, index = (int(v) for v in rest.split("B"))
        assert seller == "7"
        spans.append((index << shift, ((index + 1) << shift) - 1))
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    assert sum(b - a + 1 for a, b in spans) == last - first + 1
    return first, last


def test_tiles_cover_every_range_with_aligned_buckets() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        first = rng.randrange(0, 600_000)
        last = first + rng.choice([0, 1, 3, 17, 255, 4096, 70_000, 500_000])
        covered = []
        for shift, index in search.tiles(first, last):
            assert shift % search.SHIFT_STEP == 0
            assert shift <= search.MAX_SHIFT
            covered.append(((index << shift), ((index + 1) << shift) - 1))
        assert covered[0][0] == first
        assert covered[-1][1] == last
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(covered))


@pytest.mark.parametrize("minutes", range(0, 16 * 60, 37))
def test_both_ways_through_the_stages_tile_every_hour_once_newest_first(minutes: int) -> None:
    hour = search.hour_of(NOW + timedelta(minutes=minutes))
    stage_list = search.stages(7, hour)
    # The blocks' way skips the tiles, the tiles' way the probe and the block after it.
    for skipped in (("fine",), ("probe", "coarse")):
        spans = [_hours(s) for s in stage_list if s.kind not in skipped]
        assert spans[0][0] == hour
        assert spans[0][1] > hour + 15 * 365 * 24
        assert spans[-1][0] == 0
        assert all(newer[0] == older[1] + 1 for newer, older in itertools.pairwise(spans))
    fine = [_hours(s) for s in stage_list if s.kind == "fine"]
    assert 16 <= fine[0][1] - fine[-1][0] + 1 < 32  # the tiles and the probe: 16–31 hours
    assert len(stage_list) <= 2 + 2 + 7 + len(search.TAIL_GROUPS) + 1


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


@pytest.mark.slow
async def test_window_is_the_newest_matches_every_way_and_size(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, _ = await factories.operator(session, client, "window@example.com", "Window")
    other, _ = await factories.operator(session, client, "other@example.com", "Other")
    for offset, words in zip(OFFSETS, itertools.cycle(TEXTS), strict=False):
        for shop in (seller, other):
            await factories.create_interaction(session, shop, text=words, occurred_at=NOW + offset)
        await factories.create_interaction(
            session, seller, text="всё отлично", occurred_at=NOW + offset / 2
        )

    db = await session.connection()
    for way, q, shift in itertools.product(WAYS, QUERIES, (0, 5, 13)):
        now = NOW + timedelta(hours=shift)  # other alignments of the stages
        for size in (1, 2, 3, 5, 8, 13, len(OFFSETS) - 1, 2 * len(OFFSETS) + 2):
            rows = await repository.list_page(
                db, seller.id, InteractionFilters(q=q), user_id=0, sort="relevance", after=None,
                limit=100, now=now, window=search.Window(size, way.common, way.probe),
            )  # fmt: skip
            expected = await _newest(session, seller.id, q, size)
            assert {row["id"] for row in rows} == expected, (way, q, shift, size)
            scores = [(row["score"], row["id"]) for row in rows]
            assert scores == sorted(scores, reverse=True)


async def test_time_lexemes_never_match_a_search(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "buckets@example.com", "Buckets")
    await factories.create_interaction(session, seller, text="брак", occurred_at=NOW)
    bucket = f"T{seller.id}S0B{search.hour_of(NOW)}"
    block = f"{seller.id}:{search.hour_of(NOW) >> search.BLOCK_SHIFT}:брак"

    for q in (bucket, block):
        for sort in ("relevance", "newest"):
            url = f"/api/v1/interactions?q={q}&sort={sort}"
            response = await client.get(url, headers=headers)
            assert response.status_code == 200
            assert response.json()["items"] == []
