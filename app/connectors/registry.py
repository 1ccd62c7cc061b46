"""Connectors by marketplace name. Sync, dispatch and the sellers' token checks find theirs here
by the account's `marketplace`; none of them imports a connector's package.

Adding a marketplace: a package `app/connectors/<name>/` exposing a `Connector`, and one line in
`_CONNECTORS`.
"""

from app.connectors import wildberries
from app.connectors.base import Connector
from app.core.ratelimit import Limit

_CONNECTORS: dict[str, Connector] = {
    "wildberries": wildberries.CONNECTOR,
}

# The marketplace a seller's syncs run against today (one per seller: runs, locks and cursors
# are per seller and channel).
DEFAULT_MARKETPLACE = "wildberries"


class UnknownMarketplace(LookupError):
    """No connector for this marketplace (its accounts can be stored, not used)."""


def names() -> tuple[str, ...]:
    """The marketplaces we have a connector for (whose tokens we can check and use)."""
    return tuple(_CONNECTORS)


def get(marketplace: str) -> Connector:
    try:
        return _CONNECTORS[marketplace]
    except KeyError:
        raise UnknownMarketplace(f"no connector for {marketplace!r}") from None


def default_limits() -> dict[str, Limit]:
    """Every connector's limiter buckets by API group (the categories a seller may override)."""
    limits: dict[str, Limit] = {}
    for connector in _CONNECTORS.values():
        limits.update(connector.default_limits)
    return limits


def supports(marketplace: str) -> bool:
    return marketplace in _CONNECTORS
