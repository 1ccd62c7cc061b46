"""Which exceptions mean "not now" rather than "a bug": the request middlewares answer them with
503 `service_unavailable` (and retry a lock conflict first), everything else stays a 500.

- Lock conflicts: a deadlock (40P01) or serialization failure (40001) rolled the transaction
  back; the same request succeeds when sent again (app/core/retry.py replays it).
- The database unavailable: connection-level errors (SQLAlchemy marks them `OperationalError`,
  `InterfaceError`, an invalidated connection, or a pool `TimeoutError`), SQLSTATE classes 08
  (connection), 53 (insufficient resources), 57P (shutdown, starting up) and the server's own
  statement or lock timeout. asyncpg's connect errors and its client-side command timeout reach
  us raw, as `OSError`/`TimeoutError` (`TimeoutError` is one): where they were raised tells
  whose they are.
- Redis unavailable: redis-py's `ConnectionError` and `TimeoutError`.
"""

from collections.abc import Iterator
from enum import StrEnum

from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors

from app.core.errors import ServiceUnavailable

DEADLOCK = "40P01"
SERIALIZATION_FAILURE = "40001"
LOCK_CONFLICTS = frozenset({DEADLOCK, SERIALIZATION_FAILURE})
# query_canceled (statement_timeout) and lock_not_available (lock_timeout): the server is too
# busy to answer in time, not a malformed request.
_BUSY = frozenset({"57014", "55P03"})
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
# Errors of the file system are bugs or deployment faults, not a service that comes back.
_LOCAL_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


class Reason(StrEnum):
    CONTENTION = "contention"
    DATABASE = "database"
    REDIS = "redis"
    NETWORK = "network"
    DEADLINE = "deadline"


RETRY_AFTER_SECONDS = {
    Reason.CONTENTION: 1,
    Reason.DATABASE: 5,
    Reason.REDIS: 5,
    Reason.NETWORK: 5,
    Reason.DEADLINE: 5,
}
_MESSAGES = {
    Reason.CONTENTION: "the request kept meeting concurrent changes to the same items",
    Reason.DATABASE: "the database is unavailable",
    Reason.REDIS: "Redis is unavailable",
    Reason.NETWORK: "a service the API depends on is unreachable",
}


def unavailable(reason: Reason, message: str | None = None) -> ServiceUnavailable:
    text = message or f"{_MESSAGES[reason]}; try again shortly"
    return ServiceUnavailable(text, reason=reason.value, retry_after=RETRY_AFTER_SECONDS[reason])


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the ones it was raised from, and the members of exception groups."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)
        if current.__cause__ is not None:
            todo.append(current.__cause__)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error: SQLAlchemy's (through its driver error) or asyncpg's."""
    for candidate in (getattr(exc, "orig", None), exc):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return None


def is_lock_conflict(exc: BaseException) -> bool:
    return any(sqlstate(e) in LOCK_CONFLICTS for e in _chain(exc))


def classify(exc: BaseException) -> Reason | None:
    """Why the request cannot be served now, or None when `exc` is a bug (a 500)."""
    for e in _chain(exc):
        reason = _reason(e)
        if reason is not None:
            return reason
    return None


def _reason(exc: BaseException) -> Reason | None:
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return Reason.REDIS
    state = sqlstate(exc)
    if state in LOCK_CONFLICTS:
        return Reason.CONTENTION
    if state is not None and (state in _BUSY or state.startswith(_UNAVAILABLE_CLASSES)):
        return Reason.DATABASE
    if isinstance(exc, sa_errors.TimeoutError | sa_errors.OperationalError):
        return Reason.DATABASE
    if isinstance(exc, sa_errors.DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, sa_errors.InterfaceError)
    ):
        return Reason.DATABASE
    if isinstance(exc, OSError) and not isinstance(exc, _LOCAL_OS_ERRORS):
        return _raised_by(exc)
    return None


def _raised_by(exc: BaseException) -> Reason:
    """Whose connect or read failed or timed out on the wire (asyncpg raises these raw): the
    driver's code where it was raised tells."""
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.startswith(("asyncpg", "sqlalchemy")):
            return Reason.DATABASE
        if module.startswith(("redis", "kombu")):
            return Reason.REDIS
        tb = tb.tb_next
    return Reason.NETWORK
