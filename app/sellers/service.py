import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors import registry
from app.connectors.base import (
    AuthError,
    Environment,
    Marketplace,
    RetryPolicy,
    TokenCheck,
    TokenVerdict,
)
from app.core import egress
from app.core.errors import Conflict, NotFound
from app.core.ratelimit import Limit, RateLimiter
from app.core.security import SecretBox
from app.sellers import repository
from app.sellers.exceptions import (
    AccountNeedsReauth,
    AccountPaused,
    DraftUrlRefused,
    MarketplaceNotSupported,
    MarketplaceRateLimited,
    MarketplaceTokenRejected,
    MarketplaceUnreachable,
    NoAccount,
    NoMarketplaceAccount,
    SettingsInvalid,
)
from app.sellers.models import (
    DEFAULT_REPLY_PENDING_WINDOW,
    AccountEvent,
    MarketplaceAccount,
    Seller,
    SellerSettings,
)
from app.sellers.schemas import SellerSettingsUpdate

Refusal = Literal["paused", "already", "stale"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenChecker:
    """Asks a marketplace whether a token works, through its connector (`env`: settings, the
    outbound policy and, in tests, the sandbox as transport)."""

    env: Environment

    async def check(self, marketplace: str, token: str) -> TokenCheck:
        return await registry.get(marketplace).check_token(token, self.env)


async def create_seller(session: AsyncSession, name: str) -> Seller:
    return await repository.create_seller(session, name=name)


async def get_seller(session: AsyncSession, seller_id: int) -> Seller:
    seller = await repository.get_seller(session, seller_id)
    if seller is None:
        raise NotFound("seller not found")
    return seller


async def seller_with_accounts(
    session: AsyncSession, seller_id: int
) -> tuple[Seller, list[MarketplaceAccount]]:
    seller = await get_seller(session, seller_id)
    return seller, await repository.list_accounts(session, seller_id=seller_id)


# --- marketplace accounts ------------------------------------------------------------------


async def list_accounts(session: AsyncSession, seller_id: int) -> list[MarketplaceAccount]:
    return await repository.list_accounts(session, seller_id=seller_id)


async def account_for(
    session: AsyncSession, seller_id: int, marketplace: str
) -> MarketplaceAccount | None:
    """The seller's account on `marketplace` in whatever state it is, or None."""
    return await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )


async def get_account(session: AsyncSession, seller_id: int, account_id: int) -> MarketplaceAccount:
    account = await repository.get_account(session, seller_id=seller_id, account_id=account_id)
    if account is None:
        raise NotFound("marketplace account not found")
    return account


async def usable_account(
    session: AsyncSession, seller_id: int, marketplace: str
) -> MarketplaceAccount:
    """The seller's active account on `marketplace`, not waiting for re-authorisation; a 409
    saying which of the two is missing otherwise (sync-now and new replies ask this)."""
    account = await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )
    if account is None or not account.is_active:
        raise NoMarketplaceAccount(
            f"connect a {marketplace} account first", details={"marketplace": marketplace}
        )
    if account.needs_reauth:
        raise AccountNeedsReauth(
            f"the {marketplace} token does not work ({account.status_reason}): syncs and "
            "replies are paused until it is rotated or re-checked",
            details={
                "account_id": account.id,
                "marketplace": marketplace,
                "reason": account.status_reason,
                "since": account.status_since.isoformat() if account.status_since else None,
            },
        )
    return account


# --- re-authorisation: the state, and an event for each change (app/sellers/reauth.py resumes
# what depends on it) -------------------------------------------------------------------------


async def account_status_locked(
    session: AsyncSession, seller_id: int, marketplace: str
) -> str | None:
    """The account's status, read under a share lock held until the transaction ends."""
    return await repository.account_status(session, seller_id, marketplace, lock=True)


async def mark_needs_reauth(
    session: AsyncSession,
    *,
    seller_id: int,
    marketplace: str,
    reason: str,
    source: str,
    token_read_at: datetime,
    payload: dict[str, Any] | None = None,
) -> Refusal:
    """The marketplace refused the account's token, read at `token_read_at`: pause what uses
    it. Only the first refusal changes anything (and records an event): `paused`; `already`
    when the account was paused before; `stale` when it was made to work again after the token
    was read (a call made before a rotation or a successful check: nothing to pause)."""
    account_id = await repository.set_account_status(
        session,
        seller_id=seller_id,
        marketplace=marketplace,
        status="needs_reauth",
        reason=reason,
        from_status="active",
        unchanged_since=token_read_at,
    )
    if account_id is None:
        status = await repository.account_status(session, seller_id, marketplace)
        return "stale" if status == "active" else "already"
    _account_event(session, seller_id, account_id, marketplace, "needs_reauth", source, reason,
                   payload)  # fmt: skip
    logger.warning("marketplace account %s needs re-authorisation: %s", account_id, reason)
    return "paused"


