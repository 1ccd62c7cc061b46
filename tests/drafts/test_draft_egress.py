"""Draft provider URLs under the outbound request policy, end to end through the API: an internal
address is refused when it is saved (422 `refused_by_policy`) and when it is used (a URL stored
before, or a name whose DNS answer changed: the offline draft, `fallback_reason` "refused by
policy"), and the real server it points at receives nothing."""

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.egress import EgressPolicy, Purpose
from app.sellers.models import Seller, SellerSettings
from tests import egress, factories
from tests.egress import PUBLIC_V4, FakeDns, Listener, listening

REFUSED = "openai_compat failed: refused by policy"


@pytest.fixture
async def internal() -> AsyncIterator[Listener]:
    """One of our internal services (an OpenAI-compatible one, so a request would succeed)."""
    async with listening() as listener:
        yield listener


@pytest.fixture
def dns(app: FastAPI) -> FakeDns:
    resolver: FakeDns = app.state.egress.resolver
    resolver.answers |= {
        "localhost": ["127.0.0.1", "::1"],
        "llm.internal": ["10.0.0.5"],
        "metadata.google.internal": ["169.254.169.254"],
        "mixed.example.com": [PUBLIC_V4, "127.0.0.1"],
        "ipv6-loopback.example.com": ["::1"],
        "llm.example.com": [PUBLIC_V4],
    }
    return resolver


@pytest.fixture
async def shop(session: AsyncSession, client: AsyncClient) -> tuple[Seller, dict[str, str]]:
    return await factories.operator(session, client, "egress@example.com")


def internal_urls(port: int) -> list[str]:
    """URLs that reach the internal listener (or another of our services), spelled every way."""
    at = [
        "127.0.0.1", "2130706433", "0x7f000001", "0x7f.1", "127.1", "0177.0.0.1", "127.0.1",
        "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:7f00:1]", "[::1]",
        "localhost", "mixed.example.com", "ipv6-loopback.example.com", "LOCALHOST",
    ]  # fmt: skip
    return [f"http://{host}:{port}/v1" for host in at] + [
        "http://llm.internal:11434/v1",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://10.0.0.1:8000/v1",
        "http://192.168.1.10/v1",
        "http://100.64.0.10/v1",
        "http://0.0.0.0:8000/v1",
        "http://unknown-name.invalid/v1",
    ]


async def test_saving_an_internal_draft_url_is_422_and_nothing_is_stored(
    client: AsyncClient,
    session: AsyncSession,
    shop: tuple[Seller, dict[str, str]],
    internal: Listener,
    dns: FakeDns,
) -> None:
    seller, headers = shop
    seller_id = seller.id  # a failed request rolls back and expires the session's objects
    for url in internal_urls(internal.port):
        response = await client.patch(
            "/api/v1/settings",
            json={"draft_provider": "openai_compat", "draft_model": "m", "draft_base_url": url},
            headers=headers,
        )

        assert response.status_code == 422, (url, response.text)
        error = response.json()["error"]
        assert error["code"] == "refused_by_policy", url
        assert error["message"].startswith("draft_base_url is refused by policy"), url
        assert error["details"][0]["loc"] == ["body", "draft_base_url"], url
        for leak in (str(internal.port), "127.0.0.1", "10.0.0", "169.254", "::1", "Errno"):
            assert leak not in response.text, url
    row = await session.get(SellerSettings, seller_id, populate_existing=True)
    assert row is not None
    assert (row.draft_provider, row.draft_base_url) == ("offline", None)
    assert internal.connections == 0


# Stored as they are (an old row, or a URL saved before a DNS change); {port}: the listener's.
STORED = [
    "http://127.0.0.1:{port}/v1",
    "http://2130706433:{port}/v1",
    "http://0177.0.0.1:{port}/v1",  # httpx cannot even parse it: refused all the same
    "http://0x7f.1:{port}/v1",
    "http://127.1:{port}/v1",
    "http://[::ffff:127.0.0.1]:{port}/v1",
    "http://localhost:{port}/v1",
    "http://localhost.:{port}/v1",
    "ftp://127.0.0.1:{port}/v1",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_",
    "http://mixed.example.com:{port}/v1",
    "http://169.254.169.254/latest/meta-data",
    "not a url at all",
]


