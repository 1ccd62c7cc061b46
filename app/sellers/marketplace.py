"""Checking a marketplace token before we store it: Wildberries' `GET /ping` (wb-api.md §0).

The ping checks the token and that its category matches the host; it is limited to 3 calls per
30 s per host, so callers check only on connect, rotate and an explicit re-check.
"""

import asyncio
import enum
import logging
from dataclasses import dataclass

import httpx

from app.core import egress

logger = logging.getLogger(__name__)

PING_TIMEOUT_SECONDS = 10.0


class Outcome(enum.StrEnum):
    OK = "ok"
    REJECTED = "rejected"  # 401/403: the token is wrong, expired or lacks the category
    RATE_LIMITED = "rate_limited"  # 429: the ping's own limit
    UNREACHABLE = "unreachable"  # network error, timeout, 5xx or an answer we do not understand


@dataclass(frozen=True)
class PingResult:
    outcome: Outcome
    # What happened, safe to show and store: never the token, never the marketplace's detail
    # text (it may quote parts of the token).
    message: str
    status_code: int | None = None
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class TokenChecker:
    """Pings the feedbacks host with a token, under the outbound policy (purpose marketplace).
    `transport` is None in production; tests pass the in-process sandbox (`httpx.ASGITransport`)."""

    feedbacks_url: str
    policy: egress.EgressPolicy
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = PING_TIMEOUT_SECONDS

    async def ping(self, token: str) -> PingResult:
        if not token or not token.isascii() or not token.isprintable() or token != token.strip():
            # Not a header value any marketplace could accept; do not spend a ping on it.
            return PingResult(Outcome.REJECTED, "the token is malformed")
        url = self.feedbacks_url.rstrip("/") + "/ping"
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(
                    transport=self.policy.transport(egress.Purpose.MARKETPLACE, self.transport),
                    timeout=self.timeout,
                ) as client,
            ):
                response = await client.get(
                    url, headers={"Authorization": token, "Accept": "application/json"}
                )
        except (httpx.HTTPError, httpx.InvalidURL, egress.Refused, TimeoutError) as exc:
            why = egress.failure(exc)
            logger.warning("marketplace ping failed: %s", why)
            return PingResult(Outcome.UNREACHABLE, f"the marketplace check failed: {why}")
        return _classify(response)


def _classify(response: httpx.Response) -> PingResult:
    status = response.status_code
    if status in (401, 403):
        return PingResult(
            Outcome.REJECTED,
            f"the marketplace rejected the token ({egress.http_status(status)})",
            status,
        )
    if status == 429:
        return PingResult(
            Outcome.RATE_LIMITED,
            "the marketplace's token check is rate limited; try again shortly",
            status,
            _retry_after(response),
        )
    if status == 200 and _says_ok(response):
        return PingResult(Outcome.OK, "ok", status)
    logger.warning("marketplace ping answered HTTP %s", status)
    why = egress.http_status(status) if status != 200 else egress.MALFORMED
    return PingResult(Outcome.UNREACHABLE, f"the marketplace check failed: {why}", status)


def _says_ok(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("Status") == "OK"


def _retry_after(response: httpx.Response) -> float:
    for name in ("X-Ratelimit-Retry", "Retry-After"):
        try:
            return max(float(response.headers[name]), 0.0)
        except (KeyError, ValueError):
            continue
    return 30.0  # the ping's whole window
