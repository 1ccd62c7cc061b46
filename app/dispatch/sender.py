"""The worker side of the outbox: send one reply at most once, and sweep what needs another try.

At most once to the customer: an attempt holds a Redis lock (renewed while it works) and claims
the row (`sending`, one more attempt) in a committed transaction before calling the marketplace.
Every attempt after the first (a retry after an error that may have landed, or a row whose
worker died mid-send) first asks the marketplace whether our text is already there, and sends
only if it is not. The sweeper re-queues `sending` rows only when their lock has expired, so a
live, slow attempt is never run twice.
"""

import asyncio
import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.connectors.base import (
    AuthError,
    BadRequest,
    ConnectorError,
    Environment,
    Marketplace,
    MaybeDelivered,
    RetryPolicy,
)
from app.core import locks
from app.core.backoff import full_jitter
from app.core.config import Settings
from app.core.db import transaction
from app.core.ratelimit import RateLimitTimeout
from app.core.security import SecretBox
from app.dispatch import quality, repository
from app.dispatch.models import WAITING_STATES, OutboundReply
from app.dispatch.service import REQUEUE_AFTER
from app.interactions import events
from app.interactions.models import OPEN_STATUSES, Interaction
from app.sellers import service as sellers_service
from app.sellers.exceptions import AccountPaused, NoAccount
from app.worker import enqueue, names

logger = logging.getLogger(__name__)

LOCK_TTL = 30.0
# A `sending` row is looked at by the sweeper this long after its claim (its lock decides).
SENDING_CHECK_AFTER = timedelta(seconds=30)
# One attempt, token wait included, is cut off after this; the call may then have landed, so
# the next attempt checks the marketplace first.
ATTEMPT_TIMEOUT = 300.0
BACKOFF_BASE, BACKOFF_CAP = 2.0, 300.0
SWEEP_BATCH = 500
# A reply whose account needs re-authorisation waits queued, uncounted; it is looked at again
# this often, and at once when the account resumes (app/sellers/reauth.py).
PAUSED_RECHECK = timedelta(hours=1)
# A failed check fails the attempt soon: the sweeper retries it with backoff.
SEND_RETRY = RetryPolicy(max_attempts=3, backoff_cap=5.0)


@dataclass
class DispatchDeps:
    """What sending needs; tests pass their own (e.g. a sandbox transport)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    settings: Settings
    transport: httpx.AsyncBaseTransport | None = None
    marketplace_url: str | None = None  # every marketplace endpoint here (`Environment.base_url`)


class Remote(enum.Enum):
    ABSENT = "absent"  # not there: send
    OURS = "ours"  # our text is there: record it as sent, do not send again
    OTHER = "other"  # another answer is there (given in the seller portal): give up


@dataclass
class Outcome:
    state: str  # sent | failed | dead
    confirmed_by: str | None = None
    error: str | None = None
    uncertain: bool = False  # the attempt may have reached the marketplace
    retry_at: datetime | None = None  # instead of the backoff
    counted: bool = True  # False: the attempt only looked and waits (not one of max_attempts)
    refused: str | None = None  # the marketplace refused the token: pause the account (why)


def lock_key(reply_id: int) -> str:
    return f"sellerdesk:lock:reply:{reply_id}"


async def send(deps: DispatchDeps, reply_id: int) -> str:
    """One attempt at one reply; safe to run twice. Returns the reply's state afterwards."""
    key, owner = lock_key(reply_id), uuid.uuid4().hex
    if not await locks.acquire(deps.redis, key, owner, LOCK_TTL):
        return "busy"
    async with locks.keep_alive(deps.redis, key, owner, LOCK_TTL):
        now = datetime.now(UTC)
        async with transaction(deps.sessionmaker) as session:
            reply = await repository.claim(session, reply_id, now)
            if reply is None:
                return "skipped"
            reply.next_attempt_at = now + SENDING_CHECK_AFTER
            interaction = await repository.get_interaction(session, reply.interaction_id)
            assert interaction is not None  # the reply's foreign key cascades
            marketplace = interaction.marketplace
            box = SecretBox(deps.settings.secrets_key.get_secret_value())
            try:
                access = await sellers_service.marketplace_access(
                    session, box, reply.seller_id, marketplace
                )
            except NoAccount as exc:
                access, outcome = None, Outcome("failed", error=str(exc))
            except AccountPaused as exc:
                access, outcome = None, _paused(str(exc))
        if access is not None:
            env = Environment.of(deps.settings, deps.transport, deps.marketplace_url)
            client = sellers_service.connect(access, redis=deps.redis, env=env, retry=SEND_RETRY)
            async with client:
                outcome = await _attempt(client, reply, interaction, deps.settings)
        return await _record(deps, reply, outcome, marketplace)


