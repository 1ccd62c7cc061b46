"""Network faults in front of the real servers, without touching the servers the other tests
share: a port nobody listens on, a listener that never answers, and a TCP proxy that can be
frozen (what a client sees of a server stopped with SIGSTOP: connections stay open, nothing comes
back)."""

import asyncio
import contextlib
import socket
from collections.abc import Iterator


def closed_port() -> int:
    """A port on 127.0.0.1 that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port whose kernel accepts connections that nobody ever reads or answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


class FreezableProxy:
    """Forwards 127.0.0.1:`port` to `target`; `freeze()` stops every byte in both directions
    (and new connections hang), `thaw()` lets them flow again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])

    async def __aenter__(self) -> "FreezableProxy":
        self._server = await asyncio.start_server(self._accept, sock=self._socket)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.add(up_writer)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
