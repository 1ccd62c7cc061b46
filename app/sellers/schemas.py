from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from app.connectors import registry
from app.connectors.base import Channel
from app.core.schemas import Input, Schema
from app.interactions import classify
from app.interactions.classify import Intent
from app.sellers.models import AccountStatus, SellerSettings

Marketplace = Literal["wildberries", "ozon"]
M = TypeVar("M", bound=BaseModel)


class AccountStateRead(Schema):
    """Whether an account's token works: `needs_reauth` (the marketplace refused it; syncs and
    replies paused) says why and since when; rotating the token or a successful check resumes."""

    id: int
    marketplace: str
    is_active: bool
    status: AccountStatus
    status_reason: str | None
    status_since: datetime | None


class SellerRead(Schema):
    id: int
    name: str
    sync_status: str
    sync_error: str | None
    last_sync_at: datetime | None
    accounts: list[AccountStateRead] = Field(
        default_factory=list, description="the state of each connected marketplace account"
    )


class MarketplaceAccountCreate(Input):
    marketplace: Marketplace
    name: str = Field(default="", max_length=200)
    # SecretStr keeps the token out of logs and reprs; it is encrypted before it is stored.
    token: SecretStr = Field(min_length=8, max_length=4096)


class MarketplaceTokenRotate(Input):
    token: SecretStr = Field(min_length=8, max_length=4096)


class MarketplaceAccountRead(Schema):
    """The token is never part of any response."""

    id: int
    marketplace: str
    name: str
    is_active: bool
    status: AccountStatus
    status_reason: str | None
    status_since: datetime | None
    token_rotated_at: datetime | None
    last_error: str | None = Field(description="the same as status_reason (its earlier name)")
    created_at: datetime


class MarketplaceAccountCheck(BaseModel):
    """The result of re-checking the stored token (`account.status_reason` says why it failed)."""

    valid: bool
    checked_at: datetime
    account: MarketplaceAccountRead


# --- seller settings ---------------------------------------------------------------------

RateCategory = Literal["feedbacks", "chat"]
DraftProvider = Literal["offline", "openai_compat"]

# The literal above is what OpenAPI shows; the connectors' limits are the truth.
if set(get_args(RateCategory)) != set(registry.default_limits()):  # pragma: no cover
    raise RuntimeError("sellers.schemas.RateCategory is out of date with the connectors' limits")
CHANNELS: tuple[Channel, ...] = get_args(Channel)

SlaMinutes = Annotated[int, Field(ge=5, le=10080, description="minutes (5 min .. 7 days)")]
DraftModel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Body(Input):
    model_config = ConfigDict(extra="forbid")


class ChannelSla(_Body):
    """Response-time target of one channel; `by_intent` overrides `default` for those intents.
    Without `default` the built-in target applies (review 1440, question 240, chat 60)."""

    default: SlaMinutes | None = None
    by_intent: dict[Intent, SlaMinutes] = Field(default_factory=dict)


class ChannelSlaRead(BaseModel):
    default: int = Field(description="the target in effect (the built-in one when not set)")
    by_intent: dict[Intent, int]


class AutoReplyPolicy(_Body):
    """When replies may go out without an operator (product.md §5, §10).

    The policy only *allows*: an auto-action also needs a deterministic link with confidence
    ≥ 0.85 (probabilistic links stay assist-only) and a draft that passes the guardrails; the
    dispatcher enforces both. `min_rating` applies to reviews (other channels carry no rating);
    `intents: null` means any intent.
    """

    enabled: bool = False
    channels: list[Channel] = Field(default_factory=list)
    min_rating: int | None = Field(default=None, ge=1, le=5)
    intents: list[Intent] | None = None

    @field_validator("channels", "intents")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(value)) if value is not None else None

    @model_validator(mode="after")
    def _meaningful(self) -> "AutoReplyPolicy":
        if self.intents == []:
            raise ValueError("intents must not be empty; use null for any intent")
        if self.enabled and not self.channels:
            raise ValueError("an enabled policy needs at least one channel")
        return self


