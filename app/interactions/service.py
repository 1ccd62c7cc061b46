"""The operator's inbox: list, counts, triage (each change recorded as an event). The card is a
read model over several domains (app/cards)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.service import Principal
from app.core.errors import NotFound, ValidationFailed
from app.core.pagination import decode_cursor, encode_cursor
from app.core.schemas import Id
from app.interactions import repository
from app.interactions.events import record_events
from app.interactions.models import Interaction
from app.interactions.schemas import (
    Counts,
    InteractionFilters,
    InteractionListQuery,
    InteractionPage,
    InteractionRead,
    InteractionUpdate,
    SlaState,
)

CONTEXT_DAYS = 180  # the product context's window (the card's, the drafts')
# What `repository.cursor_values` writes after the sort's name, per sort: a cursor of another
# sort order, or with a value out of its column's range, is an invalid cursor.
_SmallInt = Annotated[int, Field(ge=-32768, le=32767)]
_Score = Annotated[float, Field(allow_inf_nan=False)]
CURSORS: dict[str, TypeAdapter[tuple[Any, ...]]] = {
    "priority": TypeAdapter(tuple[Literal["priority"], _SmallInt, AwareDatetime | None, Id]),
    "relevance": TypeAdapter(tuple[Literal["relevance"], _Score, Id, Id]),
    "newest": TypeAdapter(tuple[Literal["newest"], AwareDatetime, Id]),
    "oldest": TypeAdapter(tuple[Literal["oldest"], AwareDatetime, Id]),
}


class InvalidFilter(ValidationFailed):
    """A filter, cursor or change that the caller's data does not allow."""


def sla_state(needs_response: bool, due: datetime | None, now: datetime) -> SlaState:
    """Where an interaction stands against its deadline (`repository.conditions` filters by it
    in SQL with the same bounds)."""
    if not needs_response or due is None:
        return "none"
    if due < now:
        return "overdue"
    return "due_soon" if due < now + repository.DUE_SOON else "on_track"


def read(row: Interaction, now: datetime) -> InteractionRead:
    return InteractionRead.model_validate(row).model_copy(
        update={"sla_state": sla_state(row.needs_response, row.sla_due_at, now)}
    )


async def list_interactions(
    db: AsyncConnection, principal: Principal, params: InteractionListQuery
) -> InteractionPage:
    """A page of the inbox; `next_cursor` is null on the last one."""
    sort, limit = params.sort or ("relevance" if params.q else "priority"), params.limit
    if sort == "relevance" and not params.q:
        raise InvalidFilter("sort=relevance needs a search query q")
    after = None
    if params.cursor:
        after = decode_cursor(params.cursor, CURSORS[sort])[1:]
    now = datetime.now(UTC)
    rows = await repository.list_page(
        db,
        principal.seller_id,
        params,
        user_id=principal.user_id,
        sort=sort,
        after=after,
        limit=limit + 1,
        now=now,
    )
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor([sort, *repository.cursor_values(rows[limit - 1], sort)])
    for row in rows[:limit]:
        row["sla_state"] = sla_state(row["needs_response"], row["sla_due_at"], now)
    return InteractionPage.model_validate({"items": rows[:limit], "next_cursor": next_cursor})


async def count_interactions(
    session: AsyncSession, principal: Principal, filters: InteractionFilters
) -> Counts:
    """Tab counts: per channel (ignoring the channel filter) and per status (ignoring status)."""
    now = datetime.now(UTC)

    def where(**without: Any) -> Any:
        f = filters.model_copy(update=without)
        return repository.conditions(principal.seller_id, f, user_id=principal.user_id, now=now)

    by_channel, _ = await repository.counts(session, where(channel=None))
    _, by_status = await repository.counts(session, where(status=None))
    return Counts(total=sum(by_channel.values()), by_channel=by_channel, by_status=by_status)


async def get_interaction(
    session: AsyncSession, seller_id: int, interaction_id: int
) -> Interaction:
    row = await repository.get(session, seller_id, interaction_id)
    if row is None:
        raise NotFound("interaction not found")
    return row


# --- what a draft reads (the card reads the same in its one statement: app/cards) ----------


async def last_replies(
    session: AsyncSession, seller_id: int, nm_id: int
) -> list[tuple[int, str, datetime, str]]:
    """The seller's latest answers on a product: (interaction id, channel, time, text)."""
    return await repository.last_replies(session, seller_id, nm_id)


async def top_intents(
    session: AsyncSession, seller_id: int, nm_id: int, since: datetime
) -> list[tuple[str, int]]:
    """The product's typical complaints and questions since `since`: (intent, count)."""
    return await repository.top_intents(session, seller_id, nm_id, since)


async def chat_messages(
    session: AsyncSession, seller_id: int, interaction_id: int, *, limit: int
) -> list[tuple[str, str | None]]:
    """(direction, text) of a chat's newest `limit` messages, newest first."""
    return await repository.chat_messages(session, seller_id, interaction_id, limit=limit)


# --- triage ------------------------------------------------------------------------------


async def update(
    session: AsyncSession, principal: Principal, interaction_id: int, changes: InteractionUpdate
) -> Interaction:
    rows = await _locked(session, principal, [interaction_id])
    if not rows:
        raise NotFound("interaction not found")
    row = rows[0]
    await _validate(session, principal, changes)
    _apply(session, principal, row, changes)
    await session.flush()
    return row


async def bulk_update(
    session: AsyncSession, principal: Principal, ids: list[int], changes: InteractionUpdate
) -> tuple[list[int], list[int]]:
    await _validate(session, principal, changes)
    rows = await _locked(session, principal, sorted(set(ids)))
    for row in rows:
        _apply(session, principal, row, changes)
    await session.flush()
    found = {row.id for row in rows}
    return sorted(found), sorted(set(ids) - found)


async def _locked(session: AsyncSession, principal: Principal, ids: list[int]) -> list[Interaction]:
    return await repository.get_many(session, principal.seller_id, ids, for_update=True)


async def _validate(
    session: AsyncSession, principal: Principal, changes: InteractionUpdate
) -> None:
    assignee = changes.assignee_id
    if assignee is not None and not await repository.user_in_seller(
        session, principal.seller_id, assignee
    ):
        raise InvalidFilter("unknown assignee", details={"assignee_id": assignee})


def _apply(
    session: AsyncSession, principal: Principal, row: Interaction, changes: InteractionUpdate
) -> None:
    sent = changes.model_fields_set
    events: list[tuple[str, dict[str, Any]]] = []
    if "status" in sent and changes.status != row.status:
        events.append(("status_changed", {"from": row.status, "to": changes.status}))
        row.status = changes.status  # type: ignore[assignment]
        row.needs_response = changes.status == "open"
    if changes.priority is not None:
        events.append(("priority_overridden", {
            "from": row.priority, "to": changes.priority, "reason": changes.priority_reason,
        }))  # fmt: skip
        row.priority = changes.priority
        row.priority_reason = f"operator: {changes.priority_reason}"
    if "assignee_id" in sent and changes.assignee_id != row.assignee_id:
        events.append(("assigned", {"from": row.assignee_id, "to": changes.assignee_id}))
        row.assignee_id = changes.assignee_id
    if "is_read" in sent and changes.is_read != row.is_read:
        events.append(("marked_read" if changes.is_read else "marked_unread", {}))
        row.is_read = bool(changes.is_read)
    record_events(
        session,
        seller_id=row.seller_id,
        interaction_id=row.id,
        actor_user_id=principal.user_id,
        events=events,
    )
