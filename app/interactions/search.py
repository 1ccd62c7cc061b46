"""The relevance window: a seller's newest matches of a query, read newest hours first.

Relevance ranks the newest `Window.size` matches of `q` (the ranking needs each row's tsvector,
so ranking every match of a common word would read a quarter of a big seller's inbox). Finding
the newest matches is the hard part: a GIN index returns matches in no time order, so a rare
word made Postgres either walk the seller's rows newest-first until enough matched or fetch
every match of all time and sort.

So the window is read in stages, newest first, each a range of hours through a GIN index that
knows time, and a stage runs only while the newer ones hold fewer than `size` matches. The
stages are disjoint and ordered, so the newest `size` of their union is exactly the newest
`size` matches. Two kinds of lexeme restrict a stage to its hours:

- hour buckets in `search_vector` (`T<seller>S<shift>B<hour >> shift>`, blocks of 1 to 65,536
  hours; migration `search_vector_time_buckets`). A stage asks `@@ q AND @@ bucket`: the index
  intersects the two, so the stage reads few heap rows, but the bucket holds every row of its
  hours, so on busy hours (the benchmark's last day: 3,000–6,000 rows an hour) the
  intersection costs ≈ 1 ms per hour read, whatever the query.
- block lexemes (`<seller>:<block>:<word>`, 16-hour blocks; migration `search_block_lexemes`,
  its own GIN index): the query rewritten per block (`interaction_block_query`) touches only
  the rows of those blocks that hold its words, ≈ 4× cheaper on busy hours. But a stage fetches
  and sorts every match in its range, and a 16-hour block holds thousands of a common word's.
  The same index holds each pair of adjacent words (`<seller>::<word> <word>`), so a phrase
  reads the rows that hold its words side by side, not every row that holds them both.

A common word fills the window within an hour or two, a rare one needs days. So the window
starts with this hour (and the future) and the hour before, through buckets, and what those two
found decides the next 16–31 hours: `common` matches or more read them in hour-bucket tiles of
1, 4 and 16 hours (`fine`); fewer read them as blocks: the newest in a stage (`probe`) that
gives up, handing over to the tiles, once it finds `probe` matches (a gap in the data, or a
quiet night, made a common word look rare), then the block before it (`coarse`). Behind that
come groups of 1, 4 and 16 blocks (six weeks), and the rest of time in one stage of the query
alone. A query the index cannot search (only
negations: `-брак`) matches most rows: it walks the seller's rows newest first instead.

On the benchmark's data (bench/inbox_bench.py: 1M rows of one seller, 10 queries matching 0.3 %
to 23 % of them) a window costs 3–6 ms of one connection's time, the phrase included (it read
seven rows holding both its words for each one holding them side by side: 11 ms before the
pairs), from 3–16 ms (the phrase 22 ms) through hour buckets alone.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    CTE,
    BigInteger,
    BindParameter,
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP, TSQUERY
from sqlalchemy.orm import InstrumentedAttribute

from app.interactions.models import Interaction

SHIFT_STEP = 2  # bucket sizes grow 4×: 1 h, 4 h, 16 h, …
MAX_SHIFT = 16  # the largest bucket: 2**16 h ≈ 7.5 years
BLOCK_SHIFT = 4  # block lexemes: 16-hour blocks (the migration's `hour >> 4`)
FINE_SHIFTS = (0, 2, 4)  # hour-bucket tiles of the fine range: 1, 4, 16 hours
TAIL_GROUPS = (1, 1, 1, 4, 4, 4, 16, 16, 16)  # blocks per stage behind it: 63 blocks, 42 days

Kind = Literal["buckets", "fine", "probe", "coarse", "blocks", "rest"]
BUCKET_KINDS: tuple[Kind, ...] = ("buckets", "fine")  # stages over hour buckets
BLOCK_KINDS: tuple[Kind, ...] = ("probe", "coarse", "blocks")  # stages over 16-hour blocks


@dataclass(frozen=True)
class Window:
    """How many matches are ranked, and when a query counts as common (see the module doc)."""

    size: int = 500
    common: int = 128  # matches in this hour and the one before: read the next hours in tiles
    probe: int = 4096  # matches in the blocks' first stage: it gives up, the tiles take over


@dataclass(frozen=True)
class Stage:
    """One range of hours. `buckets` and `fine`: hour buckets as tsquery text; `probe`, `coarse`
    and `blocks`: the 16-hour blocks first..last; `probe` and `rest`: only rows before `before`."""

    kind: Kind
    buckets: str = ""
    blocks: tuple[int, int] = (0, 0)
    before: datetime | None = None


def hour_of(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def tiles(first: int, last: int) -> list[tuple[int, int]]:
    """The fewest aligned buckets (shift, index) that tile the hours first..last."""
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


def stages(seller_id: int, now_hour: int) -> list[Stage]:
    """The stages newest first (see the module doc): this hour and the future, the hour before,
    the next 16–31 hours both as tiles and as one block stage, the tail's blocks, the rest."""

    def bucket(shift: int, index: int) -> str:
        return f"T{seller_id}S{shift}B{index}"

    future_end = ((now_hour >> MAX_SHIFT) + 3) << MAX_SHIFT  # ≥ 15 years ahead: empty buckets
    future = [bucket(0, now_hour), *(bucket(*t) for t in tiles(now_hour + 1, future_end - 1))]
    end = now_hour - 1  # the hours before `end` are not read yet
    out = [Stage("buckets", " | ".join(future)), Stage("buckets", bucket(0, end))]
    fine_end = (end - 16) >> BLOCK_SHIFT << BLOCK_SHIFT  # block-aligned, ≥ 16 hours back
    newest_block = (end - 1) >> BLOCK_SHIFT  # the probe reads its hours before `end`
    out.append(Stage("probe", blocks=(newest_block, newest_block), before=_moment(end)))
    if fine_end >> BLOCK_SHIFT < newest_block:  # the rest of the fine range: one more block
        out.append(Stage("coarse", blocks=(newest_block - 1, newest_block - 1)))
    for shift in FINE_SHIFTS:  # tiles of each size until the next size is aligned
        while end > fine_end and (shift == FINE_SHIFTS[-1] or end % (1 << (shift + 2))):
            end -= 1 << shift
            out.append(Stage("fine", bucket(shift, end >> shift)))
    block = fine_end >> BLOCK_SHIFT
    for size in TAIL_GROUPS:
        if block <= 0:
            break
        first = max(0, block - size)
        out.append(Stage("blocks", blocks=(first, block - 1)))
        block = first
    out.append(Stage("rest", before=_moment(block << BLOCK_SHIFT)))
    return out


