"""What WB's gateway does before a marketplace method runs: auth, rate limits, and (ours) faults
and the request log. A plain ASGI middleware in front of the marketplace paths only."""

import asyncio
import math
import uuid

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.sandbox import errors
from app.sandbox.ratelimit import Decision
from app.sandbox.seller import Seller
from app.sandbox.state import Sandbox

SELLER = "sandbox.seller"
FAULTS = "sandbox.faults"
REQUEST_ID = "sandbox.request_id"
NOW = "sandbox.now"

_FEEDBACKS_PREFIXES = ("/api/v1/feedback", "/api/v1/question", "/api/v1/new-feedbacks-questions")


def group_of(path: str) -> str | None:
    """The rate-limit group of a marketplace path; None for everything else (admin, docs)."""
    if path.startswith(_FEEDBACKS_PREFIXES):
        return "feedbacks"
    if path.startswith("/api/v1/seller/"):
        return "chat"
    if path == "/ping":
        return "ping"
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _too_many(decision: Decision, request_id: str, now: float) -> Response:
    headers = {
        "X-Ratelimit-Retry": str(decision.retry),
        "X-Ratelimit-Limit": str(decision.limit),
        "X-Ratelimit-Reset": str(decision.reset),
    }
    detail = f"limited by {uuid.UUID(request_id)}"
    return errors.gateway_problem(429, detail, request_id, now, headers)


def _unauthorized(scope: Scope, request_id: str, now: float, *, revoked: bool) -> Response:
    # The shape is WB's (wb-api.md §0); the wording for a withdrawn token is ours.
    if revoked:
        detail = "token problem; token withdrawn"
    elif _header(scope, b"authorization"):
        detail = "token problem; token is not valid for this host"
    else:
        detail = "empty Authorization header"
    return errors.gateway_problem(401, detail, request_id, now)


class MarketplaceGate:
    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        group = group_of(scope["path"]) if scope["type"] == "http" else None
        if group is None:
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        request_id = errors.new_request_id()
        now = sandbox.clock.now()
        seller = sandbox.authenticate(_header(scope, b"authorization"))
        faults = sandbox.faults_for(seller)
        delay = faults.latency_seconds()
        if delay:
            await asyncio.sleep(delay)
        if seller is None or seller.revoked:
            if seller is not None and group != "ping":  # a revoked seller sees its refused calls
                seller.log.add(now, group, 401)
            revoked = seller is not None
            await _unauthorized(scope, request_id, now, revoked=revoked)(scope, receive, send)
            return
        seller.tick(now)
        scope.update({SELLER: seller, FAULTS: faults, REQUEST_ID: request_id, NOW: now})
        if group == "ping":
            await self.app(scope, receive, send)
            return
        status = [500]  # what the log records if the app raises before it starts a response
        try:
            await self._serve(scope, receive, send, seller, group, status)
        finally:
            seller.log.add(now, group, status[0])

    def _early(
        self, scope: Scope, seller: Seller, group: str, decision: Decision | None
    ) -> Response | None:
        """A 429 (real or injected) or an injected 5xx instead of the method's answer."""
        request_id, now, faults = scope[REQUEST_ID], scope[NOW], scope[FAULTS]
        if decision is not None and not decision.allowed:
            return _too_many(decision, request_id, now)
        if faults.in_429_burst():
            limits = self.sandbox.limits_for(seller)
            spec = limits.feedbacks if group == "feedbacks" else limits.chat
            injected = Decision(False, 0, 1, spec.burst, math.ceil(spec.burst / spec.rate))
            return _too_many(injected, request_id, now)
        code = faults.server_error()
        return None if code is None else errors.server_error(code, scope[REQUEST_ID])

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        seller: Seller,
        group: str,
        status: list[int],
    ) -> None:
        decision = self.sandbox.take_token(seller, group, scope[NOW])
        early = self._early(scope, seller, group, decision)
        remaining: list[tuple[bytes, bytes]] = []
        if decision is not None and decision.allowed:
            remaining.append((b"x-ratelimit-remaining", str(decision.remaining).encode()))
        if early is not None:
            if early.status_code != 429:
                early.raw_headers.extend(remaining)
            status[0] = early.status_code
            await early(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), *remaining]
            await send(message)

        await self.app(scope, receive, send_with_headers)
