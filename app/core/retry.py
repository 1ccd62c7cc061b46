"""A request whose transaction lost a lock conflict (deadlock 40P01, serialization failure 40001)
is run again, as a whole, instead of answering 500: its transaction was rolled back, so the replay
starts from the same state as a client's retry would, only sooner.

A plain ASGI middleware inside the deadline (retries count against the request's time) and inside
the body limit. The body is not read ahead: what the app receives is recorded as it goes, and a
replay gets the recorded messages first, then whatever the client still sends. A replay happens
only while the response has not started, at most `attempts` runs in all, after a short random
pause (the two sides of a deadlock should not meet again in step). When the attempts run out the
conflict reaches RequestIdMiddleware, which answers 503 with Retry-After.

Hand-made rather than tenacity (not a dependency): one loop, one predicate.
"""

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware
from app.core.backoff import full_jitter
from app.core.transient import is_lock_conflict

logger = logging.getLogger(__name__)

ATTEMPTS = 4
PAUSE_SECONDS = 0.05  # the n-th replay waits uniform(0, PAUSE × 2ⁿ)


class RetryLockConflictsMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, attempts: int = ATTEMPTS) -> None:
        super().__init__(app)
        self.attempts = attempts

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        received: list[Message] = []
        started = False

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.append(message)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        for attempt in range(1, self.attempts + 1):
            try:
                # A copy of the scope: routing and FastAPI leave their state in it.
                await self.app(dict(scope), _replay(received, recording_receive), tracking_send)
                return
            except Exception as exc:
                if started or attempt == self.attempts or not is_lock_conflict(exc):
                    raise
                logger.warning(
                    "%s %s: lock conflict (%s), run %d of %d; running it again",
                    scope["method"],
                    scope["path"],
                    type(exc).__name__,
                    attempt,
                    self.attempts,
                )
            await asyncio.sleep(full_jitter(attempt, PAUSE_SECONDS))


def _replay(received: list[Message], receive: Receive) -> Receive:
    """The messages an earlier run received, in order, then the client's next ones."""
    replayed = 0
    already = len(received)

    async def replaying_receive() -> Message:
        nonlocal replayed
        if replayed < already:
            replayed += 1
            return received[replayed - 1]
        return await receive()

    return replaying_receive