async def reactivate(session: AsyncSession, account: MarketplaceAccount, *, source: str) -> bool:
    """The token works again (rotated, or a check succeeded): back to active, with an event.
    False when the account was active already."""
    changed = await repository.set_account_status(
        session,
        seller_id=account.seller_id,
        marketplace=account.marketplace,
        status="active",
        reason=None,
        from_status="needs_reauth",
    )
    await session.refresh(account)
    if changed is None:
        return False
    _account_event(session, account.seller_id, account.id, account.marketplace, "reauthorised",
                   source, None, None)  # fmt: skip
    logger.info("marketplace account %s re-authorised (%s)", account.id, source)
    return True


def _account_event(
    session: AsyncSession,
    seller_id: int,
    account_id: int,
    marketplace: str,
    kind: str,
    source: str,
    reason: str | None,
    payload: dict[str, Any] | None,
) -> None:
    repository.add_account_event(
        session,
        AccountEvent(
            seller_id=seller_id,
            account_id=account_id,
            marketplace=marketplace,
            kind=kind,
            source=source,
            reason=reason,
            payload=payload or {},
        ),
    )


async def validate_token(checker: TokenChecker, marketplace: str, token: str) -> None:
    """Ask the marketplace whether `token` works; raise the API error when it does not.

    Never includes the token (or the marketplace's own error text) in an error or a log line.
    """
    _require_checkable(marketplace)
    _raise_unless_ok(await checker.check(marketplace, token))


def _require_checkable(marketplace: str) -> None:
    """Only marketplaces with a connector: their tokens can be checked (and used)."""
    if not registry.supports(marketplace):
        raise MarketplaceNotSupported(
            f"{marketplace} accounts cannot be connected yet: their tokens cannot be checked",
            details={"marketplace": marketplace, "supported": list(registry.names())},
        )


def _raise_unless_ok(result: TokenCheck) -> None:
    details: dict[str, Any] = {"status": result.status_code}
    if result.outcome is TokenVerdict.OK:
        return
    if result.outcome is TokenVerdict.REJECTED:
        raise MarketplaceTokenRejected(result.message, details=details)
    if result.outcome is TokenVerdict.RATE_LIMITED:
        details["retry_after_seconds"] = result.retry_after_seconds
        raise MarketplaceRateLimited(result.message, details=details)
    raise MarketplaceUnreachable(result.message, details=details)


async def connect_account(
    session: AsyncSession,
    box: SecretBox,
    *,
    seller_id: int,
    marketplace: str,
    name: str,
    token: str,
    checker: TokenChecker | None = None,
) -> MarketplaceAccount:
    """Store a new account. With `checker` (the API always passes one) the token is checked
    against the marketplace first and nothing is stored unless it works; without, it is stored
    as given (the CLI's development sandbox, tests, benchmarks)."""
    existing = await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )
    if existing is not None:  # before the ping: a conflict should not spend the ping's budget
        raise Conflict(
            f"a {marketplace} account is already connected; rotate its token instead",
            details={"account_id": existing.id},
        )
    token = token.strip()  # pasted with a newline or a space
    if checker is not None:
        await validate_token(checker, marketplace, token)
    return await repository.create_account(
        session,
        seller_id=seller_id,
        marketplace=marketplace,
        name=name,
        token_encrypted=box.encrypt(token),
    )


async def ensure_account(
    session: AsyncSession, box: SecretBox, *, seller_id: int, marketplace: str, token: str
) -> MarketplaceAccount:
    """Connect, or rotate the token of the existing account (idempotent; not checked)."""
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
    session: AsyncSession,
    box: SecretBox,
    *,
    seller_id: int,
    account_id: int,
    token: str,
    checker: TokenChecker | None = None,
) -> MarketplaceAccount:
    """Replace the token; with `checker`, only once the marketplace accepts the new one (the old
    token stays otherwise)."""
    account = await get_account(session, seller_id, account_id)
    token = token.strip()
    if checker is not None:
        await validate_token(checker, account.marketplace, token)
    account.token_encrypted = box.encrypt(token)
    account.token_rotated_at = datetime.now(UTC)
    account.is_active = True
    await session.flush()
    await reactivate(session, account, source="rotation")
    return account


