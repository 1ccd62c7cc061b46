"""Connectors by marketplace name. Sync, dispatch and the sellers' token checks find theirs here
by the account's `marketplace`; none of them imports a connector's package.

Adding a marketplace: a package `app/connectors/<name>/` exposing a `Connector`, and one line in
`_CONNECTORS`. The marketplace names and item sources the database and the API accept
(`MARKETPLACES`, `SOURCES`) follow from the connectors registered here.
"""

from typing import TYPE_CHECKING, Literal

from app.connectors import wildberries
from app.connectors.base import Connector
from app.core.config import Settings
from app.core.ratelimit import Limit

_CONNECTORS: dict[str, Connector] = {
    connector.name: connector
    for connector in (
        wildberries.CONNECTOR,
    )
}  # fmt: skip

# The marketplace a seller's syncs run against today (one per seller: runs, locks and cursors
# are per seller and channel): the first registered.
DEFAULT_MARKETPLACE = next(iter(_CONNECTORS))

# Marketplaces whose accounts and interactions can be stored before a connector reads them,
# with the `source` their items would carry.
_WITHOUT_CONNECTOR = {"ozon": "ozon_api"}
# Items we made ourselves: the demo inbox, and a fallback.
_OUR_SOURCES = ("demo", "fallback")

# The `marketplace` values of accounts and interactions, and the `source` values of
# interactions: the tables' CHECK constraints and the API's enums (their order is theirs).
MARKETPLACES: tuple[str, ...] = (*_CONNECTORS, *_WITHOUT_CONNECTOR)
SOURCES: tuple[str, ...] = (
    *(connector.source for connector in _CONNECTORS.values()),
    *_WITHOUT_CONNECTOR.values(),
    *_OUR_SOURCES,
)

# The same values as types of request and response fields (their OpenAPI enums). Built from
# the tuples at run time, so the type checker sees plain strings.
if TYPE_CHECKING:
    MarketplaceName = str
    SourceName = str
else:
    MarketplaceName = Literal[MARKETPLACES]
    SourceName = Literal[SOURCES]


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


def check_settings(settings: Settings) -> None:
    """Refuse at startup what `Settings` cannot check alone, since core knows no connector: a
    draft provider allow-list naming a marketplace endpoint (`Connector.endpoints`). Raises
    ValueError with the message `Settings` gives for its own services."""
    settings.check_draft_list(
        (url, f"the marketplace endpoint {variable}")
        for connector in _CONNECTORS.values()
        for variable, url in connector.endpoints().items()
    )
