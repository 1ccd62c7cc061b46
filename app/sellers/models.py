from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.base import Base, IdMixin, TimestampMixin, enum_check

MARKETPLACES = ("wildberries", "ozon")
SYNC_STATUSES = ("idle", "running", "ok", "error")
# active: the token works as far as we know. needs_reauth: the marketplace refused it (401/403)
# on a call that needs it; syncs and reply sends for the account pause until the token is
# rotated or a check succeeds (app/sellers/reauth.py).
AccountStatus = Literal["active", "needs_reauth"]
ACCOUNT_STATUSES: tuple[AccountStatus, ...] = get_args(AccountStatus)
ACCOUNT_EVENT_KINDS = ("needs_reauth", "reauthorised")
# What noticed the change: a sync run, a reply send, a token check, a token rotation.
ACCOUNT_EVENT_SOURCES = ("sync", "reply", "check", "rotation")


class Seller(IdMixin, TimestampMixin, Base):
    __tablename__ = "sellers"
    __table_args__ = (
        CheckConstraint(enum_check("sync_status", SYNC_STATUSES), name="sync_status"),
    )

    name: Mapped[str] = mapped_column(String(200))
    sync_status: Mapped[str] = mapped_column(String(16), default="idle", server_default="idle")
    sync_error: Mapped[str | None] = mapped_column(Text)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the beat should next consider this seller; indexed so a tick only reads the due ones.
    next_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class MarketplaceAccount(IdMixin, TimestampMixin, Base):
    __tablename__ = "marketplace_accounts"
    __table_args__ = (
        UniqueConstraint("seller_id", "marketplace"),
        CheckConstraint(enum_check("marketplace", MARKETPLACES), name="marketplace"),
        CheckConstraint(enum_check("status", ACCOUNT_STATUSES), name="status"),
    )

    seller_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"), index=True
    )
    marketplace: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Fernet ciphertext of the marketplace API token; never serialised by the API.
    token_encrypted: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    token_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    # needs_reauth: why the marketplace refused the token (never the token or the marketplace's
    # own text); null while active.
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def last_error(self) -> str | None:
        """The name issue 13 gave the reason; kept in the API for its clients."""
        return self.status_reason

    @property
    def needs_reauth(self) -> bool:
        return self.status == "needs_reauth"


class AccountEvent(IdMixin, Base):
    """A change of an account's status, kept for the ops alerts and the account's history.

    Not `interaction_events` (an audit of one customer contact: it needs an interaction) nor
    `sync_runs` (a refusal may come from a reply send or a token check)."""

    __tablename__ = "account_events"
    __table_args__ = (
        CheckConstraint(enum_check("kind", ACCOUNT_EVENT_KINDS), name="kind"),
        CheckConstraint(enum_check("source", ACCOUNT_EVENT_SOURCES), name="source"),
        Index("ix_account_events_seller_created", "seller_id", "created_at"),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    # Kept when the account is disconnected: the history outlives it.
    account_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("marketplace_accounts.id", ondelete="SET NULL"), index=True
    )
    marketplace: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # What the source was doing: {"run_id", "channel"} or {"reply_id"}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# How long (minutes) an item waits `pending_reply` for the marketplace to show a reply we sent.
DEFAULT_REPLY_PENDING_WINDOW = 180


class SellerSettings(TimestampMixin, Base):
    """Typed per-seller settings (one row per seller), not loose key/value rows."""

    __tablename__ = "seller_settings"
    __table_args__ = (
        CheckConstraint("sync_interval_minutes BETWEEN 1 AND 1440", name="sync_interval"),
        CheckConstraint(
            "reply_pending_window_minutes BETWEEN 30 AND 1440", name="reply_pending_window"
        ),
    )

    seller_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"), primary_key=True
    )
    sync_interval_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    reply_pending_window_minutes: Mapped[int] = mapped_column(
        Integer,
        default=DEFAULT_REPLY_PENDING_WINDOW,
        server_default=str(DEFAULT_REPLY_PENDING_WINDOW),
    )
    # {"review": {"default": 1440, "by_intent": {...}}, ...} in minutes, validated by the API.
    sla_targets: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    draft_provider: Mapped[str] = mapped_column(
        String(32), default="offline", server_default="offline"
    )
    draft_model: Mapped[str | None] = mapped_column(String(200))
    draft_base_url: Mapped[str | None] = mapped_column(String(500))
    draft_api_key_encrypted: Mapped[str | None] = mapped_column(Text)
    # Marketplace limit overrides per API category: {"feedbacks": {"rate": 3, "burst": 6}}.
    rate_limits: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    auto_reply_policy: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )
