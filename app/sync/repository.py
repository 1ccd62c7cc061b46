"""All SQL of the sync: idempotent upserts, cursors, runs and errors. Every statement is scoped
to one seller."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Boolean,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors import registry
from app.connectors.base import WindowRead
from app.interactions.models import OPEN_STATUSES, ChatMessage, Interaction
from app.sync.models import ACTIVE_RUN_STATUSES, SyncCursor, SyncError, SyncGap, SyncRun

# The marketplace syncs run against, and the `source` of the items its connector reads (demo
# items share the marketplace but are not on it).
MARKETPLACE = registry.DEFAULT_MARKETPLACE
SOURCE = registry.get(MARKETPLACE).source
IDENTITY = ("seller_id", "marketplace", "channel", "external_id")
# Refreshed on every sight of an item (light update); everything else is written once (heavy).
VOLATILE = ("text", "pros", "cons", "rating", "photos_count", "extra")


@dataclass
class Upserted:
    created: int = 0
    updated: int = 0
    ids: dict[str, int] = field(default_factory=dict)  # external_id → id of every row written
    new_ids: list[int] = field(default_factory=list)


def _dedup(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per identity (the last wins): ON CONFLICT cannot touch a row twice."""
    by_key = {tuple(row[k] for k in IDENTITY): row for row in rows}
    return list(by_key.values())


async def lock_existing(
    session: AsyncSession, seller_id: int, channel: str, external_ids: Sequence[str]
) -> None:
    """Lock the stored interactions among `external_ids` in id order, before upserting them.

    ON CONFLICT DO UPDATE locks the rows it meets in the order of its VALUES (the marketplace's
    order), and an operator's bulk action locks them in id order: the two could deadlock. Taken
    here first, for the whole page, the upsert finds them locked already. FOR NO KEY UPDATE is
    the lock the upsert takes (it changes no key column)."""
    if not external_ids:
        return
    table = cast(Table, Interaction.__table__)
    ids_type = ARRAY(table.c.external_id.type)
    await session.execute(
        select(table.c.id)
        .where(
            table.c.seller_id == seller_id,
            table.c.marketplace == MARKETPLACE,
            table.c.channel == channel,
            # One array parameter, not an IN list of a page's thousands of binds.
            table.c.external_id == any_(bindparam("ids", sorted(set(external_ids)), ids_type)),
        )
        .order_by(table.c.id)
        .with_for_update(key_share=True)
    )


async def upsert_interactions(
    session: AsyncSession, rows: Sequence[dict[str, Any]], *, chat: bool = False
) -> Upserted:
    """Insert new items fully, refresh volatile fields of known ones, skip unchanged ones.

    A caller that upserts rows other transactions may hold locks on takes them first with
    `lock_existing` (the sync does, per page)."""
    if not rows:
        return Upserted()
    # The Core table, not the ORM entity: rows are plain dicts, and the ORM bulk-insert path
    # costs ~50 µs of Python per row for nothing here.
    table = cast(Table, Interaction.__table__)
    stmt = insert(table)
    new = stmt.excluded
    current = table.c
    # A reply we sent stays pending while the marketplace moderates it (product.md §1).
    keep_pending = and_(
        current.status == "pending_reply",
        new.status == "open",
        current.reply_pending_until > func.now(),
    )
    keep_closed = current.status == "closed"
    values: dict[str, Any] = {name: getattr(new, name) for name in VOLATILE}
    values |= {
        "status": case((keep_closed | keep_pending, current.status), else_=new.status),
        "needs_response": case(
            (keep_closed, current.needs_response), (keep_pending, False), else_=new.needs_response
        ),
        "first_response_at": func.coalesce(current.first_response_at, new.first_response_at),
        "updated_at": func.now(),
    }
    if chat:  # a chat's SLA clock restarts with each new unanswered buyer message
        values |= {
            "intent": new.intent,
            "priority": new.priority,
            "priority_reason": new.priority_reason,
            "sla_due_at": case(
                (and_(current.status == "open", new.status == "open"), current.sla_due_at),
                else_=new.sla_due_at,
            ),
            "customer_name": func.coalesce(new.customer_name, current.customer_name),
            "order_id": func.coalesce(new.order_id, current.order_id),
            "nm_id": func.coalesce(new.nm_id, current.nm_id),
        }
    changed = or_(
        *(current[name].is_distinct_from(getattr(new, name)) for name in VOLATILE),
        current.status.is_distinct_from(new.status),
        current.needs_response.is_distinct_from(new.needs_response),
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=list(IDENTITY), set_=values, where=None if chat else changed
    ).returning(
        current.id, current.external_id, literal_column("(xmax = 0)", Boolean).label("inserted")
    )
    result = await session.execute(upsert, _dedup(rows))
    out = Upserted()
    for row in result:
        out.ids[row.external_id] = row.id
        if row.inserted:
            out.created += 1
            out.new_ids.append(row.id)
        else:
            out.updated += 1
    return out


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    if not rows:
        return 0
    stmt = (
        insert(ChatMessage)
        .on_conflict_do_nothing(index_elements=["seller_id", "external_id"])
        .returning(ChatMessage.id)
    )
    result = await session.execute(stmt, list({r["external_id"]: r for r in rows}.values()))
    return len(result.all())


