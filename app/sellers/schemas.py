from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from app.core.schemas import Schema

Marketplace = Literal["wildberries", "ozon"]


class SellerRead(Schema):
    id: int
    name: str
    sync_status: str
    sync_error: str | None
    last_sync_at: datetime | None


class MarketplaceAccountCreate(BaseModel):
    marketplace: Marketplace
    name: str = Field(default="", max_length=200)
    # SecretStr keeps the token out of logs and reprs; it is encrypted before it is stored.
    token: SecretStr = Field(min_length=8, max_length=4096)


class MarketplaceTokenRotate(BaseModel):
    token: SecretStr = Field(min_length=8, max_length=4096)


class MarketplaceAccountRead(Schema):
    """The token is never part of any response."""

    id: int
    marketplace: str
    name: str
    is_active: bool
    token_rotated_at: datetime | None
    last_error: str | None
    created_at: datetime
