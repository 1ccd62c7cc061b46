"""Drafting a reply for an interaction: gather the grounding, ask the seller's provider, run the
guardrails over the result and keep it as the interaction's last draft."""

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import Principal
from app.core.egress import EgressPolicy
from app.core.security import SecretBox
from app.drafts import guardrails, repository
from app.drafts.models import Draft
from app.drafts.providers import Channel, DraftRequest, PreviousReply, provider_for
from app.interactions import events
from app.interactions import service as interactions_service
from app.interactions.models import Interaction
from app.sellers import service as sellers_service

# The customer's side of a chat that a draft answers: their messages since our last one (at
# most this many, looked for among the chat's newest messages).
CHAT_MESSAGES = 5
CHAT_MESSAGES_READ = 20


async def generate(
    session: AsyncSession,
    principal: Principal,
    interaction_id: int,
    secrets: SecretBox,
    policy: EgressPolicy,
) -> Draft:
    interaction = await interactions_service.get_interaction(
        session, principal.seller_id, interaction_id
    )
    request = await _request(session, interaction)
    prefs = await sellers_service.find_settings(session, principal.seller_id)
    api_key = (
        secrets.decrypt(prefs.draft_api_key_encrypted)
        if prefs and prefs.draft_api_key_encrypted
        else None
    )
    provider = provider_for(
        prefs.draft_provider if prefs else "offline",
        model=prefs.draft_model if prefs else None,
        base_url=prefs.draft_base_url if prefs else None,
        api_key=api_key,
        policy=policy,
    )
    result = await provider.draft(request)
    customer_text = " ".join(t for t in (request.text, request.pros, request.cons) if t)
    findings = guardrails.check(
        result.text, request.channel, customer_text=customer_text, intent=request.intent
    )
    values = {
        "seller_id": principal.seller_id,
        "text": result.text,
        "provider": result.provider,
        "model": result.model,
        "fallback_reason": result.fallback_reason,
        "warnings": [asdict(f) for f in findings],
        "sources": result.sources,
        "created_by": principal.user_id,
        "created_at": datetime.now(UTC),
    }
    draft = await repository.save(session, interaction.id, values)
    events.record_event(
        session,
        seller_id=principal.seller_id,
        interaction_id=interaction.id,
        kind="draft_generated",
        actor_user_id=principal.user_id,
        payload={
            "provider": result.provider,
            "fallback_reason": result.fallback_reason,
            "warnings": [f.code for f in findings],
        },
    )
    return draft


async def _request(session: AsyncSession, interaction: Interaction) -> DraftRequest:
    seller_id, nm_id = interaction.seller_id, interaction.nm_id
    previous: list[PreviousReply] = []
    top: list[tuple[str, int]] = []
    if nm_id is not None:
        replies = await interactions_service.last_replies(session, seller_id, nm_id)
        previous = [
            PreviousReply(interaction_id=i, channel=channel, text=text, rating=None)
            for i, channel, _, text in replies
            if i != interaction.id
        ]
        since = datetime.now(UTC) - timedelta(days=interactions_service.CONTEXT_DAYS)
        top = await interactions_service.top_intents(session, seller_id, nm_id, since)
    text = interaction.text
    if interaction.channel == "chat":
        text = await _chat_text(session, interaction) or text
    return DraftRequest(
        channel=cast(Channel, interaction.channel),
        text=text,
        pros=interaction.pros,
        cons=interaction.cons,
        rating=interaction.rating,
        intent=interaction.intent,
        customer_name=interaction.customer_name,
        product_name=interaction.product_name,
        previous_replies=previous,
        top_intents=top,
    )


async def _chat_text(session: AsyncSession, interaction: Interaction) -> str | None:
    rows = await interactions_service.chat_messages(
        session, interaction.seller_id, interaction.id, limit=CHAT_MESSAGES_READ
    )
    waiting: list[str] = []
    for direction, text in rows:  # newest first, back to our last message
        if direction == "out":
            break
        if text:
            waiting.append(text)
    return " ".join(reversed(waiting[:CHAT_MESSAGES])) or None


async def last_draft(session: AsyncSession, interaction_id: int) -> Draft | None:
    return await repository.get(session, interaction_id)
