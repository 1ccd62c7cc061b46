"""What every marketplace connector raises. Callers branch on these, never on HTTP details."""


class ConnectorError(Exception):
    """A marketplace call failed."""


class AuthError(ConnectorError):
    """The token is wrong, expired or lacks the category (401/403). Retrying will not help."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class BadRequest(ConnectorError):
    """The marketplace refused the request itself (400/404/422). Retrying will not help."""


class PolicyRefused(ConnectorError):
    """Our outbound request policy refused the marketplace's address (app/core/egress.py):
    nothing was sent. A configuration error; retrying will not help until it is fixed."""


class TransientError(ConnectorError):
    """5xx, timeouts, 429s or maintenance that outlasted our bounded retries."""


class MaybeDelivered(TransientError):
    """A write failed after it was sent (a timeout, a dropped connection, a 5xx): the marketplace
    may have applied it. Check before sending it again."""
