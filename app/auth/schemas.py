from datetime import datetime

from pydantic import BaseModel, EmailStr, Field

from app.core.schemas import Input, Schema


class LoginRequest(Input):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserCreate(Input):
    email: EmailStr
    password: str = Field(min_length=8, max_length=1024)
    full_name: str = Field(default="", max_length=200)
    role: str = Field(default="operator", pattern="^(owner|operator)$")


class UserRead(Schema):
    id: int
    seller_id: int
    email: str
    full_name: str
    role: str


class ApiTokenCreate(Input):
    name: str = Field(min_length=1, max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class ApiTokenRead(Schema):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApiTokenCreated(ApiTokenRead):
    token: str = Field(description="Shown once; only its hash is stored.")
