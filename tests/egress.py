"""The outbound policy in tests: a fake DNS (DNS is outside, so it is mocked; unknown names do not
resolve) and allow-lists as a deployment would configure them."""

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from fastapi import FastAPI

from app.core.egress import EgressPolicy, Purpose, parse_origin

# Global unicast addresses standing in for public hosts (never contacted: a test's transport
# or network backend answers).
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
# Where the marketplace's real hosts resolve in tests (the default WB_*_BASE_URL).
MARKETPLACE = {
    "feedbacks-api.wildberries.ru": [PUBLIC_V4],
    "buyer-chat-api.wildberries.ru": [PUBLIC_V4],
    "statistics-api.wildberries.ru": [PUBLIC_V4],
}


class FakeDns:
    """A resolver for `EgressPolicy`: `answers` maps names to addresses and may change between
    calls (rebinding); `asked` lists every name looked up."""

    def __init__(self, answers: dict[str, list[str]] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


def allow(app: FastAPI, purpose: Purpose, *origins: str) -> None:
    """Put `origins` on the app's allow-list of `purpose` (as EGRESS_ALLOW_* would)."""
    policy: EgressPolicy = app.state.egress
    allowed = dict(policy.allow)
    allowed[purpose] = allowed.get(purpose, frozenset()) | {parse_origin(o) for o in origins}
    app.state.egress = dataclasses.replace(policy, allow=allowed)


COMPLETION = orjson.dumps(
    {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Спасибо за отзыв!"}}]}
)


@dataclass
class Listener:
    """A real server on 127.0.0.1 standing for one of our internal services: it counts every
    connection it accepts and answers each request with `body` (a chat completion)."""

    body: bytes = COMPLETION
    port: int = 0
    connections: int = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(self.body), self.body)
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def listening() -> AsyncIterator[Listener]:
    listener = Listener()
    server = await asyncio.start_server(listener._serve, "127.0.0.1", 0)
    listener.port = server.sockets[0].getsockname()[1]
    async with server:
        yield listener
