"""The Wildberries connector's own settings: its API addresses, read like the app's settings
from the environment and an optional `.env` (WB_FEEDBACKS_BASE_URL, WB_BUYER_CHAT_BASE_URL,
WB_STATISTICS_BASE_URL)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "WB_"


class WildberriesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_prefix=PREFIX, extra="ignore")

    feedbacks_base_url: str = "https://feedbacks-api.wildberries.ru"
    buyer_chat_base_url: str = "https://buyer-chat-api.wildberries.ru"
    statistics_base_url: str = "https://statistics-api.wildberries.ru"

    def endpoints(self) -> dict[str, str]:
        """Each base URL by the environment variable that sets it."""
        return {f"{PREFIX}{name}".upper(): value for name, value in self.model_dump().items()}


@lru_cache
def get_settings() -> WildberriesSettings:
    return WildberriesSettings()
