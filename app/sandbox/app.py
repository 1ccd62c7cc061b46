"""The sandbox ASGI app: feedbacks-api and buyer-chat-api on one host, plus /_sandbox admin."""

from fastapi import FastAPI, Request
from starlette.responses import Response

from app.sandbox import errors, persist, routes_admin, routes_chat, routes_feedbacks
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
    """With `config.state_file`, the state it holds is loaded first (StateFileError when it
    cannot be read) and written after every change."""
    config = config or SandboxConfig()
    sandbox = Sandbox(config)
    if config.state_file is not None:
        persist.load(sandbox, config.state_file)
    app = FastAPI(
        title="Wildberries sandbox",
        version="0.1.0",
        summary="WB feedbacks-api and buyer-chat-api with generated data; admin under /_sandbox.",
    )
    app.state.sandbox = sandbox
    app.add_middleware(MarketplaceGate, sandbox=sandbox)
    if config.state_file is not None:  # outermost: it sees the gate's own answers too
        app.add_middleware(persist.SaveState, sandbox=sandbox, path=config.state_file)
    app.add_exception_handler(errors.FeedbacksError, _feedbacks_error)
    app.add_exception_handler(errors.BadBody, _bad_body)
    app.add_exception_handler(errors.ChatError, _chat_error)
    app.add_api_route("/ping", ping, methods=["GET"], tags=["common"])
    app.include_router(routes_feedbacks.router)
    app.include_router(routes_chat.router)
    app.include_router(routes_admin.router)
    return app