async def open_counts(session: AsyncSession, seller_id: int, channel: str) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(Interaction)
        .where(
            Interaction.seller_id == seller_id,
            Interaction.marketplace == MARKETPLACE,
            Interaction.source == SOURCE,  # demo items are not on the marketplace
            Interaction.channel == channel,
            Interaction.status.in_(OPEN_STATUSES),
        )
    )
    return int(result.scalar_one())


async def oldest_open(session: AsyncSession, seller_id: int, channel: str) -> datetime | None:
    result = await session.execute(
        select(func.min(Interaction.occurred_at)).where(
            Interaction.seller_id == seller_id,
            Interaction.marketplace == MARKETPLACE,
            Interaction.source == SOURCE,  # demo items are not on the marketplace
            Interaction.channel == channel,
            Interaction.status.in_(OPEN_STATUSES),
        )
    )
    return result.scalar_one()


async def record_errors(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(SyncError), list(rows))


async def cursor_states(
    session: AsyncSession, seller_id: int, channels: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The cursor of each of these channels ({} for one never synced), in one statement."""
    result = await session.execute(
        select(SyncCursor.channel, SyncCursor.state).where(
            SyncCursor.seller_id == seller_id,
            SyncCursor.marketplace == "wildberries",
            SyncCursor.channel.in_(channels),
        )
    )
    found = {channel: dict(state) if state else {} for channel, state in result}
    return {channel: found.get(channel, {}) for channel in channels}


async def get_cursor_state(session: AsyncSession, seller_id: int, channel: str) -> dict[str, Any]:
    result = await session.execute(
        select(SyncCursor.state).where(
            SyncCursor.seller_id == seller_id,
            SyncCursor.marketplace == MARKETPLACE,
            SyncCursor.channel == channel,
        )
    )
    state = result.scalar_one_or_none()
    return dict(state) if state else {}


async def merge_cursor_state(
    session: AsyncSession, seller_id: int, channel: str, patch: dict[str, Any]
) -> None:
    """Merge `patch` into the cursor, in the caller's transaction (with the data it covers)."""
    stmt = insert(SyncCursor).values(
        seller_id=seller_id, marketplace=MARKETPLACE, channel=channel, state=patch
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["seller_id", "marketplace", "channel"],
        set_={"state": SyncCursor.state.op("||")(stmt.excluded.state), "updated_at": func.now()},
    )
    await session.execute(stmt)


async def get_run(session: AsyncSession, run_id: int) -> SyncRun | None:
    return await session.get(SyncRun, run_id, with_for_update=False)


def new_runs(
    session: AsyncSession,
    seller_id: int,
    channels: Sequence[str],
    *,
    marketplace: str,
    trigger: str,
    full_resync: bool,
    published_at: datetime,
) -> list[SyncRun]:
    """Queued runs, one per channel, added to the session (the caller flushes)."""
    runs = [
        SyncRun(
            seller_id=seller_id,
            marketplace=marketplace,
            channel=channel,
            trigger=trigger,
            full_resync=full_resync,
            status="queued",
            published_at=published_at,
        )
        for channel in channels
    ]
    session.add_all(runs)
    return runs


async def active_runs(session: AsyncSession, seller_id: int) -> list[SyncRun]:
    """The seller's queued or running runs, oldest first."""
    result = await session.scalars(
        select(SyncRun)
        .where(SyncRun.seller_id == seller_id, SyncRun.status.in_(ACTIVE_RUN_STATUSES))
        .order_by(SyncRun.id)
    )
    return list(result)


async def list_runs(
    session: AsyncSession,
    seller_id: int,
    *,
    channel: str | None,
    before_id: int | None,
    limit: int,
) -> list[SyncRun]:
    """The seller's runs (of one channel, or all), newest first, older than `before_id`."""
    stmt = select(SyncRun).where(SyncRun.seller_id == seller_id)
    if channel:
        stmt = stmt.where(SyncRun.channel == channel)
    if before_id is not None:
        stmt = stmt.where(SyncRun.id < before_id)
    return list(await session.scalars(stmt.order_by(SyncRun.id.desc()).limit(limit)))


async def last_runs(
    session: AsyncSession, seller_id: int, channels: Sequence[str]
) -> dict[str, SyncRun]:
    """The newest run of each of these channels that has one, in one statement (a lateral
    lookup per channel: each reads one row of the index, however many runs there are)."""
    wanted = values(column("channel", String), name="wanted").data([(c,) for c in channels])
    newest = (
        select(SyncRun.id)
        .where(SyncRun.seller_id == seller_id, SyncRun.channel == wanted.c.channel)
        .order_by(SyncRun.id.desc())
        .limit(1)
        .correlate(wanted)
        .lateral("newest")
    )
    stmt = (
        select(SyncRun)
        .select_from(wanted)
        .join(newest, true())
        .join(SyncRun, SyncRun.id == newest.c.id)
    )
    return {run.channel: run for run in await session.scalars(stmt)}


async def mark_started(session: AsyncSession, run_id: int) -> None:
    """`running`, with the time it first started (a resumed run keeps it)."""
    await session.execute(
        update(SyncRun)
        .where(SyncRun.id == run_id)
        .values(status="running", started_at=func.coalesce(SyncRun.started_at, func.now()))
    )


async def add_to_run(session: AsyncSession, run_id: int, **counts: int) -> None:
    columns = SyncRun.__table__.c
    increments = {name: columns[name] + value for name, value in counts.items() if value}
    if increments:
        await session.execute(update(SyncRun).where(SyncRun.id == run_id).values(increments))


# --- runs nobody works on -------------------------------------------------------------------


async def unfinished_runs(
    session: AsyncSession, *, published_before: datetime, limit: int
) -> list[SyncRun]:
    """Every seller's runs that may be stuck: `running` ones, and `queued` ones whose task went
    out before `published_before` (the lock in Redis tells which of them are alive)."""
    published = func.coalesce(SyncRun.published_at, SyncRun.created_at)
    result = await session.scalars(
        select(SyncRun)
        .where(
            (SyncRun.status == "running")
            | ((SyncRun.status == "queued") & (published <= published_before))
        )
        .order_by(SyncRun.id)
        .limit(limit)
    )
    return list(result)


async def requeue_run(
    session: AsyncSession, run_id: int, *, from_status: str, now: datetime, note: str | None
) -> SyncRun | None:
    """Back to `queued` with a new publish time, if it is still `from_status`; a run taken from
    `running` counts one more resume and carries `note` until it ends."""
    values: dict[str, Any] = {"status": "queued", "published_at": now}
    if from_status == "running":
        values |= {"resumes": SyncRun.resumes + 1, "error": note}
    return await session.scalar(
        update(SyncRun)
        .where(SyncRun.id == run_id, SyncRun.status == from_status)
        .values(values)
        .returning(SyncRun)
        .execution_options(populate_existing=True)
    )


# --- gaps: windows the marketplace's caps kept us from reading --------------------------------


class GapKey(NamedTuple):
    seller_id: int
    channel: str
    list_name: str  # unanswered | answered


def _seconds(second: int) -> datetime:
    return datetime.fromtimestamp(second, UTC)


def _open(key: GapKey) -> Any:
    return and_(
        SyncGap.seller_id == key.seller_id,
        SyncGap.marketplace == MARKETPLACE,
        SyncGap.channel == key.channel,
        SyncGap.list_name == key.list_name,
        SyncGap.resolved_at.is_(None),
    )


async def record_window(
    session: AsyncSession, key: GapKey, window: WindowRead, run_id: int
) -> bool:
    """Record how reading a dense window went: items missing open its gap (or update the open
    one), none missing resolves it. Returns whether items are missing."""
    window_from, window_to = _seconds(window.date_from), _seconds(window.date_to)
    if window.missing == 0:
        await session.execute(
            update(SyncGap)
            .where(_open(key), SyncGap.window_from == window_from, SyncGap.window_to == window_to)
            .values(missing=0, last_run_id=run_id, checked_at=func.now(), resolved_at=func.now())
        )
        return False
    stmt = insert(SyncGap).values(
        seller_id=key.seller_id,
        marketplace=MARKETPLACE,
        channel=key.channel,
        list_name=key.list_name,
        window_from=window_from,
        window_to=window_to,
        total=window.read + window.missing,
        missing=window.missing,
        run_id=run_id,
        last_run_id=run_id,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[
                "seller_id", "marketplace", "channel", "list_name", "window_from", "window_to"
            ],
            index_where=SyncGap.resolved_at.is_(None),
            set_={
                "total": stmt.excluded.total,
                "missing": stmt.excluded.missing,
                "last_run_id": run_id,
                "checked_at": func.now(),
            },
        )
    )  # fmt: skip
    return True


