"""The API as a black box for the fuzzer: a uvicorn process on a database of its own, with a
seller whose Wildberries account is connected to a real sandbox process and holds the demo items,
so that generated ids and bodies reach real rows as well as missing ones."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth import service as auth_service
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, transaction
from app.core.security import SecretBox
from app.demo import service as demo_service
from app.dev.embedded import free_port
from app.sellers import service as sellers_service
from tests.services import ROOT, Services, alembic, recreate_database_async
from tests.sync import conftest as sync_conftest

sandbox_url = sync_conftest.sandbox_url  # the real sandbox server, shared with tests/sync

EMAIL, PASSWORD = "fuzz@example.com", "fuzz-password-1"
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class ApiServer:
    base_url: str
    token: str  # the operator's session token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="session")
async def fuzz_db(services: Services, settings: Settings) -> str:
    name = f"sellerdesk_test_fuzz_{os.getpid()}"
    url = await recreate_database_async(services, name)
    await asyncio.to_thread(alembic, url, "upgrade", "head")
    return url


@pytest.fixture(scope="session")
async def fuzz_seller(fuzz_db: str, settings: Settings, sandbox_url: str) -> None:
    """The operator, its seller connected to a sandbox seller, and the demo items."""
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        body = {"name": "fuzz", "reviews": 5, "questions": 5, "chats": 2}
        token = (await admin.post("/_sandbox/sellers", json=body)).json()["token"]
    engine: AsyncEngine = create_engine(settings.model_copy(update={"database_url": fuzz_db}))
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            seller = await sellers_service.create_seller(session, "Fuzz shop")
            await auth_service.create_user(
                session, seller_id=seller.id, email=EMAIL, password=PASSWORD, role="owner"
            )
            box = SecretBox(settings.secrets_key.get_secret_value())
            await sellers_service.connect_account(
                session, box, seller_id=seller.id, marketplace="wildberries", name="",
                token=token,
            )  # fmt: skip
            await demo_service.seed(session, seller.id)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def api_server(
    fuzz_db: str,
    fuzz_seller: None,
    settings: Settings,
    sandbox_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiServer]:
    port = free_port()
    log: Path = tmp_path_factory.mktemp("fuzz") / "api.log"
    env = os.environ | {
        "ENV": "test",
        "DATABASE_URL": fuzz_db,
        "REDIS_URL": settings.require_redis_url(),
        "SECRETS_KEY": settings.secrets_key.get_secret_value(),
        "JWT_SECRET": settings.jwt_secret.get_secret_value(),
        "WB_FEEDBACKS_BASE_URL": sandbox_url,
        "WB_BUYER_CHAT_BASE_URL": sandbox_url,
        "EGRESS_ALLOW_MARKETPLACE": sandbox_url,
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "app.main:asgi",
             "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, log)
        login = httpx.post(
            f"{base_url}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        yield ApiServer(base_url, login.json()["access_token"])
    finally:
        proc.terminate()
        proc.wait(20)


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the API exited:\n{log.read_text(errors='replace')}"
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).is_success:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the API did not start:\n{log.read_text(errors='replace')}")
