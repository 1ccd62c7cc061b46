"""Wildberries as a `Connector`: its limits, its client, its token check and its mapping."""

from collections.abc import Mapping, Sequence
from typing import Any

from app.connectors.base import (
    ChatBatch,
    ChatDirectory,
    Environment,
    ItemBatch,
    ListChannel,
    RetryPolicy,
    TokenCheck,
    TokenVerdict,
)
from app.connectors.wildberries import mapping
from app.connectors.wildberries.client import PING, WildberriesClient
from app.connectors.wildberries.limits import DEFAULT_LIMITS
from app.core.ratelimit import Limit, RateLimiter


class WildberriesConnector:
    name = mapping.MARKETPLACE
    title = "Wildberries"
    source = mapping.SOURCE
    default_limits: Mapping[str, Limit] = DEFAULT_LIMITS

    def connect(
        self,
        token: str,
        *,
        seller_id: int,
        limiter: RateLimiter,
        env: Environment,
        limits: Mapping[str, Limit] | None = None,
        retry: RetryPolicy | None = None,
    ) -> WildberriesClient:
        return WildberriesClient(
            token=token,
            seller_id=seller_id,
            limiter=limiter,
            feedbacks_url=env.settings.wb_feedbacks_base_url,
            chat_url=env.settings.wb_buyer_chat_base_url,
            policy=env.policy,
            limits=limits,
            transport=env.transport,
            retry=retry,
        )

    async def check_token(self, token: str, env: Environment) -> TokenCheck:
        """The ping with this token (wb-api.md §0): limited to 3 calls per 30 s per host, so
        callers check only on connect, rotate and an explicit re-check."""
        if not token or not token.isascii() or not token.isprintable() or token != token.strip():
            # Not a header value any marketplace could accept; do not spend a ping on it.
            return TokenCheck(TokenVerdict.REJECTED, "the token is malformed")
        client = WildberriesClient(
            token=token,
            seller_id=None,
            limiter=None,
            feedbacks_url=env.settings.wb_feedbacks_base_url,
            chat_url=env.settings.wb_buyer_chat_base_url,
            policy=env.policy,
            transport=env.transport,
            retry=PING,
        )
        async with client:
            return await client.check_token()

    def item_ids(self, raws: Sequence[Any]) -> list[str]:
        return mapping.item_ids(raws)

    def list_items(self, channel: ListChannel, raws: Sequence[Any], seller_id: int) -> ItemBatch:
        return mapping.list_items(channel, raws, seller_id)

    def chat_directory(self, raws: Sequence[Any]) -> ChatDirectory:
        return mapping.chat_directory(raws)

    def chat_threads(
        self, raws: Sequence[Any], directory: ChatDirectory, seller_id: int
    ) -> ChatBatch:
        return mapping.chat_threads(raws, directory, seller_id)


CONNECTOR = WildberriesConnector()
