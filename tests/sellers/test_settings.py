from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors import registry
from app.core.egress import Purpose
from app.interactions import classify
from app.sellers.models import Seller, SellerSettings
from app.sellers.schemas import Intent, RateCategory
from tests import egress, factories

URL = "/api/v1/settings"


async def _patch(client: AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.patch(URL, json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def _row(session: AsyncSession, seller_id: int) -> SellerSettings:
    row = await session.get(SellerSettings, seller_id, populate_existing=True)
    assert row is not None
    return row


def test_schema_literals_follow_the_classifier_and_the_limiter() -> None:
    assert get_args(Intent) == classify.INTENTS
    assert set(get_args(RateCategory)) == set(registry.default_limits())


async def test_defaults(session: AsyncSession, client: AsyncClient) -> None:
    _, headers = await factories.operator(session, client, "defaults@example.com")

    response = await client.get(URL, headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert body["sla_targets"] == {
        "review": {"default": 1440, "by_intent": {}},
        "question": {"default": 240, "by_intent": {}},
        "chat": {"default": 60, "by_intent": {}},
    }
    assert body["sync_interval_minutes"] == 5
    assert body["reply_pending_window_minutes"] == 180
    assert body["draft_provider"] == "offline"
    assert body["draft_model"] is None
    assert body["draft_base_url"] is None
    assert body["has_draft_api_key"] is False
    assert body["auto_reply_policy"] == {
        "enabled": False,
        "channels": [],
        "min_rating": None,
        "intents": None,
    }
    assert body["rate_limits"] == {}


async def test_a_missing_row_is_created_with_the_defaults(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "norow@example.com")
    await session.execute(delete(SellerSettings).where(SellerSettings.seller_id == seller.id))
    await session.commit()

    assert (await client.get(URL, headers=headers)).json()["sync_interval_minutes"] == 5
    body = await _patch(client, headers, {"reply_pending_window_minutes": 60})

    assert body["reply_pending_window_minutes"] == 60
    assert body["sync_interval_minutes"] == 5
    assert (await _row(session, seller.id)).reply_pending_window_minutes == 60


async def test_patch_changes_only_what_is_sent(session: AsyncSession, client: AsyncClient) -> None:
    seller, headers = await factories.operator(session, client, "partial@example.com")
    await _patch(client, headers, {"sync_interval_minutes": 15})

    body = await _patch(client, headers, {"reply_pending_window_minutes": 240})

    assert body["sync_interval_minutes"] == 15
    assert body["reply_pending_window_minutes"] == 240
    row = await _row(session, seller.id)
    assert (row.sync_interval_minutes, row.reply_pending_window_minutes) == (15, 240)


async def test_sla_targets_are_merged_per_channel_and_used_by_the_classifier(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "sla@example.com")
    await _patch(
        client,
        headers,
        {"sla_targets": {"review": {"default": 720, "by_intent": {"defect_quality": 120}}}},
    )

    body = await _patch(client, headers, {"sla_targets": {"chat": {"default": 30}}})

    assert body["sla_targets"]["review"] == {"default": 720, "by_intent": {"defect_quality": 120}}
    assert body["sla_targets"]["chat"] == {"default": 30, "by_intent": {}}
    assert body["sla_targets"]["question"] == {"default": 240, "by_intent": {}}
    stored = (await _row(session, seller.id)).sla_targets
    assert classify.sla_minutes(stored, "review", "defect_quality") == 120
    assert classify.sla_minutes(stored, "review", "sizing_fit") == 720
    assert classify.sla_minutes(stored, "chat", None) == 30
    assert classify.sla_minutes(stored, "question", None) == 240

    # Only intents: the channel's built-in default stays.
    body = await _patch(
        client, headers, {"sla_targets": {"question": {"by_intent": {"pre_purchase": 60}}}}
    )
    assert body["sla_targets"]["question"] == {"default": 240, "by_intent": {"pre_purchase": 60}}

    body = await _patch(client, headers, {"sla_targets": {"review": None}})
    assert body["sla_targets"]["review"] == {"default": 1440, "by_intent": {}}
    assert body["sla_targets"]["chat"]["default"] == 30

    body = await _patch(client, headers, {"sla_targets": None})
    assert {ch: v["default"] for ch, v in body["sla_targets"].items()} == {
        "review": 1440,
        "question": 240,
        "chat": 60,
    }
    assert (await _row(session, seller.id)).sla_targets == {}


async def test_invalid_settings_are_422_with_the_field(
    session: AsyncSession, client: AsyncClient
) -> None:
    _, headers = await factories.operator(session, client, "invalid@example.com")
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"sla_targets": {"email": {"default": 60}}}, ["body", "sla_targets", "email"]),
        ({"sla_targets": {"review": {"default": 4}}}, ["body", "sla_targets", "review"]),
        ({"sla_targets": {"review": {"default": 10081}}}, ["body", "sla_targets", "review"]),
        (
            {"sla_targets": {"review": {"by_intent": {"weather": 60}}}},
            ["body", "sla_targets", "review", "by_intent"],
        ),
        ({"sla_targets": {"review": {"deafult": 60}}}, ["body", "sla_targets", "review"]),
        ({"sync_interval_minutes": 0}, ["body", "sync_interval_minutes"]),
        ({"sync_interval_minutes": 1441}, ["body", "sync_interval_minutes"]),
        ({"sync_interval_minutes": None}, ["body", "sync_interval_minutes"]),
        ({"reply_pending_window_minutes": 29}, ["body", "reply_pending_window_minutes"]),
        ({"reply_pending_window_minutes": 1441}, ["body", "reply_pending_window_minutes"]),
        ({"draft_provider": "gpt"}, ["body", "draft_provider"]),
        ({"draft_provider": None}, ["body", "draft_provider"]),
        ({"draft_model": "m" * 201}, ["body", "draft_model"]),
        ({"draft_model": "   "}, ["body", "draft_model"]),
        ({"draft_base_url": "ftp://models.example.com"}, ["body", "draft_base_url"]),
        ({"draft_base_url": "not a url"}, ["body", "draft_base_url"]),
        (
            {"auto_reply_policy": {"enabled": True, "channels": ["sms"]}},
            ["body", "auto_reply_policy", "channels"],
        ),
        (
            {"auto_reply_policy": {"enabled": True, "channels": ["review"], "min_rating": 6}},
            ["body", "auto_reply_policy", "min_rating"],
        ),
        ({"auto_reply_policy": {"enabled": True, "channels": []}}, ["body", "auto_reply_policy"]),
        (
            {"auto_reply_policy": {"channels": ["review"], "intents": []}},
            ["body", "auto_reply_policy"],
        ),
        ({"rate_limits": {"feedbacks": {"rate": 0, "burst": 6}}}, ["body", "rate_limits"]),
        ({"rate_limits": {"feedbacks": {"rate": 3, "burst": 0}}}, ["body", "rate_limits"]),
        ({"rate_limits": {"content": {"rate": 3, "burst": 6}}}, ["body", "rate_limits"]),
        ({"rate_limits": {"chat": {"rate": 1}}}, ["body", "rate_limits", "chat", "burst"]),
        ({"sla": {}}, ["body", "sla"]),
    ]

    for body, loc_prefix in cases:
        response = await client.patch(URL, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error", body
        locs = [d["loc"] for d in error["details"]]
        assert any(loc[: len(loc_prefix)] == loc_prefix for loc in locs), (body, locs)

    assert (await client.get(URL, headers=headers)).json()["sync_interval_minutes"] == 5


async def test_openai_compat_needs_a_base_url_and_a_model(
    session: AsyncSession, client: AsyncClient, app: FastAPI
) -> None:
    seller, headers = await factories.operator(session, client, "openai@example.com")
    egress.allow(app, Purpose.DRAFT_PROVIDER, "http://localhost:11434")  # a local LLM server
    seller_id = seller.id  # a failed request rolls back and expires the session's objects

    response = await client.patch(URL, json={"draft_provider": "openai_compat"}, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["loc"] for d in error["details"]] == [
        ["body", "draft_base_url"],
        ["body", "draft_model"],
    ]
    assert (await _row(session, seller_id)).draft_provider == "offline"

    await _patch(client, headers, {"draft_base_url": "http://localhost:11434/v1"})
    body = await _patch(client, headers, {"draft_provider": "openai_compat", "draft_model": " q7 "})
    assert body["draft_provider"] == "openai_compat"
    assert body["draft_base_url"] == "http://localhost:11434/v1"
    assert body["draft_model"] == "q7"

    cleared = await client.patch(URL, json={"draft_model": None}, headers=headers)
    assert cleared.status_code == 422
    assert cleared.json()["error"]["details"][0]["loc"] == ["body", "draft_model"]

    body = await _patch(client, headers, {"draft_provider": "offline", "draft_model": None})
    assert body["draft_provider"] == "offline"
    assert body["draft_model"] is None
    assert body["draft_base_url"] == "http://localhost:11434/v1"


async def test_draft_api_key_is_write_only_and_encrypted(
    session: AsyncSession, client: AsyncClient, app: FastAPI
) -> None:
    seller, headers = await factories.operator(session, client, "apikey@example.com")
    key = "sk-live-0123456789abcdef"

    body = await _patch(client, headers, {"draft_api_key": key})

    assert body["has_draft_api_key"] is True
    assert "draft_api_key" not in body
    row = await _row(session, seller.id)
    assert row.draft_api_key_encrypted is not None
    assert key not in row.draft_api_key_encrypted
    assert app.state.secret_box.decrypt(row.draft_api_key_encrypted) == key
    read = await client.get(URL, headers=headers)
    assert key not in read.text
    assert row.draft_api_key_encrypted not in read.text

    kept = await _patch(client, headers, {"draft_model": "gpt-4o-mini"})  # key not sent: kept
    assert kept["has_draft_api_key"] is True

    cleared = await _patch(client, headers, {"draft_api_key": None})
    assert cleared["has_draft_api_key"] is False
    assert (await _row(session, seller.id)).draft_api_key_encrypted is None

    rejected = await client.patch(URL, json={"draft_api_key": ""}, headers=headers)
    assert rejected.status_code == 422


async def test_auto_reply_policy_is_replaced_and_reset_by_null(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "auto@example.com")
    policy = {
        "enabled": True,
        "channels": ["review", "review", "question"],
        "min_rating": 4,
        "intents": ["other", "pre_purchase"],
    }

    body = await _patch(client, headers, {"auto_reply_policy": policy})

    assert body["auto_reply_policy"] == policy | {"channels": ["review", "question"]}
    assert (await _row(session, seller.id)).auto_reply_policy == body["auto_reply_policy"]

    body = await _patch(client, headers, {"auto_reply_policy": {"channels": ["chat"]}})
    assert body["auto_reply_policy"] == {
        "enabled": False,
        "channels": ["chat"],
        "min_rating": None,
        "intents": None,
    }

    body = await _patch(client, headers, {"auto_reply_policy": None})
    assert body["auto_reply_policy"]["enabled"] is False
    assert (await _row(session, seller.id)).auto_reply_policy == {}


async def test_rate_limit_overrides_are_stored_as_the_sync_reads_them(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "limits@example.com")

    body = await _patch(client, headers, {"rate_limits": {"feedbacks": {"rate": 1.5, "burst": 3}}})
    body = await _patch(client, headers, {"rate_limits": {"chat": {"rate": 0.5, "burst": 5}}})

    assert body["rate_limits"] == {
        "feedbacks": {"rate": 1.5, "burst": 3},
        "chat": {"rate": 0.5, "burst": 5},
    }
    # The shape app.sellers.service.marketplace_access turns into Limit(rate, burst) per category.
    assert (await _row(session, seller.id)).rate_limits == {
        "feedbacks": {"rate": 1.5, "burst": 3},
        "chat": {"rate": 0.5, "burst": 5},
    }

    body = await _patch(client, headers, {"rate_limits": {"feedbacks": None}})
    assert body["rate_limits"] == {"chat": {"rate": 0.5, "burst": 5}}
    body = await _patch(client, headers, {"rate_limits": None})
    assert body["rate_limits"] == {}


async def test_a_shorter_sync_interval_brings_the_next_sync_forward(
    session: AsyncSession, client: AsyncClient
) -> None:
    seller, headers = await factories.operator(session, client, "interval@example.com")

    async def next_sync_at() -> datetime | None:
        await session.refresh(seller)
        return seller.next_sync_at

    async def plan(at: datetime | None) -> None:
        seller.next_sync_at = at
        await session.commit()

    await plan(datetime.now(UTC) + timedelta(hours=12))
    before = datetime.now(UTC)
    await _patch(client, headers, {"sync_interval_minutes": 10})
    moved = await next_sync_at()
    assert moved is not None
    assert before + timedelta(minutes=10) <= moved <= datetime.now(UTC) + timedelta(minutes=10)

    soon = datetime.now(UTC) + timedelta(minutes=2)
    await plan(soon)
    await _patch(client, headers, {"sync_interval_minutes": 60})
    assert await next_sync_at() == soon  # already earlier than now + 60 min: kept

    await plan(None)  # never synced: the tick picks it up anyway
    await _patch(client, headers, {"sync_interval_minutes": 1})
    assert await next_sync_at() is None


async def test_settings_are_per_seller(session: AsyncSession, client: AsyncClient) -> None:
    alice, alice_headers = await factories.operator(session, client, "a@example.com", "A")
    bob, bob_headers = await factories.operator(session, client, "b@example.com", "B")
    far = datetime.now(UTC) + timedelta(days=1)
    for seller in (alice, bob):
        seller.next_sync_at = far
    await session.commit()

    await _patch(
        client,
        alice_headers,
        {
            "sync_interval_minutes": 30,
            "sla_targets": {"chat": {"default": 15}},
            "draft_api_key": "alice-key",
        },
    )

    bobs = (await client.get(URL, headers=bob_headers)).json()
    assert bobs["sync_interval_minutes"] == 5
    assert bobs["sla_targets"]["chat"]["default"] == 60
    assert bobs["has_draft_api_key"] is False
    assert (await _row(session, bob.id)).sync_interval_minutes == 5
    refreshed = await session.get(Seller, bob.id, populate_existing=True)
    assert refreshed is not None
    assert refreshed.next_sync_at == far
    assert (await client.get(URL, headers=alice_headers)).json()["sync_interval_minutes"] == 30


async def test_settings_need_a_caller(client: AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.patch(URL, json={})).status_code == 401