async def _attempt(
    client: Marketplace, reply: OutboundReply, interaction: Interaction, settings: Settings
) -> Outcome:
    hidden_until = _hidden_until(reply, interaction, settings)
    try:
        async with asyncio.timeout(ATTEMPT_TIMEOUT):
            if reply.attempts > 1:
                remote = await _remote(client, reply, interaction)
                if remote is not Remote.ABSENT:
                    return _found(remote)
                if hidden_until is not None and datetime.now(UTC) < hidden_until:
                    return Outcome(
                        "failed", error=MODERATION_WAIT, retry_at=hidden_until, counted=False
                    )
            try:
                await _deliver(client, reply, interaction)
            except BadRequest as exc:  # e.g. "already answered": look before deciding
                remote = await _remote(client, reply, interaction)
                if remote is not Remote.ABSENT:
                    return _found(remote)
                if hidden_until is not None:  # probably our earlier attempt, still hidden
                    retry_at = datetime.now(UTC) + _moderation(settings)
                    return Outcome("failed", error=f"{MODERATION_WAIT}: {exc}", retry_at=retry_at)
                return Outcome("dead", error=str(exc))
            return Outcome("sent", confirmed_by="sent")
    except (MaybeDelivered, TimeoutError) as exc:
        return Outcome("failed", error=str(exc) or "attempt timed out", uncertain=True)
    except AuthError as exc:  # refused before it was processed: not an attempt at the reply
        reason = sellers_service.refusal_reason(exc, "a reply send")
        return _paused(reason, refused=reason)
    except (ConnectorError, RateLimitTimeout) as exc:
        return Outcome("failed", error=str(exc) or type(exc).__name__)


def _paused(reason: str, refused: str | None = None) -> Outcome:
    """Back to queued, uncounted, until the account works again."""
    retry_at = datetime.now(UTC) + PAUSED_RECHECK
    return Outcome("queued", error=reason[:500], retry_at=retry_at, counted=False, refused=refused)


MODERATION_WAIT = (
    "an earlier attempt may be in the marketplace's moderation, which hides a question's answer"
)


def _moderation(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.dispatch_question_moderation_seconds)


def _hidden_until(
    reply: OutboundReply, interaction: Interaction, settings: Settings
) -> datetime | None:
    """Until when an answer that may have landed could still be invisible to our check."""
    if interaction.channel != "question" or reply.uncertain_since is None:
        return None
    return reply.uncertain_since + _moderation(settings)


def _found(remote: Remote) -> Outcome:
    if remote is Remote.OURS:
        return Outcome("sent", confirmed_by="found")
    return Outcome("dead", error="the item already has another answer on the marketplace")


async def _deliver(client: Marketplace, reply: OutboundReply, interaction: Interaction) -> None:
    if interaction.channel == "review":
        await client.answer_review(interaction.external_id, reply.text, edit=reply.action == "edit")
    elif interaction.channel == "question":
        await client.answer_question(interaction.external_id, reply.text)
    else:
        await client.send_chat_message(interaction.extra, reply.text)


async def _remote(client: Marketplace, reply: OutboundReply, interaction: Interaction) -> Remote:
    """Is our reply already on the marketplace? (review/question: the answer; chat: the seller's
    messages in this chat since the reply was queued)"""
    if interaction.channel == "chat":
        since_ms = int(reply.created_at.timestamp() * 1000) - 5_000
        texts = await client.seller_messages_since(interaction.external_id, since_ms)
        return (
            Remote.OURS if any(quality.same_text(t, reply.text) for t in texts) else Remote.ABSENT
        )
    if interaction.channel == "review":
        answer = await client.review_answer(interaction.external_id)
    else:
        answer = await client.question_answer(interaction.external_id)
    if quality.same_text(answer, reply.text):
        return Remote.OURS
    if answer is None or reply.action == "edit":
        return Remote.ABSENT
    return Remote.OTHER


