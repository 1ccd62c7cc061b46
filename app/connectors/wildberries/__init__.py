"""The Wildberries connector: `CONNECTOR`, registered in app.connectors.registry."""

from app.connectors.wildberries.connector import CONNECTOR, WildberriesConnector

__all__ = ["CONNECTOR", "WildberriesConnector"]
