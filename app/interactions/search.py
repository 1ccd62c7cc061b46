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

Stages run newest first: this hour and the future, then the 4-hour, 16-hour, … block holding the
newest hour not read yet (rows of newer hours a block reaches into are filtered out), and a stage
runs only while the newer ones hold fewer than `window` matches. The stages are
disjoint and ordered, so the newest `window` of their union is exactly the newest `window`
matches, whatever the stage sizes.

On the benchmark's data (bench/inbox_bench.py: 1M rows of one seller, 10 queries matching
0.3 % to 23 % of them), Postgres spends ≈ 15 ms of CPU per window; the newest-first walk this
replaces spent ≈ 45 ms, and seconds on a rare word with a cold cache.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from sqlalchemy.dialects.postgresql import TIMESTAMP, TSQUERY
from sqlalchemy.orm import InstrumentedAttribute

from app.interactions.models import Interaction

SHIFT_STEP = 2  # blocks grow 4×: 1 h, 4 h, 16 h, …
MAX_SHIFT = 16  # the largest block: 2**16 h ≈ 7.5 years


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


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
    """One range of hours: `buckets` (tsquery text) cover it; rows from `before` on (whole hours;
    a bucket can reach into newer, already read hours) are left out."""

    buckets: str
    before: int | None


def stages(seller_id: int, now_hour: int) -> list[Stage]:
    """Hour ranges, newest first: this hour and the future, then 4 h, 16 h, … 7.5-year blocks
    back to 1970.

    A past stage is one bucket, so the GIN index leapfrogs between it and the query's lexemes
    (an OR of buckets would walk every row of every bucket it names).
    """

    def lexeme(shift: int, index: int) -> str:
        return f"T{seller_id}S{shift}B{index}"

    future_end = ((now_hour >> MAX_SHIFT) + 3) << MAX_SHIFT  # ≥ 15 years ahead: empty buckets
    future = [lexeme(0, now_hour), *(lexeme(*b) for b in blocks(now_hour + 1, future_end - 1))]
    out = [Stage(" | ".join(future), None)]
    newest = now_hour - 1  # the newest hour not read yet
    shift = SHIFT_STEP
    while newest >= 0 and shift < MAX_SHIFT:
        index = newest >> shift
        out.append(Stage(lexeme(shift, index), newest + 1))
        newest = (index << shift) - 1
        shift += SHIFT_STEP
    if newest >= 0:  # the rest, in 7.5-year buckets (a few; the oldest are empty)
        rest = (lexeme(MAX_SHIFT, index) for index in range(newest >> MAX_SHIFT, -1, -1))
        out.append(Stage(" | ".join(rest), newest + 1))
    return out


def stage_params(stage_list: Sequence[Stage]) -> dict[str, Any]:
    """The bound values of `window(stages=len(stage_list))` for these stages."""
    params: dict[str, Any] = {}
    for n, stage in enumerate(stage_list):
        params[f"stage_{n}_buckets"] = stage.buckets
        if stage.before is not None:
            params[f"stage_{n}_before"] = hour_start(stage.before)
    return params


def window(
    where: Sequence[ColumnElement[bool]],
    query: ColumnElement[Any],
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    *,
    stages: int,
    size: BindParameter[int],
) -> Select[Any]:
    """The newest `size` rows matching `query` (a tsquery) and `where`, newest first.

    A template: each stage's buckets and bound are parameters (`stage_params`), so a caller can
    build it once per shape of `where` (≈ 5 ms of Python for ten stages) and execute it with new
    values. Stage 0 has no `before`. `where` must not hold the full-text condition: each stage
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
        if n > 0:
            before = bindparam(
                f"stage_{n}_before", type_=TIMESTAMP(timezone=True), literal_execute=True
            )
            stmt = stmt.where(i.occurred_at < before)
            stmt = stmt.where(found < size)  # a one-time filter: the stage's scan never starts
        stage = stmt.order_by(i.occurred_at.desc(), i.id.desc()).limit(size).cte(f"stage_{n}")
        stage_count = select(func.count()).select_from(stage).scalar_subquery()
        total = stage_count if found is None else found + stage_count
        found = select(total.label("n")).cte(f"found_{n}").select().scalar_subquery()
        parts.append(stage)
    union = union_all(*(select(stage) for stage in parts)).subquery("stages")
    return select(union).order_by(union.c.occurred_at.desc(), union.c.id.desc()).limit(size)
