"""Process-wide settings, read once from the environment (and an optional `.env`)."""

from functools import lru_cache
from ipaddress import IPv6Address
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core import egress

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
    # Opening a connection (TCP and the startup exchange) gives up after this; a request waits
    # this long at most for a free pooled connection. A statement is cut by the server at
    # DB_STATEMENT_TIMEOUT_MS and by the client a few seconds later (a frozen server answers
    # nothing, not even its own timeout): app/core/db.py.
    db_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # No request waits longer than this for its answer to start: past it the client gets 503
    # service_unavailable with Retry-After (app/core/deadline.py). Keep it above /readyz's 3 s
    # per check, or the readiness details are cut off too.
    request_timeout_seconds: float = Field(default=5.0, gt=0)
    # Publishing a Celery task after commit gives up after this (the broker is down or frozen);
    # the row's owner delivers it later (app/worker/enqueue.py).
    broker_publish_timeout_seconds: float = Field(default=2.0, gt=0)

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

    # Outbound requests (app/core/egress.py): exact `scheme://host:port` origins, comma
    # separated, that a purpose may reach although they are not public https addresses (the
    # sandbox, a local LLM server). The draft provider's list may not name our own services.
    egress_allow_marketplace: Annotated[list[str], NoDecode] = []
    egress_allow_draft_provider: Annotated[list[str], NoDecode] = []
    # The API's port on this host (`make run` listens there): a draft URL must never reach it.
    api_port: int = Field(default=8000, ge=1, le=65535)

    # How often beat looks for sellers due a sync (each seller has its own interval) and for
    # runs nobody works on (a dead worker's, a lost task's): cheap, both read an index.
    sync_tick_seconds: float = Field(default=10.0, gt=0)
    # A sync holds its seller+channel lock this long past its last renewal (renewed every third
    # of it); after a worker dies the run is resumed once the lock has expired: by the next tick,
    # or at once by a sync-now.
    sync_lock_ttl_seconds: float = Field(default=15.0, ge=1)
    # A queued run whose task has not started this long after it was published (the task was
    # lost with the broker) is published again by the tick.
    sync_republish_after_seconds: float = Field(default=120.0, gt=0)

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

    @field_validator("egress_allow_marketplace", "egress_allow_draft_provider", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> list[str]:
        entries = value.split(",") if isinstance(value, str) else value
        return [egress.parse_origin(str(entry)) for entry in entries if str(entry).strip()]

    @model_validator(mode="after")
    def _draft_list_names_none_of_ours(self) -> "Settings":
        ours = [(origin, "on EGRESS_ALLOW_MARKETPLACE") for origin in self.egress_allow_marketplace]
        marketplace = ("wb_feedbacks_base_url", "wb_buyer_chat_base_url", "wb_statistics_base_url")
        ours += [
            (getattr(self, name), f"the marketplace endpoint {name.upper()}")
            for name in marketplace
        ]
        ours += [(url, "the database (DATABASE_URL)") for url in [self.database_url] if url]
        ours += [(url, "Redis (REDIS_URL)") for url in [self.redis_url] if url]
        ours.append((f"http://127.0.0.1:{self.api_port}", "the API (API_PORT)"))
        for entry in self.egress_allow_draft_provider:
            for url, what in ours:
                if _service(entry) == _service(url):
                    raise ValueError(
                        f"EGRESS_ALLOW_DRAFT_PROVIDER may not name {entry}: that is {what}, "
                        "and a draft URL must never reach our own services"
                    )
        return self

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


# Default ports of the URLs we compare (a service is its host and port, whatever the scheme).
_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "redis": 6379, "rediss": 6379}


def _service(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL; every name and address of this machine count as one host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    address = egress.numeric_address(host)
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    local = host == "localhost" or host.endswith(".localhost")
    if local or (address is not None and (address.is_loopback or address.is_unspecified)):
        host = "this machine"
    try:
        port = parts.port
    except ValueError:  # out of range: no service
        port = None
    return host, port or _PORTS.get(parts.scheme.split("+")[0])


@lru_cache
def get_settings() -> Settings:
    return Settings()