async def check_account(
    session: AsyncSession,
    box: SecretBox,
    checker: TokenChecker,
    *,
    seller_id: int,
    account_id: int,
) -> tuple[MarketplaceAccount, bool]:
    """Re-check the stored token and record the verdict: a refused token puts the account into
    needs_reauth (`status_reason` says why), a working one makes it active again.

    Only a definite answer is recorded: when the marketplace cannot be asked (unreachable, rate
    limited) this raises and the status stays what it was.
    """
    account = await get_account(session, seller_id, account_id)
    _require_checkable(account.marketplace)
    token_read_at = datetime.now(UTC)
    try:
        token = box.decrypt(account.token_encrypted)
    except ValueError:  # encrypted with a key that SECRETS_KEY no longer lists
        result = TokenCheck(
            TokenVerdict.REJECTED, "the stored token cannot be decrypted; rotate it"
        )
    else:
        result = await checker.check(account.marketplace, token)
    if result.outcome not in (TokenVerdict.OK, TokenVerdict.REJECTED):
        _raise_unless_ok(result)
    valid = result.outcome is TokenVerdict.OK
    if valid:
        await reactivate(session, account, source="check")
    else:
        await mark_needs_reauth(
            session,
            seller_id=seller_id,
            marketplace=account.marketplace,
            reason=result.message,
            source="check",
            token_read_at=token_read_at,
        )
        await session.refresh(account)
    logger.info("marketplace account %s checked: %s", account.id, result.outcome)
    return account, valid


async def disconnect_account(session: AsyncSession, seller_id: int, account_id: int) -> None:
    if not await repository.delete_account(session, seller_id=seller_id, account_id=account_id):
        raise NotFound("marketplace account not found")


def account_token(box: SecretBox, account: MarketplaceAccount) -> str:
    """The decrypted token, for connectors only; never for a response or a log line."""
    return box.decrypt(account.token_encrypted)


async def active_account(
    session: AsyncSession, seller_id: int, marketplace: str
) -> MarketplaceAccount | None:
    """The seller's connected account on `marketplace` (paused or not), or None."""
    return await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace, active=True
    )


# --- the sellers' sync state (the sync domain runs the syncs) ----------------------------------


async def claim_due_syncs(
    session: AsyncSession, marketplace: str, *, now: datetime, limit: int
) -> list[int]:
    """The sellers whose sync on `marketplace` is due (locked for this transaction, skipping
    those another holds), each with its next sync planned one interval from `now`."""
    rows = await repository.due_for_sync(session, marketplace=marketplace, now=now, limit=limit)
    await repository.set_next_syncs(
        session, {seller_id: now + timedelta(minutes=interval) for seller_id, interval in rows}
    )
    return [seller_id for seller_id, _ in rows]


async def sync_started(session: AsyncSession, seller_id: int) -> None:
    await repository.set_sync_status(session, seller_id=seller_id, status="running")


async def sync_ended(session: AsyncSession, seller_id: int, *, error: str | None) -> None:
    """A sync ended: well without `error` (the seller counts as synced now), else why not."""
    await repository.record_sync_result(session, seller_id=seller_id, error=error)


# --- settings -------------------------------------------------------------------------------


async def get_settings(session: AsyncSession, seller_id: int) -> SellerSettings:
    return await repository.get_settings(session, seller_id=seller_id)


async def find_settings(session: AsyncSession, seller_id: int) -> SellerSettings | None:
    """The seller's settings as stored (None when missing; nothing is created)."""
    return await repository.find_settings(session, seller_id=seller_id)


async def reply_pending_window(session: AsyncSession, seller_id: int) -> int:
    """Minutes an item stays `pending_reply` after a reply to it is queued or sent."""
    minutes = await repository.reply_pending_window(session, seller_id=seller_id)
    return minutes or DEFAULT_REPLY_PENDING_WINDOW


async def update_settings(
    session: AsyncSession,
    box: SecretBox,
    egress_policy: egress.EgressPolicy,
    seller_id: int,
    patch: SellerSettingsUpdate,
) -> SellerSettings:
    """Apply a partial update (see `SellerSettingsUpdate` for the merge rules) under a row lock,
    so two concurrent PATCHes of different SLA channels both land. A draft base URL is checked
    against the outbound request policy first (and again at every use: DNS changes)."""
    if patch.draft_base_url is not None:
        await _check_draft_url(egress_policy, str(patch.draft_base_url))
    row = await repository.get_settings(session, seller_id=seller_id, for_update=True)
    sent = patch.model_fields_set
    if "sla_targets" in sent:
        row.sla_targets = _merge(row.sla_targets, _dumped(patch.sla_targets, exclude_none=True))
    if "rate_limits" in sent:
        row.rate_limits = _merge(row.rate_limits, _dumped(patch.rate_limits))
    if "auto_reply_policy" in sent:
        policy = patch.auto_reply_policy
        row.auto_reply_policy = policy.model_dump() if policy else {}
    if patch.sync_interval_minutes is not None:
        row.sync_interval_minutes = patch.sync_interval_minutes
    if patch.reply_pending_window_minutes is not None:
        row.reply_pending_window_minutes = patch.reply_pending_window_minutes
    if patch.draft_provider is not None:
        row.draft_provider = patch.draft_provider
    if "draft_model" in sent:
        row.draft_model = patch.draft_model
    if "draft_base_url" in sent:
        row.draft_base_url = str(patch.draft_base_url) if patch.draft_base_url else None
    if "draft_api_key" in sent:
        key = patch.draft_api_key
        row.draft_api_key_encrypted = box.encrypt(key.get_secret_value()) if key else None
    _check_draft_provider(row)
    if patch.sync_interval_minutes is not None:
        # The new interval applies from now: a sync planned further out than that comes forward.
        latest = datetime.now(UTC) + timedelta(minutes=patch.sync_interval_minutes)
        await repository.pull_next_sync(session, seller_id=seller_id, latest=latest)
    await session.flush()
    await session.refresh(row)  # updated_at is set by the database
    return row