async def test_a_stored_internal_url_falls_back_offline_and_is_never_called(
    client: AsyncClient,
    session: AsyncSession,
    shop: tuple[Seller, dict[str, str]],
    internal: Listener,
    dns: FakeDns,
) -> None:
    seller, headers = shop
    dns.answers["localhost."] = ["127.0.0.1"]
    review = await factories.create_interaction(session, seller, rating=2, text="Маломерит")
    for stored in STORED:
        url = stored.format(port=internal.port)
        await _store(session, seller, url)

        response = await client.post(f"/api/v1/interactions/{review.id}/draft", headers=headers)

        assert response.status_code == 200, (url, response.text)
        draft = response.json()
        assert (draft["provider"], draft["fallback_reason"]) == ("offline", REFUSED), url
        assert f":{internal.port}" not in response.text, url
    assert internal.connections == 0


async def test_a_name_rebound_to_an_internal_address_after_saving_is_refused_at_use(
    client: AsyncClient,
    session: AsyncSession,
    shop: tuple[Seller, dict[str, str]],
    internal: Listener,
    dns: FakeDns,
) -> None:
    seller, headers = shop
    url = f"http://llm.example.com:{internal.port}/v1"
    saved = await client.patch(
        "/api/v1/settings",
        json={"draft_provider": "openai_compat", "draft_model": "m", "draft_base_url": url},
        headers=headers,
    )
    assert saved.status_code == 200, saved.text  # public when saved
    dns.answers["llm.example.com"] = ["127.0.0.1"]  # then the name points at our listener
    question = await factories.create_interaction(session, seller, channel="question")

    response = await client.post(f"/api/v1/interactions/{question.id}/draft", headers=headers)

    assert response.json()["fallback_reason"] == REFUSED
    assert internal.connections == 0


async def test_a_local_llm_server_on_the_allow_list_drafts(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    shop: tuple[Seller, dict[str, str]],
    internal: Listener,
) -> None:
    """The control: the same listener, allow-listed as a deployment's local LLM, is reached."""
    seller, headers = shop
    egress.allow(app, Purpose.DRAFT_PROVIDER, internal.origin)
    saved = await client.patch(
        "/api/v1/settings",
        json={"draft_provider": "openai_compat", "draft_model": "m",
              "draft_base_url": f"{internal.origin}/v1"},
        headers=headers,
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    review = await factories.create_interaction(session, seller, rating=5, text="Отлично")

    response = await client.post(f"/api/v1/interactions/{review.id}/draft", headers=headers)

    draft = response.json()
    assert (draft["provider"], draft["text"], draft["fallback_reason"]) == (
        "openai_compat",
        "Спасибо за отзыв!",
        None,
    )
    assert internal.connections == 1


async def test_production_needs_https_for_a_draft_url(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    shop: tuple[Seller, dict[str, str]],
    dns: FakeDns,
) -> None:
    seller, headers = shop
    policy: EgressPolicy = app.state.egress
    app.state.egress = EgressPolicy(https_only=True, allow=policy.allow, resolver=dns)

    plain = await client.patch(
        "/api/v1/settings", json={"draft_base_url": "http://llm.example.com/v1"}, headers=headers
    )
    assert plain.status_code == 422
    assert plain.json()["error"]["details"][0]["msg"] == "the URL must use https"
    tls = await client.patch(
        "/api/v1/settings", json={"draft_base_url": "https://llm.example.com/v1"}, headers=headers
    )
    assert tls.status_code == 200, tls.text

    await _store(session, seller, "http://llm.example.com/v1")  # stored while in development
    review = await factories.create_interaction(session, seller)
    response = await client.post(f"/api/v1/interactions/{review.id}/draft", headers=headers)
    assert response.json()["fallback_reason"] == REFUSED


async def _store(session: AsyncSession, seller: Seller, url: str) -> None:
    await session.execute(
        update(SellerSettings)
        .where(SellerSettings.seller_id == seller.id)
        .values(draft_provider="openai_compat", draft_model="m", draft_base_url=url)
    )
    await session.flush()