async def open_gap_windows(
    session: AsyncSession, key: GapKey, *, before: int, limit: int
) -> list[tuple[int, int]]:
    """(from, to) Unix seconds of this list's open gaps ending before `before`, the least
    recently read first."""
    result = await session.execute(
        select(SyncGap.window_from, SyncGap.window_to)
        .where(_open(key), SyncGap.window_to < _seconds(before))
        .order_by(SyncGap.checked_at, SyncGap.id)
        .limit(limit)
    )
    return [(int(a.timestamp()), int(b.timestamp())) for a, b in result]


async def resolve_gaps_read(
    session: AsyncSession, key: GapKey, *, since: int | None, dense: set[int]
) -> None:
    """Close this list's open gaps from `since` on (all of them without) that a complete read
    went through without meeting them as dense windows: nothing in them is missing any more."""
    conditions = [_open(key)]
    if since is not None:
        conditions.append(SyncGap.window_from >= _seconds(since))
    if dense:
        conditions.append(SyncGap.window_from.not_in([_seconds(s) for s in dense]))
    await session.execute(
        update(SyncGap)
        .where(*conditions)
        .values(missing=0, checked_at=func.now(), resolved_at=func.now())
    )


async def open_gaps(session: AsyncSession, seller_id: int, *, limit: int = 100) -> list[SyncGap]:
    """The seller's open gaps, newest window first (the sync status and the alerts)."""
    result = await session.scalars(
        select(SyncGap)
        .where(SyncGap.seller_id == seller_id, SyncGap.resolved_at.is_(None))
        .order_by(SyncGap.window_from.desc(), SyncGap.id.desc())
        .limit(limit)
    )
    return list(result)
