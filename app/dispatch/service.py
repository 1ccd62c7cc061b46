"""The API side of the outbox: validate a reply, queue it with the interaction's status change in
one transaction, and answer the same Idempotency-Key with the same row."""

import hashlib
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import Principal
from app.core.errors import AppError, Conflict, NotFound
from app.dispatch import repository
from app.dispatch.models import OutboundReply
from app.dispatch.schemas import ReplyCreate
from app.drafts import guardrails
from app.drafts import service as drafts_service
from app.interactions import events
from app.interactions.models import Interaction
from app.interactions.service import get_interaction
from app.sellers import reauth
from app.sellers import service as sellers_service
from app.sellers.models import MarketplaceAccount
from app.worker import enqueue, names

# The API publishes the send task itself; the sweeper publishes it again only if the row is still
# queued this much later (a lost task), so a busy queue is not flooded. A publish that failed is
# known at once: those rows are made due now (`_send_soon`), for the sweeper's next pass.
REQUEUE_AFTER = timedelta(minutes=2)


class ReplyRejected(AppError):
    status_code = 422
    code = "reply_rejected"


async def queue_reply(
    session: AsyncSession,
    principal: Principal,
    interaction_id: int,
    body: ReplyCreate,
    idempotency_key: str | None,
) -> tuple[OutboundReply, bool]:
    """The outbox row for this reply, and whether this call created it."""
    interaction = await repository.lock_interaction(session, principal.seller_id, interaction_id)
    if interaction is None:
        raise NotFound("interaction not found")
    request_hash = _request_hash(interaction_id, body)
    if idempotency_key is not None:
        existing = await repository.by_idempotency_key(
            session, principal.seller_id, idempotency_key
        )
        if existing is not None:
            if existing.request_hash != request_hash:
                raise Conflict(
                    "this Idempotency-Key was used for another request",
                    code="idempotency_key_reused",
                )
            return existing, False
    await _validate(session, interaction, body)
    now = datetime.now(UTC)
    draft = await drafts_service.last_draft(session, interaction.id)
    reply = OutboundReply(
        seller_id=principal.seller_id,
        interaction_id=interaction.id,
        channel=interaction.channel,
        action=body.action,
        text=body.text,
        state="queued",
        attempts=0,
        next_attempt_at=now + REQUEUE_AFTER,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        draft_text=draft.text if draft else None,
        created_by=principal.user_id,
    )
    try:
        await repository.add(session, reply)
    except IntegrityError:
        # Another request took this key (for another interaction) between our check and insert.
        raise Conflict(
            "this Idempotency-Key was used for another request", code="idempotency_key_reused"
        ) from None
    window = await sellers_service.reply_pending_window(session, principal.seller_id)
    interaction.status = "pending_reply"
    interaction.needs_response = False
    interaction.reply_pending_until = now + timedelta(minutes=window)
    events.record_event(
        session,
        seller_id=principal.seller_id,
        interaction_id=interaction.id,
        kind="reply_queued",
        actor_user_id=principal.user_id,
        payload={"reply_id": reply.id, "action": body.action},
    )
    enqueue.defer(session, names.DISPATCH_SEND, reply.id)
    return reply, True


@reauth.on_resume
async def _release_waiting(session: AsyncSession, account: MarketplaceAccount) -> None:
    """An account works again: the replies its refusal kept waiting are due at once (the
    sweeper sends them)."""
    await repository.release_waiting(session, account.seller_id, datetime.now(UTC))


@enqueue.on_publish_failure(names.DISPATCH_SEND)
async def _send_soon(session: AsyncSession, calls: Sequence[tuple[Any, ...]]) -> None:
    """The broker is down: the sweeper (every few seconds) sends these replies once it is back."""
    await repository.send_soon(session, [reply_id for (reply_id,) in calls], datetime.now(UTC))


async def lock_for_bulk(session: AsyncSession, principal: Principal, ids: Sequence[int]) -> None:
    """Lock every interaction a bulk request replies to, up front and in id order (not in the
    request's order, which would let two bulk requests deadlock)."""
    await repository.lock_interactions(session, principal.seller_id, ids)


