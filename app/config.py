"""Process-wide settings, read once from the environment (and an optional `.env`)."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-change-me"  # noqa: S105 - a placeholder refused outside development


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Unset in development means "start the embedded servers" (see app/dev/embedded.py).
    database_url: str | None = None
    redis_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_statement_timeout_ms: int = Field(default=30_000, ge=100)

    # Fernet key(s) for marketplace tokens, comma separated: the first encrypts, all decrypt,
    # so keys can be rotated. Any string works: non-Fernet values are derived into a key.
    secrets_key: SecretStr = SecretStr(DEV_SECRET)
    jwt_secret: SecretStr = SecretStr(DEV_SECRET)
    jwt_ttl_minutes: int = Field(default=12 * 60, ge=1)
    # How long an API process trusts its last check of a session token (signature, expiry, the
    # user exists and is active); 0: check on every request. A disabled user, or an expired
    # token, is refused at most this much later.
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    # Failed logins, counted in Redis per e-mail and per client address over a window that
    # starts at the first failure: at either limit, login answers 429 until the window ends,
    # also to the right password.
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=30, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Larger request bodies are refused with 413 before they are read (app/core/body_limit.py).
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)

    wb_feedbacks_base_url: str = "https://feedbacks-api.wildberries.ru"
    wb_buyer_chat_base_url: str = "https://buyer-chat-api.wildberries.ru"
    wb_statistics_base_url: str = "https://statistics-api.wildberries.ru"

    # How often beat looks for sellers due a sync (each seller has its own interval).
    sync_tick_seconds: float = Field(default=30.0, gt=0)
    # A sync holds its seller+channel lock this long past its last renewal; after a worker dies
    # the run is resumed once the lock has expired.
    sync_lock_ttl_seconds: float = Field(default=60.0, ge=1)

    # Dispatcher: how often beat sweeps the outbox (retries due, rows lost with a worker), and
    # how many attempts a reply gets before it is marked dead.
    dispatch_sweep_seconds: float = Field(default=5.0, gt=0)
    dispatch_max_attempts: int = Field(default=8, ge=1)
    # WB hides a question's first answer until moderation publishes it, so a check cannot see
    # an attempt that landed: a question reply is not sent again within this long of such an
    # attempt (reviews show answers under moderation; chats show messages at once).
    dispatch_question_moderation_seconds: float = Field(default=900.0, ge=0)

    heartbeat_interval_seconds: float = Field(default=15.0, gt=0)
    # /readyz fails when the worker's last heartbeat is older than this.
    heartbeat_max_age_seconds: float = Field(default=60.0, gt=0)

    # Where the embedded Postgres/Redis keep their data (git-ignored).
    data_dir: str = ".data"

    @model_validator(mode="after")
    def _refuse_placeholders_outside_dev(self) -> "Settings":
        if self.env == "production":
            for name in ("secrets_key", "jwt_secret"):
                if getattr(self, name).get_secret_value() == DEV_SECRET:
                    raise ValueError(f"{name.upper()} must be set in production")
            if not self.database_url or not self.redis_url:
                raise ValueError("DATABASE_URL and REDIS_URL must be set in production")
        return self

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("DATABASE_URL is not set (make run starts an embedded Postgres)")
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise RuntimeError("REDIS_URL is not set (make run starts an embedded Redis)")
        return self.redis_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
