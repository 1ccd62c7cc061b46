"""The offline provider never writes what its own guardrails flag: every demo item and a few
hundred sandbox items (synced like a real account, so grounded on the sandbox seller's earlier
answers), drafted through the drafts service as the API does, carry no finding at all."""

from collections import Counter
from collections.abc import Sequence

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.service import Credential, Principal
from app.core.config import Settings
from app.core.egress import EgressPolicy
from app.core.security import SecretBox
from app.demo import service as demo_service
from app.drafts import service as drafts_service
from app.drafts.models import Draft
from app.interactions.models import Interaction
from app.sellers.models import Seller
from tests import factories
from tests.sync import sandbox

SANDBOX_SEEDS = (1, 2, 3, 4)  # each a catalogue of one or two categories


async def _items(session: AsyncSession, seller_id: int) -> Sequence[Interaction]:
    result = await session.scalars(
        select(Interaction).where(Interaction.seller_id == seller_id).order_by(Interaction.id)
    )
    return result.all()


async def _draft_all(
    session: AsyncSession, seller_id: int, settings: Settings, email: str
) -> list[tuple[Interaction, Draft]]:
    """Every item of the seller with the draft the service wrote for it."""
    seller = await session.get_one(Seller, seller_id)
    user = await factories.create_user(session, seller, email)
    principal = Principal(
        user_id=user.id, seller_id=seller_id, role="operator", credential=Credential.SESSION
    )
    box = SecretBox(settings.secrets_key.get_secret_value())
    policy = EgressPolicy.from_settings(settings)  # the offline provider makes no request
    drafted = []
    for item in await _items(session, seller_id):
        draft = await drafts_service.generate(session, principal, item.id, box, policy)
        assert draft.provider == "offline"
        drafted.append((item, draft))
    return drafted


def _flagged(drafted: list[tuple[Interaction, Draft]]) -> list[tuple[str, str, str, object]]:
    return [(i.channel, i.external_id, d.text, d.warnings) for i, d in drafted if d.warnings]


async def test_every_demo_item_drafts_without_findings(
    session: AsyncSession, settings: Settings
) -> None:
    seller = await factories.create_seller(session, "Demo shop")
    await demo_service.seed(session, seller.id)

    drafted = await _draft_all(session, seller.id, settings, "demo-drafts@example.com")

    assert len(drafted) == demo_service.ITEMS
    assert _flagged(drafted) == []


@pytest.mark.slow
async def test_sandbox_items_of_every_channel_and_rating_draft_without_findings(
    connection: AsyncConnection, session: AsyncSession, redis: Redis, settings: Settings
) -> None:
    drafted = []
    for seed in SANDBOX_SEEDS:
        env = await sandbox.start(
            connection, session, redis, settings, seed=seed, reviews=90, questions=40, chats=15,
            products=12, moderation_seconds=0,
        )  # fmt: skip
        for channel in ("review", "question", "chat"):
            assert (await env.sync(channel)).status == "succeeded"
        await env.admin.aclose()
        drafted += await _draft_all(session, env.seller_id, settings, f"sandbox-{seed}@example.com")

    assert _flagged(drafted) == []
    assert Counter(i.channel for i, _ in drafted) == {"review": 360, "question": 160, "chat": 60}
    assert {i.rating for i, _ in drafted if i.channel == "review"} == {1, 2, 3, 4, 5}
    assert len({i.intent for i, _ in drafted}) >= 6
    uses = Counter(s["use"] for _, d in drafted for s in d.sources if "use" in s)
    assert uses["signature"] + uses["stock_phrase"] + uses["intent_phrase"] > 0, uses
