from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, NotFound
from app.core.security import SecretBox
from app.sellers import repository
from app.sellers.models import MarketplaceAccount, Seller, SellerSettings


async def create_seller(session: AsyncSession, name: str) -> Seller:
    seller = Seller(name=name)
    session.add(seller)
    await session.flush()
    session.add(SellerSettings(seller_id=seller.id))
    await session.flush()
    return seller


async def get_seller(session: AsyncSession, seller_id: int) -> Seller:
    seller = await repository.get_seller(session, seller_id)
    if seller is None:
        raise NotFound("seller not found")
    return seller


async def get_account(session: AsyncSession, seller_id: int, account_id: int) -> MarketplaceAccount:
    account = await repository.get_account(session, seller_id=seller_id, account_id=account_id)
    if account is None:
        raise NotFound("marketplace account not found")
    return account


async def connect_account(
    session: AsyncSession,
    box: SecretBox,
    *,
    seller_id: int,
    marketplace: str,
    name: str,
    token: str,
) -> MarketplaceAccount:
    existing = await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )
    if existing is not None:
        raise Conflict(
            f"a {marketplace} account is already connected; rotate its token instead",
            details={"account_id": existing.id},
        )
    account = MarketplaceAccount(
        seller_id=seller_id,
        marketplace=marketplace,
        name=name,
        token_encrypted=box.encrypt(token),
    )
    session.add(account)
    await session.flush()
    await session.refresh(account)
    return account


async def ensure_account(
    session: AsyncSession, box: SecretBox, *, seller_id: int, marketplace: str, token: str
) -> MarketplaceAccount:
    """Connect, or rotate the token of the existing account (idempotent)."""
    existing = await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )
    if existing is None:
        return await connect_account(
            session, box, seller_id=seller_id, marketplace=marketplace, name="", token=token
        )
    if box.decrypt(existing.token_encrypted) != token:
        return await rotate_token(
            session, box, seller_id=seller_id, account_id=existing.id, token=token
        )
    return existing


async def rotate_token(
    session: AsyncSession, box: SecretBox, *, seller_id: int, account_id: int, token: str
) -> MarketplaceAccount:
    account = await get_account(session, seller_id, account_id)
    account.token_encrypted = box.encrypt(token)
    account.token_rotated_at = datetime.now(UTC)
    account.last_error = None
    account.is_active = True
    await session.flush()
    return account


async def disconnect_account(session: AsyncSession, seller_id: int, account_id: int) -> None:
    if not await repository.delete_account(session, seller_id=seller_id, account_id=account_id):
        raise NotFound("marketplace account not found")


def account_token(box: SecretBox, account: MarketplaceAccount) -> str:
    """The decrypted token, for connectors only; never for a response or a log line."""
    return box.decrypt(account.token_encrypted)
