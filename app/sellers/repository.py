from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.sellers.models import MarketplaceAccount, Seller, SellerSettings


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
    session: AsyncSession, *, seller_id: int, marketplace: str
) -> MarketplaceAccount | None:
    result = await session.execute(
        select(MarketplaceAccount).where(
            MarketplaceAccount.seller_id == seller_id,
            MarketplaceAccount.marketplace == marketplace,
        )
    )
    return result.scalar_one_or_none()


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


async def find_settings(session: AsyncSession, seller_id: int) -> SellerSettings | None:
    return await session.get(SellerSettings, seller_id)


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


async def pull_next_sync(session: AsyncSession, *, seller_id: int, latest: datetime) -> None:
    """Bring the seller's next sync forward to `latest` when it was planned later than that."""
    await session.execute(
        update(Seller)
        .where(Seller.id == seller_id, Seller.next_sync_at > latest)
        .values(next_sync_at=latest)
    )