class RateLimitOverride(_Body):
    """Our limiter's bucket for one marketplace API group: `rate` tokens per second, `burst`.

    Used as given; the defaults keep a burst one token below the marketplace's (see the
    connector's limits), and an override should too."""

    rate: float = Field(gt=0, le=1000, allow_inf_nan=False)
    burst: int = Field(ge=1, le=10000)


class SellerSettingsUpdate(_Body):
    """PATCH: only the fields sent change.

    - `sla_targets`, `rate_limits`: merged per channel / per group; `null` for one entry removes
      that override, `null` for the whole field removes all of them.
    - `auto_reply_policy`: replaced as a whole; `null` resets it (disabled).
    - `draft_model`, `draft_base_url`: `null` clears. `draft_api_key` is write-only: stored
      encrypted, never returned (see `has_draft_api_key`); `null` clears it.
    - `sync_interval_minutes`, `reply_pending_window_minutes`, `draft_provider` cannot be null.
    - `openai_compat` needs `draft_base_url` and `draft_model` (sent now or stored before).
    """

    sla_targets: dict[Channel, ChannelSla | None] | None = None
    sync_interval_minutes: int | None = Field(default=None, ge=1, le=1440)
    reply_pending_window_minutes: int | None = Field(default=None, ge=30, le=1440)
    draft_provider: DraftProvider | None = None
    draft_model: DraftModel | None = None
    draft_base_url: HttpUrl | None = None
    draft_api_key: SecretStr | None = Field(default=None, min_length=1, max_length=4096)
    auto_reply_policy: AutoReplyPolicy | None = None
    rate_limits: dict[RateCategory, RateLimitOverride | None] | None = None

    @field_validator(
        "sync_interval_minutes", "reply_pending_window_minutes", "draft_provider", mode="before"
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values that were sent: an omitted field keeps its stored value.
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("draft_base_url")
    @classmethod
    def _short_url(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and len(str(value)) > 500:
            raise ValueError("URL should have at most 500 characters")
        return value


class SellerSettingsRead(BaseModel):
    sla_targets: dict[Channel, ChannelSlaRead]
    sync_interval_minutes: int
    reply_pending_window_minutes: int
    draft_provider: str
    draft_model: str | None
    draft_base_url: str | None
    has_draft_api_key: bool
    auto_reply_policy: AutoReplyPolicy
    rate_limits: dict[RateCategory, RateLimitOverride] = Field(
        description="overrides of our limiter's defaults (feedbacks 3/s burst 6, chat 1/s burst 10)"
    )
    updated_at: datetime

    @classmethod
    def from_row(cls, row: SellerSettings) -> "SellerSettingsRead":
        return cls(
            sla_targets={ch: _channel_sla(row.sla_targets.get(ch), ch) for ch in CHANNELS},
            sync_interval_minutes=row.sync_interval_minutes,
            reply_pending_window_minutes=row.reply_pending_window_minutes,
            draft_provider=row.draft_provider,
            draft_model=row.draft_model,
            draft_base_url=row.draft_base_url,
            has_draft_api_key=row.draft_api_key_encrypted is not None,
            auto_reply_policy=_lenient(AutoReplyPolicy, row.auto_reply_policy) or AutoReplyPolicy(),
            rate_limits={
                category: limit
                for category in get_args(RateCategory)
                if (limit := _lenient(RateLimitOverride, row.rate_limits.get(category)))
            },
            updated_at=row.updated_at,
        )


def _channel_sla(stored: Any, channel: Channel) -> ChannelSlaRead:
    sla = _lenient(ChannelSla, stored) or ChannelSla()
    default = sla.default or classify.DEFAULT_SLA_MINUTES[channel]
    return ChannelSlaRead(default=default, by_intent=dict(sla.by_intent))


def _lenient(model: type[M], stored: Any) -> M | None:
    """A stored JSON value as `model`, or None when absent or not valid (written by hand)."""
    if stored is None:
        return None
    try:
        return model.model_validate(stored)
    except ValidationError:
        return None
