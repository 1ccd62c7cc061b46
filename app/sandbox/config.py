"""Settings of the sandbox process, and the shapes of the admin API's settings bodies."""

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RateSpec(_Body):
    rate: float = Field(gt=0, description="tokens added per second")
    burst: int = Field(ge=1, description="bucket size")


class RateLimits(_Body):
    """WB's Personal-token limits: feedbacks-api 3/s burst 6, buyer chat 10 per 10 s burst 10."""

    enabled: bool = True
    feedbacks: RateSpec = Field(default_factory=lambda: RateSpec(rate=3, burst=6))
    chat: RateSpec = Field(default_factory=lambda: RateSpec(rate=1, burst=10))


class Burst429(_Body):
    every: int = Field(ge=1, description="requests served normally before each burst")
    length: int = Field(ge=1, description="requests answered 429 in a row")


class FaultSettings(_Body):
    error_rate: float = Field(default=0.0, ge=0, le=1)
    latency_ms: tuple[int, int] | None = None
    burst_429: Burst429 | None = None
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    seed: int = 0

    @model_validator(mode="after")
    def _latency_range(self) -> Self:
        if self.latency_ms is not None:
            low, high = self.latency_ms
            if not 0 <= low <= high <= 60_000:
                raise ValueError("latency_ms must be [min, max] with 0 <= min <= max <= 60000")
        return self


class AnsweredRatio(_Body):
    review: float = Field(default=0.4, ge=0, le=1)
    question: float = Field(default=0.5, ge=0, le=1)


class GrowthRates(_Body):
    """New items per minute of sandbox time, per channel (chat = new chats)."""

    review: float = Field(default=0.0, ge=0, le=10_000)
    question: float = Field(default=0.0, ge=0, le=10_000)
    chat: float = Field(default=0.0, ge=0, le=10_000)


class SellerSpec(_Body):
    name: str = Field(min_length=1, max_length=200)
    seed: int = 0
    reviews: int = Field(default=300, ge=0, le=2_000_000)
    questions: int = Field(default=120, ge=0, le=2_000_000)
    chats: int = Field(default=40, ge=0, le=1_000_000)
    messages_per_chat: float = Field(default=8.0, gt=0, le=60)
    answered_ratio: AnsweredRatio = Field(default_factory=AnsweredRatio)
    history_days: float = Field(default=365.0, gt=0, le=3650)
    moderation_seconds: float = Field(default=5.0, ge=0)
    new_items_per_minute: GrowthRates = Field(default_factory=GrowthRates)
    products: int | None = Field(default=None, ge=1, le=5000, description="default 50..500")


class SellerSettingsUpdate(_Body):
    moderation_seconds: float | None = Field(default=None, ge=0)
    new_items_per_minute: GrowthRates | None = None


class SandboxConfig(BaseModel):
    events_page_size: int = Field(default=1000, ge=1, le=100_000)
    request_log_capacity: int = Field(default=1_000_000, ge=1)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    faults: FaultSettings = Field(default_factory=FaultSettings)
    # Tests freeze the clock at a fixed instant so generated dates are reproducible.
    clock_start: float | None = None
    clock_frozen: bool = False
    # Tokens and reply signs are derived from it: the same secret gives the same tokens.
    secret: str = "sellerdesk-sandbox"  # noqa: S105 - test tokens only
    # Loaded at start when it exists, written after every change (app/sandbox/persist.py).
    state_file: Path | None = None
