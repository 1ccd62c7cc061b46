from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.sellers.models import MarketplaceAccount, Seller


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


async def delete_account(session: AsyncSession, *, seller_id: int, account_id: int) -> bool:
    result = await session.execute(
        delete(MarketplaceAccount)
        .where(MarketplaceAccount.id == account_id, MarketplaceAccount.seller_id == seller_id)
        .returning(MarketplaceAccount.id)
    )
    return result.scalar_one_or_none() is not None