async def _record(
    deps: DispatchDeps, reply: OutboundReply, outcome: Outcome, marketplace: str
) -> str:
    now = datetime.now(UTC)
    state = outcome.state
    attempts = reply.attempts if outcome.counted else reply.attempts - 1
    if state == "failed" and attempts >= deps.settings.dispatch_max_attempts:
        state = "dead"
    values: dict[str, object] = {
        "state": state,
        "updated_at": now,
        "last_error": outcome.error,
        "attempts": attempts,
    }
    if state == "sent":
        values |= {
            "sent_at": now,
            "confirmed_by": outcome.confirmed_by,
            "quality": quality.classify(reply.text, reply.draft_text),
        }
    elif state in WAITING_STATES:
        backoff = now + timedelta(seconds=_backoff(reply.attempts))
        values["next_attempt_at"] = outcome.retry_at or backoff
    if outcome.uncertain:
        values["uncertain_since"] = reply.uncertain_since or now
    async with transaction(deps.sessionmaker) as session:
        # A paused reply reads its account's state under a share lock, first: a resume (which
        # updates the account, then releases the waiting replies) either sees this reply
        # queued or is seen here as done, so no reply waits an hour behind a working token.
        account_status = (
            await sellers_service.account_status_locked(session, reply.seller_id, marketplace)
            if state == "queued"
            else None
        )
        # The interaction first, then its reply: the order a reply request takes them in.
        interaction = await repository.lock_interaction(
            session, reply.seller_id, reply.interaction_id
        )
        assert interaction is not None  # the reply's foreign key cascades
        # Only the attempt that claimed the row records it (a stale one finds another attempt).
        updated = await repository.record_attempt(session, reply.id, reply.attempts, values)
        if updated is None:
            logger.warning("reply %s attempt %s was taken over", reply.id, reply.attempts)
            return "taken_over"
        await _on_interaction(session, interaction, reply, state, values, now)
        if outcome.refused:
            refusal = await sellers_service.mark_needs_reauth(
                session, seller_id=reply.seller_id, marketplace=marketplace,
                reason=outcome.refused, source="reply", token_read_at=reply.sending_since or now,
                payload={"reply_id": reply.id},
            )  # fmt: skip
            if refusal == "stale":  # the token was fixed while this attempt used the old one
                await repository.release_waiting(session, reply.seller_id, now, [reply.id])
        elif account_status == "active":  # paused by a state a resume has ended meanwhile
            await repository.release_waiting(session, reply.seller_id, now, [reply.id])
    if state != "sent":
        logger.warning("reply %s attempt %s %s: %s", reply.id, reply.attempts, state, outcome.error)
    return state


async def _on_interaction(
    session: AsyncSession, interaction: Interaction, reply: OutboundReply, state: str,
    values: dict[str, object], now: datetime,
) -> None:  # fmt: skip
    payload: dict[str, object] = {"reply_id": reply.id, "attempt": reply.attempts}
    if state == "sent":
        window = await sellers_service.reply_pending_window(session, reply.seller_id)
        if interaction.status in OPEN_STATUSES:
            interaction.status = "pending_reply"
            interaction.reply_pending_until = now + timedelta(minutes=window)
        interaction.first_response_at = interaction.first_response_at or now
        payload |= {"confirmed_by": values["confirmed_by"], "quality": values["quality"]}
        _event(session, reply, "reply_sent", payload)
        _event(session, reply, str(values["quality"]), {"reply_id": reply.id})
    elif state == "dead":
        if interaction.status == "pending_reply":
            interaction.status, interaction.needs_response = "open", True
            interaction.reply_pending_until = None
        _event(session, reply, "reply_dead", payload | {"error": values["last_error"]})
    elif state == "queued":
        _event(session, reply, "reply_paused", payload | {"error": values["last_error"]})
    else:
        _event(session, reply, "reply_failed", payload | {"error": values["last_error"]})


def _event(
    session: AsyncSession, reply: OutboundReply, kind: str, payload: dict[str, object]
) -> None:
    events.record_event(
        session,
        seller_id=reply.seller_id,
        interaction_id=reply.interaction_id,
        kind=kind,
        actor_user_id=reply.created_by,
        payload=payload,
    )


def _backoff(attempts: int) -> float:
    return full_jitter(attempts, BACKOFF_BASE, BACKOFF_CAP)


async def sweep(deps: DispatchDeps) -> int:
    """Queue again what is due: failed rows past their backoff, queued rows whose task was lost,
    and `sending` rows whose worker died (lock expired). Returns how many were queued."""
    now = datetime.now(UTC)
    queued = 0
    async with transaction(deps.sessionmaker) as session:
        for row in await repository.due(session, now, SWEEP_BATCH):
            if row.state == "sending":
                if await locks.owner_of(deps.redis, lock_key(row.id)) is not None:
                    row.next_attempt_at = now + SENDING_CHECK_AFTER  # alive and working
                    continue
                row.state = "failed"
                row.last_error = "the worker was lost mid-send; the marketplace is checked first"
                row.uncertain_since = row.uncertain_since or now
            row.next_attempt_at = now + REQUEUE_AFTER
            row.updated_at = now
            enqueue.defer(session, names.DISPATCH_SEND, row.id)
            queued += 1
    return queued
