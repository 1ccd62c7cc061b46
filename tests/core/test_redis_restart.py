"""A Redis restart costs the long-lived clients nothing: the first command on a connection the
old server closed is retried on a new one (the workers' clients live for days)."""

import signal
from pathlib import Path

import pytest

from app.core.redis import create_redis
from app.dev.embedded import EmbeddedRedis, free_port

pytestmark = pytest.mark.multiprocess


async def test_a_command_after_a_redis_restart_succeeds(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", free_port(), persist=False)
    client = create_redis(server.start())
    try:
        await client.set("before", "1")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.start()

        assert await client.set("after", "2")
        assert await client.get("after") == "2"
    finally:
        await client.aclose()
        server.stop()
