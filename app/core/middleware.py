"""Request id, access log and the last-resort error answer, as a plain ASGI middleware (no
BaseHTTPMiddleware overhead).

Starlette turns an exception no handler took into a 500 in `ServerErrorMiddleware`, outside
every user middleware: by then the request id is gone, and its response would carry neither the
id nor the header. So this middleware answers such an exception itself, with the envelope: 503
`service_unavailable` with Retry-After when the database or Redis cannot serve now (see
app/core/transient.py), 500 `internal_error` for a bug. It is the outermost of our middlewares
(app/main.py), so every error body the app sends carries the id: never register a handler for
`Exception` or 500 on the app, Starlette would run it in ServerErrorMiddleware, without the id."""

import logging
import re
import time
import uuid

from starlette.types import Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware
from app.core.errors import internal_error_response, unavailable_response
from app.core.logging import request_id_var
from app.core.transient import classify, unavailable

logger = logging.getLogger("sellerdesk.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if status:  # the response has begun: nothing sensible can be sent any more
                raise
            reason = classify(exc)
            if reason is None:
                logger.exception("unhandled error")
                await internal_error_response()(scope, receive, send_with_id)
            else:
                logger.warning("service unavailable (%s): %r", reason, exc)
                await unavailable_response(unavailable(reason))(scope, receive, send_with_id)
        finally:
            logger.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)
