"""Accounts whose token the marketplace refused: what pauses, and what resumes.

A 401/403 on a call that needs the token (a sync, a reply send, a token check) puts the account
into `needs_reauth` (`sellers.service.mark_needs_reauth`, with an `account_events` row). While
it is there the beat skips the seller, sync-now and new replies answer 409 `needs_reauth`,
and queued replies wait without an attempt being counted (`dispatch.sender`).

Rotating the token, or a check that succeeds, makes the account active again; this module then
resumes what waited: the seller's waiting replies become due at once (the sweeper sends them)
and a sync of every channel is queued. It sits apart from `sellers.service` because it reaches
into the sync and dispatch domains, which themselves call `sellers.service`.
"""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import SecretBox
from app.dispatch import repository as dispatch_repository
from app.sellers import service as sellers_service
from app.sellers.models import MarketplaceAccount
from app.sellers.service import TokenChecker
from app.sync import service as sync_service


async def rotate_token(
    session: AsyncSession,
    box: SecretBox,
    checker: TokenChecker,
    *,
    seller_id: int,
    account_id: int,
    token: str,
) -> MarketplaceAccount:
    """Replace the token once the marketplace accepts it; resume what its refusal paused."""
    paused = (await sellers_service.get_account(session, seller_id, account_id)).needs_reauth
    account = await sellers_service.rotate_token(
        session, box, seller_id=seller_id, account_id=account_id, token=token, checker=checker
    )
    if paused and not account.needs_reauth:
        await _resume(session, account)
    return account


async def check_account(
    session: AsyncSession,
    box: SecretBox,
    checker: TokenChecker,
    *,
    seller_id: int,
    account_id: int,
) -> tuple[MarketplaceAccount, bool]:
    """Re-check the stored token; a refused one pauses the account, a working one resumes it."""
    paused = (await sellers_service.get_account(session, seller_id, account_id)).needs_reauth
    account, valid = await sellers_service.check_account(
        session, box, checker, seller_id=seller_id, account_id=account_id
    )
    if paused and valid:
        await _resume(session, account)
    return account, valid


async def _resume(session: AsyncSession, account: MarketplaceAccount) -> None:
    await dispatch_repository.release_waiting(session, account.seller_id, datetime.now(UTC))
    if account.marketplace == sync_service.MARKETPLACE:
        await sync_service.request_runs(
            session, account.seller_id, sync_service.CHANNELS, trigger="manual"
        )
