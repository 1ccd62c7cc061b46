from datetime import datetime
from typing import Any, get_args

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
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.connectors.base import Channel, ListChannel
from app.core.base import Base, IdMixin, TimestampMixin, enum_check

SYNC_CHANNELS = (*get_args(Channel), "stats")
RUN_STATUSES = ("queued", "running", "succeeded", "partial", "failed", "skipped")
TRIGGERS = ("beat", "manual")
ACTIVE_RUN_STATUSES = ("queued", "running")
FINAL_RUN_STATUSES = tuple(s for s in RUN_STATUSES if s not in ACTIVE_RUN_STATUSES)
GAP_CHANNELS: tuple[ListChannel, ...] = get_args(ListChannel)  # the channels read as lists
GAP_LISTS = ("unanswered", "answered")


class SyncCursor(IdMixin, TimestampMixin, Base):
    """Incremental state per seller+marketplace+channel, advanced only after the data is committed.

    `state` holds the watermark (reviews/questions) or the event cursor (chats).
    """

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("seller_id", "marketplace", "channel"),)

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")


class SyncRun(IdMixin, Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint(enum_check("channel", SYNC_CHANNELS), name="channel"),
        CheckConstraint(enum_check("status", RUN_STATUSES), name="status"),
        CheckConstraint(enum_check("trigger", TRIGGERS), name="trigger"),
        Index("ix_sync_runs_seller_created", "seller_id", "created_at", "id"),
        Index("ix_sync_runs_seller_channel_created", "seller_id", "channel", "created_at"),
        # What sync-now and the tick's orphan check read: the few runs not finished yet.
        Index(
            "ix_sync_runs_active",
            "seller_id",
            "channel",
            postgresql_where=sql_text(enum_check("status", ACTIVE_RUN_STATUSES)),
        ),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    full_resync: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rate_limited: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Windows this run could not read completely (the marketplace's caps): see `sync_gaps`.
    gaps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How often the run was taken up again after its worker died.
    resumes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When its task was last published: a queued run whose task was lost goes out again.
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class SyncError(IdMixin, Base):
    """An item the marketplace sent that we could not normalise: kept with its raw payload."""

    __tablename__ = "sync_errors"
    __table_args__ = (Index("ix_sync_errors_seller_created", "seller_id", "created_at"),)

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(Text)
    raw: Mapped[Any] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SyncGap(IdMixin, Base):
    """Items of one list and time window the marketplace's caps kept us from reading.

    WB caps how far a list can be paged (questions: take + skip ≤ 10 000), so more items than
    that created within one second cannot all be read, from either end. The run that finds such
    a window records it here and goes on; later runs read it again and resolve it once nothing
    is missing (e.g. after some of its items moved to the other list). One open row per window.
    """

    __tablename__ = "sync_gaps"
    __table_args__ = (
        CheckConstraint(enum_check("channel", GAP_CHANNELS), name="channel"),
        CheckConstraint(enum_check("list_name", GAP_LISTS), name="list_name"),
        Index(
            "uq_sync_gaps_open_window",
            "seller_id",
            "marketplace",
            "channel",
            "list_name",
            "window_from",
            "window_to",
            unique=True,
            postgresql_where=sql_text("resolved_at IS NULL"),
        ),
    )

    seller_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sellers.id", ondelete="CASCADE"))
    marketplace: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    list_name: Mapped[str] = mapped_column(String(16))  # unanswered | answered
    # Both ends inclusive, whole seconds (the marketplace's dateFrom/dateTo).
    window_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The marketplace's count for the window, and how many of those we could not read.
    total: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )  # the run that found it
    last_run_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("sync_runs.id", ondelete="SET NULL"), index=True
    )  # the run that last read it
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
