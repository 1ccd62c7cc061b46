"""The marketplace for these tests is the sandbox, in process: its ASGI app is the transport of
the API's token checks (`app.state.marketplace_transport`)."""

from dataclasses import dataclass

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings

SANDBOX_URL = "http://sandbox"


@dataclass
class Marketplace:
    admin: AsyncClient  # the sandbox's control API

    async def token(self, name: str = "shop") -> str:
        """A real sandbox token: a seeded sandbox seller's (the same name, the same token)."""
        body = {"name": name, "reviews": 5, "questions": 5, "chats": 1}
        response = await self.admin.post("/_sandbox/sellers", json=body)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["token"])

    async def forget_everyone(self) -> None:
        """Every token the sandbox handed out stops working (401)."""
        assert (await self.admin.post("/_sandbox/reset")).status_code == 200


def wire(app: FastAPI, settings: Settings, feedbacks_url: str) -> None:
    app.state.settings = settings.model_copy(update={"wb_feedbacks_base_url": feedbacks_url})
