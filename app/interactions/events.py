"""The one way interaction events are written: the audit trail of a customer contact (a draft
generated, a reply queued, sent, failed or dead, a status changed, …)."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.interactions.models import InteractionEvent


def record_event(
    session: AsyncSession,
    *,
    seller_id: int,
    interaction_id: int,
    kind: str,
    actor_user_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> InteractionEvent:
    """Add one event to the session (written with the caller's flush or commit)."""
    event = InteractionEvent(
        seller_id=seller_id,
        interaction_id=interaction_id,
        kind=kind,
        actor_user_id=actor_user_id,
        payload=payload if payload is not None else {},
    )
    session.add(event)
    return event


def record_events(
    session: AsyncSession,
    *,
    seller_id: int,
    interaction_id: int,
    actor_user_id: int | None,
    events: Iterable[tuple[str, dict[str, Any]]],
) -> list[InteractionEvent]:
    """Several events of one interaction by one actor, as (kind, payload), in this order."""
    return [
        record_event(
            session,
            seller_id=seller_id,
            interaction_id=interaction_id,
            kind=kind,
            actor_user_id=actor_user_id,
            payload=payload,
        )
        for kind, payload in events
    ]
