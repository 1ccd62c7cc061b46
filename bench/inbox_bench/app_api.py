"""Everything the inbox benchmark takes from app/, in one place: when a module of app/ moves
(the card to a read model, a repository renamed), only this file follows it.

The instrumented pass (bench/inbox_bench/profiling.py) wraps the public functions of the modules
named here and sums their CPU by stage (SERVICE_MODULES & co.): these names follow app/ too.
"""

import app.models  # noqa: F401 - every table in the metadata, or foreign keys cannot resolve
from app.auth import service as auth_service
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, server_settings, transaction
from app.interactions import service as interactions_service
from app.main import create_app
from app.sellers import service as sellers_service

__all__ = [
    "AUTH_MODULES",
    "AUTH_STAGE",
    "INSTRUMENTED",
    "READ_FUNCTION",
    "READ_STAGE",
    "REPOSITORY_MODULES",
    "SERVICE_MODULES",
    "Settings",
    "auth_service",
    "create_app",
    "create_engine",
    "create_sessionmaker",
    "sellers_service",
    "server_settings",
    "transaction",
]

# Where the instrumented pass looks: every public function of these modules is wrapped (the
# module attribute, which is how the app's own callers reach it), plus FastAPI's response step.
INSTRUMENTED = (
    "app.auth.service",
    "app.auth.repository",
    "app.interactions.service",
    "app.interactions.repository",
    "app.links.service",
    "app.links.repository",
    "app.cards.service",
    "app.cards.repository",
)
# Which of them make which stage of a request (Profiled.stages): the endpoint's service (the
# costliest call among these modules' functions), auth, and the repositories (their async
# functions), with the labels the report prints for the two stages named after app/ code.
SERVICE_MODULES = ("app.interactions.service", "app.links.service", "app.cards.service")
AUTH_MODULES = ("app.auth.service",)
REPOSITORY_MODULES = ("app.interactions.repository", "app.links.repository", "app.cards.repository")
AUTH_STAGE = "auth (`app/auth/service.py` resolve_bearer)"
READ_FUNCTION = "read"  # the service function that turns one row into its API item
READ_STAGE = (
    "… of which `read()` per row "
    f"(`app/interactions/service.py:{interactions_service.read.__code__.co_firstlineno}`)"
)
