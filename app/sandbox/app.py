"""The sandbox ASGI app: feedbacks-api and buyer-chat-api on one host, plus /_sandbox admin."""

from fastapi import FastAPI, Request
from starlette.responses import Response

from app.sandbox import errors, routes_admin, routes_chat, routes_feedbacks
from app.sandbox.clock import msk
from app.sandbox.config import SandboxConfig
from app.sandbox.gate import NOW, REQUEST_ID, MarketplaceGate
from app.sandbox.state import Sandbox


def _request_id(request: Request) -> str:
    request_id: str | None = request.scope.get(REQUEST_ID)
    return request_id or errors.new_request_id()


async def _feedbacks_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.FeedbacksError)
    return errors.feedbacks_error(exc, _request_id(request))


async def _bad_body(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.BadBody)
    return errors.bad_body(exc, _request_id(request))


async def _chat_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ChatError)
    return errors.chat_error(exc, _request_id(request))


async def ping(request: Request) -> Response:
    """Checks the token, as WB's /ping does on every host."""
    return errors.respond({"TS": msk(request.scope[NOW]), "Status": "OK"})


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    sandbox = Sandbox(config or SandboxConfig())
    app = FastAPI(
        title="Wildberries sandbox",
        version="0.1.0",
        summary="WB feedbacks-api and buyer-chat-api with generated data; admin under /_sandbox.",
    )
    app.state.sandbox = sandbox
    app.add_middleware(MarketplaceGate, sandbox=sandbox)
    app.add_exception_handler(errors.FeedbacksError, _feedbacks_error)
    app.add_exception_handler(errors.BadBody, _bad_body)
    app.add_exception_handler(errors.ChatError, _chat_error)
    app.add_api_route("/ping", ping, methods=["GET"], tags=["common"])
    app.include_router(routes_feedbacks.router)
    app.include_router(routes_chat.router)
    app.include_router(routes_admin.router)
    return app