async def _check_draft_url(egress_policy: egress.EgressPolicy, url: str) -> None:
    try:
        await egress_policy.check(egress.Purpose.DRAFT_PROVIDER, url)
    except egress.Refused as exc:
        reason = str(exc)
    except egress.Unresolved:  # told apart from a private address, it would map internal names
        reason = egress.NOT_PUBLIC
    else:
        return
    raise DraftUrlRefused(
        f"draft_base_url is {egress.REFUSED}: {reason}",
        details=[{"loc": ["body", "draft_base_url"], "msg": reason, "type": "refused_by_policy"}],
    )


Key = TypeVar("Key", bound=str)


def _dumped(patch: Mapping[Key, BaseModel | None] | None, **dump: Any) -> dict[str, Any] | None:
    """A patch of a JSON map as `_merge` takes it: each value dumped, a None kept (it removes
    the key)."""
    if patch is None:
        return None
    return {
        key: None if value is None else value.model_dump(**dump) for key, value in patch.items()
    }


def _merge(stored: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    """JSON merge-patch one level deep: a key set to None is removed; None removes everything."""
    if patch is None:
        return {}
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _check_draft_provider(row: SellerSettings) -> None:
    if row.draft_provider != "openai_compat":
        return
    missing = [
        {
            "loc": ["body", name],
            "msg": "required when draft_provider is openai_compat",
            "type": "missing",
        }
        for name in ("draft_base_url", "draft_model")
        if not getattr(row, name)
    ]
    if missing:
        raise SettingsInvalid(
            "openai_compat drafts need draft_base_url and draft_model", details=missing
        )


# --- using an account's token (sync, dispatch) ------------------------------------------------


@dataclass(frozen=True)
class MarketplaceAccess:
    """What a marketplace call for a seller needs: the account's token and our limiter's
    overrides (category → limit) from the seller's settings."""

    seller_id: int
    marketplace: str
    token: str
    limits: dict[str, Limit]


async def marketplace_access(
    session: AsyncSession, box: SecretBox, seller_id: int, marketplace: str
) -> MarketplaceAccess:
    """Raises NoAccount without an active account, AccountPaused while its token waits for
    re-authorisation (nothing is sent with it until it is rotated or a check succeeds)."""
    if not registry.supports(marketplace):
        raise NoAccount(f"{marketplace} accounts cannot be used yet: there is no connector")
    title = registry.get(marketplace).title
    account = await repository.get_account_for_marketplace(
        session, seller_id=seller_id, marketplace=marketplace
    )
    if account is None or not account.is_active:
        raise NoAccount(f"no active {title} account is connected")
    if account.needs_reauth:
        raise AccountPaused(
            f"paused: the {title} account needs re-authorisation ({account.status_reason})"
        )
    prefs = await find_settings(session, seller_id)
    limits = {
        category: Limit(rate=float(v["rate"]), burst=int(v["burst"]))
        for category, v in (prefs.rate_limits if prefs else {}).items()
        if isinstance(v, dict) and "rate" in v and "burst" in v
    }
    return MarketplaceAccess(seller_id, marketplace, box.decrypt(account.token_encrypted), limits)


def connect(
    access: MarketplaceAccess,
    *,
    redis: Redis,
    env: Environment,
    retry: RetryPolicy | None = None,
) -> Marketplace:
    """A client of the account's marketplace with its token, under the shared rate limiter
    and the seller's own limit overrides."""
    return registry.get(access.marketplace).connect(
        access.token,
        seller_id=access.seller_id,
        limiter=RateLimiter(redis),
        env=env,
        limits=access.limits,
        retry=retry,
    )


def refusal_reason(exc: AuthError, during: str) -> str:
    """Why an account needs re-authorisation, safe to store and show: the HTTP status only,
    never the marketplace's text (it may quote parts of the token)."""
    status = f"HTTP {exc.status_code}" if exc.status_code else "an authorisation error"
    return f"the marketplace refused the token ({status}) during {during}"
