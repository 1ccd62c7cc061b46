"""Errors of the auth domain."""

from app.core.errors import AppError


class ApiTokenCannotMint(AppError):
    """An API token tried to create an API token: only a password login's session token may.
    Nothing was stored."""

    status_code = 403
    code = "api_token_cannot_mint"