async def _validate(session: AsyncSession, interaction: Interaction, body: ReplyCreate) -> None:
    await sellers_service.usable_account(session, interaction.seller_id, interaction.marketplace)
    _check_guardrails(interaction, body)
    if interaction.channel == "chat":
        _check_chat(interaction, body)
    else:
        await _check_answer_state(session, interaction, body)


def _check_guardrails(interaction: Interaction, body: ReplyCreate) -> None:
    channel = cast(guardrails.Channel, interaction.channel)
    findings = guardrails.check(
        body.text, channel, customer_text=_customer_text(interaction), intent=interaction.intent
    )
    blocking = guardrails.blocking(findings)
    if blocking:
        raise ReplyRejected(
            "the reply breaks the channel's rules", details=[asdict(f) for f in blocking]
        )


def _check_chat(interaction: Interaction, body: ReplyCreate) -> None:
    """A chat takes one message after another, never an edit, and only with a reply sign."""
    if body.action == "edit":
        raise ReplyRejected("chat messages cannot be edited")
    if not interaction.extra.get("reply_sign"):
        raise ReplyRejected("this chat cannot be answered yet: the marketplace gave no reply sign")


async def _check_answer_state(
    session: AsyncSession, interaction: Interaction, body: ReplyCreate
) -> None:
    """A review or question has one answer: a second one is a 409, an edit needs an answer the
    marketplace still lets us edit."""
    live = await repository.live_reply(session, interaction.id, body.action)
    if live is not None:
        what = "an answer" if body.action == "answer" else "an edit"
        raise Conflict(
            f"this {interaction.channel} already has {what} ({live.state}, reply {live.id})",
            code="already_replied",
            details={"reply_id": live.id, "state": live.state},
        )
    if body.action == "answer" and _answered_on_marketplace(interaction):
        raise Conflict(
            f"this {interaction.channel} already has an answer on the marketplace; "
            "send action=edit to change it",
            code="already_answered",
            details={"status": interaction.status},
        )
    if body.action == "edit":
        if not await _has_answer(session, interaction):
            raise ReplyRejected("nothing to edit: this item has no answer yet")
        if _synced_answer(interaction).get("editable") is False:
            raise Conflict(
                "the marketplace no longer allows editing this answer (one edit, within 60 days)",
                code="answer_not_editable",
            )


def _synced_answer(interaction: Interaction) -> dict[str, Any]:
    """The answer the last sync saw on the marketplace ({} when there is none)."""
    answer = interaction.extra.get("answer")
    return answer if isinstance(answer, dict) and answer.get("text") else {}


def _answered_on_marketplace(interaction: Interaction) -> bool:
    """Answered, or an answer is in moderation; an answer moderation rejected does not count."""
    answer = _synced_answer(interaction)
    return interaction.status == "responded" or bool(answer and answer.get("state") != "rejected")


async def _has_answer(session: AsyncSession, interaction: Interaction) -> bool:
    if _answered_on_marketplace(interaction):
        return True
    sent = await repository.live_reply(session, interaction.id, "answer")
    return sent is not None and sent.state == "sent"


def _customer_text(interaction: Interaction) -> str:
    parts = (interaction.text, interaction.pros, interaction.cons)
    return " ".join(p for p in parts if p)


def _request_hash(interaction_id: int, body: ReplyCreate) -> str:
    request = {"interaction_id": interaction_id, "text": body.text, "action": body.action}
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


async def list_replies(
    session: AsyncSession, principal: Principal, interaction_id: int
) -> Sequence[OutboundReply]:
    """The interaction's outbox entries, newest first; an unknown or foreign id is a 404."""
    await get_interaction(session, principal.seller_id, interaction_id)
    return await repository.for_interaction(session, principal.seller_id, interaction_id)


async def get_reply(session: AsyncSession, principal: Principal, reply_id: int) -> OutboundReply:
    reply = await repository.get(session, principal.seller_id, reply_id)
    if reply is None:
        raise NotFound("reply not found")
    return reply
