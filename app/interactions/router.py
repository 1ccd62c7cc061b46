from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.dependencies import CurrentPrincipal
from app.core.deps import SessionDep
from app.core.errors import ERROR_RESPONSES
from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from app.core.schemas import Page
from app.interactions import repository
from app.interactions.schemas import InteractionRead

router = APIRouter(prefix="/interactions", tags=["interactions"], responses=ERROR_RESPONSES)


@router.get("", response_model=Page[InteractionRead])
async def list_interactions(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Page[InteractionRead]:
    """The inbox, newest first (filters and sort modes: see the inbox issue)."""
    after = None
    if cursor:
        occurred, last_id = decode_cursor(cursor, 2)
        try:
            after = (datetime.fromisoformat(occurred), int(last_id))
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("the cursor is not one this API returned") from exc
    rows = await repository.list_newest(
        session, seller_id=principal.seller_id, limit=limit + 1, after=after
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.occurred_at.isoformat(), last.id])
    return Page[InteractionRead](
        items=[InteractionRead.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )
