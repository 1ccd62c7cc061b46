"""Errors of the sellers domain. None of them ever carries a marketplace token."""

from app.connectors.base import ConnectorError
from app.core.errors import AppError, ValidationFailed


class NoAccount(ConnectorError):
    """A marketplace call for a seller without an active account on that marketplace."""


class AccountPaused(ConnectorError):
    """The account needs re-authorisation: nothing is sent with its token until it is rotated or
    a check succeeds."""


class MarketplaceTokenRejected(AppError):
    """The marketplace answered 401/403 to the token: it is wrong, expired or lacks the
    category. Nothing was stored."""

    status_code = 422
    code = "marketplace_token_rejected"


class MarketplaceUnreachable(AppError):
    """The token could not be checked (network error, timeout, 5xx, an unexpected answer).
    Nothing was stored; trying again later may work."""

    status_code = 502
    code = "marketplace_unreachable"


class MarketplaceRateLimited(AppError):
    """The marketplace's /ping limit (3 per 30 s) is used up; `details.retry_after_seconds`."""

    status_code = 503
    code = "marketplace_rate_limited"


class NoMarketplaceAccount(AppError):
    """The seller has no active account on the marketplace the request needs."""

    status_code = 409
    code = "no_marketplace_account"


class AccountNeedsReauth(AppError):
    """The marketplace refused the account's token when it was last used or checked: syncs and
    reply sends are paused (`details`: account_id, marketplace, reason, since). Rotating the
    token, or a check that succeeds, resumes them."""

    status_code = 409
    code = "needs_reauth"


class MarketplaceNotSupported(AppError):
    """We cannot check (or use) tokens of this marketplace yet."""

    status_code = 422
    code = "marketplace_not_supported"


class DraftUrlRefused(AppError):
    """`draft_base_url` is refused by the outbound request policy (app/core/egress.py): not
    https in production, or its host is not public addresses only. Nothing was stored; the
    error never names an address."""

    status_code = 422
    code = "refused_by_policy"


class SettingsInvalid(ValidationFailed):
    """The settings a PATCH would leave are inconsistent (e.g. openai_compat without a model).

    Same details shape as a payload validation error."""
