"""Errors of the auth domain."""

from app.core.errors import AppError
from app.core.transient import RETRY_AFTER_SECONDS, Reason


class ApiTokenCannotMint(AppError):
    """An API token tried to create an API token: only a password login's session token may.
    Nothing was stored."""

    status_code = 403
    code = "api_token_cannot_mint"


class LoginThrottled(AppError):
    """Too many failed logins for this e-mail or from this client address within the window.
    The password was not checked; `Retry-After` and `details.retry_after_seconds` say when the
    window ends."""

    status_code = 429
    code = "login_throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed login attempts; try again later",
            details={"retry_after_seconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )


class LoginUnavailable(AppError):
    """The failed-login counters (Redis) cannot be reached: login is refused rather than
    allowing unlimited guesses. The password was not checked."""

    status_code = 503
    code = "login_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "login is temporarily unavailable; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS[Reason.REDIS])},
        )
