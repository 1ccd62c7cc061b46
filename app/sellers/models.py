from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.base import Base, IdMixin, TimestampMixin, enum_check

MARKETPLACES = ("wildberries", "ozon")
SYNC_STATUSES = ("idle", "running", "ok", "error")


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
    # Why the marketplace refused the token when a sync or a check last used it; null while it
    # works (a successful sync, a check or a rotation clears it). Replies are refused meanwhile.
    last_error: Mapped[str | None] = mapped_column(Text)


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
        Integer, default=180, server_default="180"
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
