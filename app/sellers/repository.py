from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.sellers.models import AccountEvent, MarketplaceAccount, Seller, SellerSettings


async def create_seller(session: AsyncSession, *, name: str) -> Seller:
    """A seller with its settings row (the defaults)."""
    seller = Seller(name=name)
    session.add(seller)
    await session.flush()
    session.add(SellerSettings(seller_id=seller.id))
    await session.flush()
    return seller


async def get_seller(session: AsyncSession, seller_id: int) -> Seller | None:
    return await session.get(Seller, seller_id)


async def list_accounts(session: AsyncSession, *, seller_id: int) -> list[MarketplaceAccount]:
    result = await session.execute(
        select(MarketplaceAccount)
        .where(MarketplaceAccount.seller_id == seller_id)
        .order_by(MarketplaceAccount.id)
    )
    return list(result.scalars())


async def get_account(
    session: AsyncSession, *, seller_id: int, account_id: int
) -> MarketplaceAccount | None:
    result = await session.execute(
        select(MarketplaceAccount).where(
            MarketplaceAccount.id == account_id, MarketplaceAccount.seller_id == seller_id
        )
    )
    return result.scalar_one_or_none()


async def get_account_for_marketplace(
    session: AsyncSession, *, seller_id: int, marketplace: str, active: bool = False
) -> MarketplaceAccount | None:
    """The seller's account on `marketplace`; with `active`, unless it was disconnected
    (`is_active` false)."""
    stmt = select(MarketplaceAccount).where(
        MarketplaceAccount.seller_id == seller_id, MarketplaceAccount.marketplace == marketplace
    )
    if active:
        stmt = stmt.where(MarketplaceAccount.is_active)
    return (await session.execute(stmt)).scalar_one_or_none()


async def create_account(
    session: AsyncSession, *, seller_id: int, marketplace: str, name: str, token_encrypted: str
) -> MarketplaceAccount:
    account = MarketplaceAccount(
        seller_id=seller_id, marketplace=marketplace, name=name, token_encrypted=token_encrypted
    )
    session.add(account)
    await session.flush()
    await session.refresh(account)  # the server's defaults (status, timestamps)
    return account


def add_account_event(session: AsyncSession, event: AccountEvent) -> None:
    """Add the event to the session (written with the caller's flush or commit)."""
    session.add(event)


async def set_account_status(
    session: AsyncSession,
    *,
    seller_id: int,
    marketplace: str,
    status: str,
    reason: str | None,
    from_status: str,
    unchanged_since: datetime | None = None,
) -> int | None:
    """Move the account from `from_status` to `status` (one statement: of two workers seeing
    the same refusal, one changes it); its id, or None when it was not in `from_status` (or,
    with `unchanged_since`, got there after that time)."""
    a = MarketplaceAccount
    unchanged = (
        [a.status_since.is_(None) | (a.status_since <= unchanged_since)]
        if unchanged_since is not None
        else []
    )
    return await session.scalar(
        update(MarketplaceAccount)
        .where(
            MarketplaceAccount.seller_id == seller_id,
            MarketplaceAccount.marketplace == marketplace,
            MarketplaceAccount.status == from_status,
            *unchanged,
        )
        # The moment of the change (not the transaction's start): a refusal is judged by it.
        .values(status=status, status_reason=reason, status_since=func.clock_timestamp())
        .returning(MarketplaceAccount.id)
    )


async def account_status(
    session: AsyncSession, seller_id: int, marketplace: str, *, lock: bool = False
) -> str | None:
    """The account's status; `lock`: under a share lock (a change waits for this transaction,
    and this read waits for a change in flight)."""
    stmt = select(MarketplaceAccount.status).where(
        MarketplaceAccount.seller_id == seller_id,
        MarketplaceAccount.marketplace == marketplace,
    )
    return await session.scalar(stmt.with_for_update(read=True) if lock else stmt)


async def delete_account(session: AsyncSession, *, seller_id: int, account_id: int) -> bool:
    result = await session.execute(
        delete(MarketplaceAccount)
        .where(MarketplaceAccount.id == account_id, MarketplaceAccount.seller_id == seller_id)
        .returning(MarketplaceAccount.id)
    )
    return result.scalar_one_or_none() is not None


async def get_settings(
    session: AsyncSession, *, seller_id: int, for_update: bool = False
) -> SellerSettings:
    """The seller's settings row, created with the defaults when it is missing."""
    stmt = (
        select(SellerSettings)
        .where(SellerSettings.seller_id == seller_id)
        .execution_options(populate_existing=True)
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        await session.execute(
            insert(SellerSettings)
            .values(seller_id=seller_id)
            .on_conflict_do_nothing(index_elements=[SellerSettings.seller_id])
        )
        row = (await session.execute(stmt)).scalar_one()
    return row


async def find_settings(session: AsyncSession, *, seller_id: int) -> SellerSettings | None:
    """The seller's settings row as it is (None when missing: nothing is created)."""
    return await session.get(SellerSettings, seller_id)


async def reply_pending_window(session: AsyncSession, *, seller_id: int) -> int | None:
    return await session.scalar(
        select(SellerSettings.reply_pending_window_minutes).where(
            SellerSettings.seller_id == seller_id
        )
    )


async def due_for_sync(
    session: AsyncSession, *, marketplace: str, now: datetime, limit: int
) -> list[tuple[int, int]]:
    """(seller id, sync interval in minutes) of the sellers whose next sync is due, with an
    active account on `marketplace` that does not wait for re-authorisation; locked, skipping
    those another transaction holds (ticks may overlap). Only due sellers are read (indexed
    `next_sync_at`), never-synced ones first."""
    due = (
        select(Seller.id, SellerSettings.sync_interval_minutes)
        .join(SellerSettings, SellerSettings.seller_id == Seller.id)
        .join(
            MarketplaceAccount,
            (MarketplaceAccount.seller_id == Seller.id)
            & (MarketplaceAccount.marketplace == marketplace)
            & MarketplaceAccount.is_active
            & (MarketplaceAccount.status == "active"),
        )
        .where((Seller.next_sync_at.is_(None)) | (Seller.next_sync_at <= now))
        .order_by(Seller.next_sync_at.asc().nullsfirst())
        .limit(limit)
        .with_for_update(of=Seller, skip_locked=True)
    )
    return [(seller_id, interval) for seller_id, interval in await session.execute(due)]


async def set_next_syncs(session: AsyncSession, next_sync_at: dict[int, datetime]) -> None:
    """Plan each seller's next sync (seller id → when), in one statement."""
    if next_sync_at:
        await session.execute(
            update(Seller),
            [{"id": seller_id, "next_sync_at": at} for seller_id, at in next_sync_at.items()],
        )


async def set_sync_status(session: AsyncSession, *, seller_id: int, status: str) -> None:
    await session.execute(update(Seller).where(Seller.id == seller_id).values(sync_status=status))


async def record_sync_result(session: AsyncSession, *, seller_id: int, error: str | None) -> None:
    """The end of a sync: `ok` (and synced now) without `error`, else `error` saying why."""
    values: dict[str, Any] = {
        "sync_status": "ok" if error is None else "error",
        "sync_error": error,
    }
    if error is None:
        values["last_sync_at"] = func.now()
    await session.execute(update(Seller).where(Seller.id == seller_id).values(values))


async def pull_next_sync(session: AsyncSession, *, seller_id: int, latest: datetime) -> None:
    """Bring the seller's next sync forward to `latest` when it was planned later than that."""
    await session.execute(
        update(Seller)
        .where(Seller.id == seller_id, Seller.next_sync_at > latest)
        .values(next_sync_at=latest)
    )
