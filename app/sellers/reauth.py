"""Accounts whose token the marketplace refused: what pauses, and what resumes.

A 401/403 on a call that needs the token (a sync, a reply send, a token check) puts the account
into `needs_reauth` (`sellers.service.mark_needs_reauth`, with an `account_events` row). While
it is there the beat skips the seller, sync-now and new replies answer 409 `needs_reauth`,
and queued replies wait without an attempt being counted (`dispatch.sender`).

Rotating the token, or a check that succeeds, makes the account active again; this module then
resumes what waited, in the same transaction: every hook registered with `on_resume` runs (the
dispatch makes the seller's waiting replies due at once, the sync queues a sync of every
channel). The domains that pause work register their own hook, so sellers imports none of them
(they import sellers). A hook is registered when its module is imported: the API imports every
domain's router, and through it that domain's service.
"""

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import SecretBox
from app.sellers import service as sellers_service
from app.sellers.models import MarketplaceAccount
from app.sellers.service import TokenChecker

ResumeHook = Callable[[AsyncSession, MarketplaceAccount], Awaitable[None]]

_resume_hooks: dict[str, ResumeHook] = {}


def on_resume(hook: ResumeHook) -> ResumeHook:
    """Register `hook` to run when an account that needed re-authorisation works again (in the
    transaction that reactivates it; once per function, however often its module loads)."""
    _resume_hooks[f"{hook.__module__}.{hook.__qualname__}"] = hook
    return hook


def resume_hooks() -> list[ResumeHook]:
    """What runs when an account works again, in the order it was registered."""
    return list(_resume_hooks.values())


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
    for hook in resume_hooks():
        await hook(session, account)
