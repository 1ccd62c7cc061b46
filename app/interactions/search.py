"""The relevance window: a seller's newest matches of a query, read newest hours first.

Relevance ranks the newest `window` matches of `q` (the ranking needs each row's tsvector, so
ranking every match of a common word would read a quarter of a big seller's inbox). Finding the
newest matches is the hard part: a GIN index returns matches in no time order, so a rare word
made Postgres either walk the seller's rows newest-first until enough matched (≈ 160,000 rows for
a word in 0.3 % of them) or fetch every match and sort.

So every row's `search_vector` also carries its seller's hour buckets (upper-case lexemes
`T<seller>S<shift>B<hour >> shift>`, shifts 0, 2, … 16: blocks of 1 to 65,536 hours; see the
migration `search_vector_time_buckets`). A stage asks the index for `@@ q AND @@ bucket`: the
matches inside one block of hours, intersected inside the GIN index, so Postgres reads only rows
that match both. Two conditions, not one `q && bucket`: the index leapfrogs between two scan
keys (each skips to the other's next row), while inside one key it walks every row of the rarest
lexeme; on the benchmark's dense recent hours that made `брак доставка` 2–3× slower per stage.

Stages run newest first: this hour and the future, then exact tiles of the past that grow 4×
every few stages (`stages`), and a stage runs only while the newer ones hold fewer than `window`
matches. The stages are disjoint and ordered, so the newest `window` of their union is exactly
the newest `window` matches, whatever the stage sizes. The window carries each row's vector and
is ranked once cut to size: a stage's over-read rows are sorted by time, never ranked.

On the benchmark's data (bench/inbox_bench.py: 1M rows of one seller, 10 queries matching
0.3 % to 23 % of them) a window costs 6–48 ms of one connection's time (mean 14.7 ms, from
21.1 ms with one block per size that reached into the hours already read); the newest-first walk
the buckets replaced spent ≈ 45 ms, and seconds on a rare word with a cold cache. What is left is
mostly the GIN index's seeks (≈ 1–3 ms a stage) and a phrase's position rechecks.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    ScalarSelect,
    Select,
    Text,
    bindparam,
    cast,
    func,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.orm import InstrumentedAttribute

from app.interactions.models import Interaction

SHIFT_STEP = 2  # blocks grow 4×: 1 h, 4 h, 16 h, …
MAX_SHIFT = 16  # the largest block: 2**16 h ≈ 7.5 years


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def blocks(first: int, last: int) -> list[tuple[int, int]]:
    """The fewest aligned blocks (shift, index) that tile the hours first..last."""
    out: list[tuple[int, int]] = []
    while first <= last:
        shift = 0
        while shift < MAX_SHIFT:
            size = 1 << (shift + SHIFT_STEP)
            if first % size or first + size - 1 > last:
                break
            shift += SHIFT_STEP
        out.append((shift, first >> shift))
        first += 1 << shift
    return out


@dataclass(frozen=True)
class Stage:
    """One range of hours, as tsquery text: the buckets that tile it exactly."""

    buckets: str


def stages(seller_id: int, now_hour: int) -> list[Stage]:
    """Disjoint hour ranges, newest first: this hour and the future, then blocks back in time that
    grow 4× every few stages (1 to 4 blocks of 1 h, then of 4 h, … of 16,384 h: each size until
    the next one is aligned), then the 7.5-year blocks back to 1970 together.

    Exact tiles read no hour twice, and the stage that fills the window over-reads at most one
    tile, never larger than 3× what the stages before it read: a 4-hour block that also held the
    newer hours already read fetched 5,832 rows of `размер` on the benchmark's dense recent hours
    to keep 354. A past stage is one bucket, so the GIN index leapfrogs between it and the
    query's lexemes (an OR of buckets walks every row it names).
    """

    def lexeme(shift: int, index: int) -> str:
        return f"T{seller_id}S{shift}B{index}"

    future_end = ((now_hour >> MAX_SHIFT) + 3) << MAX_SHIFT  # ≥ 15 years ahead: empty buckets
    future = [lexeme(0, now_hour), *(lexeme(*b) for b in blocks(now_hour + 1, future_end - 1))]
    out = [Stage(" | ".join(future))]
    end = now_hour  # the hours before `end` are not read yet; `end` is aligned to 1 << shift
    for shift in range(0, MAX_SHIFT, SHIFT_STEP):
        while end > 0:
            end -= 1 << shift
            out.append(Stage(lexeme(shift, end >> shift)))
            if end % (1 << (shift + SHIFT_STEP)) == 0:
                break
    if end > 0:  # the rest, in 7.5-year buckets (a few; the oldest are empty)
        rest = (lexeme(MAX_SHIFT, index) for index in range((end >> MAX_SHIFT) - 1, -1, -1))
        out.append(Stage(" | ".join(rest)))
    return out


def stage_params(stage_list: Sequence[Stage]) -> dict[str, Any]:
    """The bound values of `window(stages=len(stage_list))` for these stages."""
    return {f"stage_{n}_buckets": stage.buckets for n, stage in enumerate(stage_list)}


def window(
    where: Sequence[ColumnElement[bool]],
    query: ColumnElement[Any],
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    *,
    stages: int,
    size: BindParameter[int],
) -> Select[Any]:
    """The newest `size` rows matching `query` (a tsquery) and `where`, newest first.

    A template: each stage's buckets are a parameter (`stage_params`), so a caller can build it
    once per shape of `where` (milliseconds of Python for 25 stages) and execute it with new
    values. `where` must not hold the full-text condition: each stage
    applies `query` and its buckets as two conditions on the GIN index (one index scan).
    """
    i = Interaction
    found: ScalarSelect[Any] | None = None  # matches in the stages so far
    parts: list[CTE] = []
    for n in range(stages):
        # Written into the SQL (they change once an hour): a generic plan that did not know
        # them AND-ed a bitmap of the seller's rows of all time into every stage (80 ms each).
        buckets = cast(bindparam(f"stage_{n}_buckets", type_=Text, literal_execute=True), TSQUERY)
        matches = i.search_vector.op("@@")
        stmt = select(*columns).where(*where, matches(query), matches(buckets))
        if found is not None:
            stmt = stmt.where(found < size)  # a one-time filter: the stage's scan never starts
        stage = stmt.order_by(i.occurred_at.desc(), i.id.desc()).limit(size).cte(f"stage_{n}")
        stage_count = select(func.count()).select_from(stage).scalar_subquery()
        total = stage_count if found is None else found + stage_count
        found = select(total.label("n")).cte(f"found_{n}").select().scalar_subquery()
        parts.append(stage)
    union = union_all(*(select(stage) for stage in parts)).subquery("stages")
    return select(union).order_by(union.c.occurred_at.desc(), union.c.id.desc()).limit(size)
