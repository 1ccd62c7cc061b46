"""No request waits longer than `request_timeout_seconds` for its answer (a plain ASGI middleware,
inside RequestIdMiddleware so the 503 carries the request id).

The request runs in a task of its own. When the deadline passes before its response has started,
the client gets 503 `service_unavailable` with Retry-After at once, and the task is cancelled: its
cleanup (a rollback or a cancel request to a frozen database) may take longer, and must not hold
the answer back. Whatever the cancelled task sends afterwards goes nowhere.

The deadline stops applying when:
- the response starts: a long response (a stream) is never cut;
- the request's writes are committed (`settle`, called by `core.db.transaction`): what follows is
  bounded on its own (publishing the tasks after commit), and a client must learn that its reply
  was queued, not get a 503 for a row that exists.
"""

import asyncio
import logging
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware
from app.core.errors import unavailable_response
from app.core.transient import Reason, unavailable

logger = logging.getLogger(__name__)


class _Watch:
    """One request's deadline: woken when the request ends, its response starts or its writes
    commit (both settle it), or the time is up."""

    __slots__ = ("expired", "settled", "woken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.woken: asyncio.Future[None] = loop.create_future()
        self.settled = False
        self.expired = False

    def wake(self, *_: object) -> None:
        if not self.woken.done():
            self.woken.set_result(None)

    def settle(self) -> None:
        self.settled = True
        self.wake()


_current: ContextVar[_Watch | None] = ContextVar("request_deadline", default=None)


def settle() -> None:
    """The current request's deadline no longer applies (a no-op outside a request)."""
    watch = _current.get()
    if watch is not None:
        watch.settle()


class DeadlineMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        watch = _Watch(loop)

        async def send_in_time(message: Message) -> None:
            if watch.expired:  # the client has had its 503
                return
            if message["type"] == "http.response.start":
                watch.settle()
            await send(message)

        token = _current.set(watch)
        try:  # the task runs in a copy of this context: `settle` finds this request's watch
            task = asyncio.ensure_future(self.app(scope, receive, send_in_time))
        finally:
            _current.reset(token)
        task.add_done_callback(watch.wake)
        timer = loop.call_later(self.seconds, watch.wake)
        try:
            await watch.woken
        except asyncio.CancelledError:  # the server gave up on the request (disconnect, shutdown)
            task.cancel()
            raise
        finally:
            timer.cancel()
        if watch.settled or task.done():
            await task  # cancelling this await cancels the task too
            return
        watch.expired = True
        task.cancel()
        task.add_done_callback(_log_late_end)
        logger.warning(
            "%s %s: no answer within %.1f s, 503 sent",
            scope["method"],
            scope["path"],
            self.seconds,
        )
        error = unavailable(
            Reason.DEADLINE, f"the request did not finish within {self.seconds:g} s; try again"
        )
        await unavailable_response(error)(scope, receive, send)


def _log_late_end(task: asyncio.Future[None]) -> None:
    """Retrieve the cancelled request's outcome (else asyncio logs it as never retrieved)."""
    if not task.cancelled() and task.exception() is not None:
        logger.info("a request cut off by its deadline ended with %r", task.exception())