def _moment(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def stage_params(stage_list: Sequence[Stage], window: Window) -> dict[str, Any]:
    """The bound values of `newest(kinds=[s.kind for s in stage_list])` for these stages."""
    params: dict[str, Any] = {"window": window.size, "common": window.common, "probe": window.probe}
    for n, stage in enumerate(stage_list):
        if stage.kind in BUCKET_KINDS:
            params[f"stage_{n}_buckets"] = stage.buckets
        if stage.kind in BLOCK_KINDS:
            params[f"stage_{n}_first"], params[f"stage_{n}_last"] = stage.blocks
        if stage.before is not None:
            params[f"stage_{n}_before"] = stage.before
    return params


def _inline(name: str, type_: Any) -> BindParameter[Any]:
    """A value written into the SQL: a generic plan that did not know the stages' ranges (or
    the seller) AND-ed a bitmap of the seller's rows of all time into every stage (80 ms each),
    and one that did not know the LIMIT walked the seller's rows by time."""
    return bindparam(name, type_=type_, literal_execute=True)


def parsed(q: ColumnElement[str]) -> CTE:
    """The query, parsed once per statement (`q`, a tsquery), and whether an index can search
    it (`searchable`: it has a word that is not negated)."""
    query = func.websearch_to_tsquery("russian", q)
    searchable = func.querytree(query).not_in(["", "T"])
    return select(query.label("q"), searchable.label("searchable")).cte("search_query")


def newest(
    where: Sequence[ColumnElement[bool]],
    search_query: CTE,
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    *,
    kinds: Sequence[Kind],
    seller_id: BindParameter[int],
) -> Select[Any]:
    """The newest `window` rows matching the `parsed` query and `where`, newest first.

    The stages, each sorted newest first, are concatenated in their order (UNION ALL: one
    Append) under a LIMIT: their ranges are disjoint and newest first, so the first `window`
    rows are the newest, and Postgres runs a stage only while the ones before it gave fewer.

    A template: the stages' values are parameters (`stage_params`), so a caller builds it once
    per shape of `where` and of the stage list and executes it with new values. `where` must
    not hold the full-text condition: each stage applies the query in its own way.
    """
    i = Interaction
    size = _inline("window", Integer)
    query = select(search_query.c.q).scalar_subquery()
    searchable = select(search_query.c.searchable).scalar_subquery()
    matches = i.search_vector.op("@@")
    # The query checked row by row: a function call, never a condition of the GIN index (where
    # the planner AND-ed it, a phrase's common words cost more than the blocks they narrowed).
    exact = func.ts_match_vq(i.search_vector, query)
    in_blocks = func.interaction_block_lexemes(i.seller_id, i.occurred_at, i.search_vector)
    ordered = (i.occurred_at.desc(), i.id.desc())

    first_two: list[CTE] = []  # this hour and the one before: what they found picks the way
    common: ScalarSelect[Any] | None = None  # whether the tiles read the next hours
    parts: list[Select[Any]] = []
    for n, kind in enumerate(kinds):
        stmt = select(*columns).where(*where, searchable)
        if kind in BUCKET_KINDS:
            buckets = cast(_inline(f"stage_{n}_buckets", Text), TSQUERY)
            stmt = stmt.where(matches(query), matches(buckets))
        elif kind == "rest":
            stmt = stmt.where(matches(query))
        else:
            first = _inline(f"stage_{n}_first", BigInteger)
            last = _inline(f"stage_{n}_last", BigInteger)
            rewritten = func.interaction_block_query(query, seller_id, first, last)
            stmt = stmt.where(in_blocks.op("@@")(rewritten), exact)
        if kind in ("probe", "rest"):
            before = _inline(f"stage_{n}_before", TIMESTAMP(timezone=True))
            stmt = stmt.where(i.occurred_at < before)
        if kind == "buckets":
            stage = stmt.order_by(*ordered).limit(size).cte(f"stage_{n}")
            first_two.append(stage)
            parts.append(select(stage))
            continue
        if kind == "probe":
            found = sum((_count(stage) for stage in first_two), literal(0))
            part, common = _probe(stmt, found, size)
            parts.append(part)
            continue
        if kind in ("fine", "coarse"):
            assert common is not None
            stmt = stmt.where(common if kind == "fine" else ~common)
        parts.append(stmt.order_by(*ordered).limit(size))
    # A query the index cannot search (only negations) matches most rows: the newest of them.
    walk = select(*columns).where(*where, ~searchable, func.numnode(query) > 0, exact)
    parts.append(walk.order_by(*ordered).limit(size))
    return select(union_all(*parts).subquery("stages")).limit(size)


def _count(stage: CTE) -> ScalarSelect[int]:
    return select(func.count()).select_from(stage).scalar_subquery()


def _probe(
    stmt: Select[Any], found: ColumnElement[int], size: BindParameter[int]
) -> tuple[Select[Any], ScalarSelect[Any]]:
    """The block stage of the fine range: run only when the first two stages found fewer than
    `common` matches; in the heap's order, stopped at `probe` matches (then the range is left
    to the tiles). Returns the stage and whether the tiles read the range."""
    threshold, limit = _inline("common", Integer), _inline("probe", Integer)
    probe = stmt.where(found < threshold).limit(limit).cte("probe")
    mode = select(((found >= threshold) | (_count(probe) >= limit)).label("common")).cte("mode")
    common = select(mode.c.common).scalar_subquery()
    newest_first = (probe.c.occurred_at.desc(), probe.c.id.desc())
    return select(probe).where(~common).order_by(*newest_first).limit(size), common
