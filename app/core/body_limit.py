"""Request bodies over `max_request_body_bytes` are refused with 413 `payload_too_large` before
they are read into memory. A plain ASGI middleware, installed inside RequestIdMiddleware so the
refusal carries the request id.

- A declared `Content-Length` over the limit is answered at once; the route never runs.
- A body without one (chunked) is counted as `receive()` delivers it: the read that passes the
  limit raises an HTTPException 413, which FastAPI passes on from its body parsing to the error
  handler (it turns other errors there into a 400). The route never holds more than the limit
  plus one chunk.

Starlette's RequestBodyLimitMiddleware (under FastAPI's `max_body_size`) counts the same way, but
when the route does not read the body it answers a declared-too-large request with a plain-text
413 outside the error envelope (and FastAPI installs it outside RequestIdMiddleware).
"""

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.asgi import HttpMiddleware
from app.core.errors import PayloadTooLarge, error_response


def _message(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes"


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=_message(max_bytes))


class BodyLimitMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
            response = error_response(413, PayloadTooLarge.code, _message(self.max_bytes))
            await response(scope, receive, send)
            return

        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_within_limit, send)
