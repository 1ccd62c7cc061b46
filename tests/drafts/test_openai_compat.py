"""The OpenAI-compatible provider against a real HTTP server on 127.0.0.1 (uvicorn in a thread).

The fake server's behaviour is chosen by the first path segment of the base URL
(`http://127.0.0.1:<port>/<scenario>/v1`), and every request it receives is recorded.
"""

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.core.egress import EgressPolicy, Purpose, parse_origin
from app.drafts.providers import DraftRequest, DraftResult, PreviousReply, provider_for
from app.drafts.providers.offline import OfflineProvider
from app.drafts.providers.openai_compat import (
    MisconfiguredProvider,
    OpenAICompatProvider,
    build_messages,
)

KEY = "sk-test-4f9c2e7d1b"
MODEL = "test-model-7b"
REPLY = (
    "Здравствуйте, Анна! Жаль, что размер не подошёл. Модель маломерит, берите на размер больше."
)


@dataclass
class Recorded:
    scenario: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLM:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)

    def base_url(self, scenario: str) -> str:
        return f"{self.url}/{scenario}/v1"

    def last(self, scenario: str) -> Recorded:
        return [r for r in self.requests if r.scenario == scenario][-1]


def _completion(content: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }


def _app(fake: FakeLLM) -> Starlette:
    async def completions(request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = await request.json()
        fake.requests.append(Recorded(scenario, dict(request.headers), body))
        if scenario == "ok":
            return JSONResponse(_completion(f"\n  {REPLY}  \n"))
        if scenario == "error500":
            # Real servers echo part of a bad key in errors; it must not reach our reason.
            detail = {"error": {"message": f"Incorrect API key provided: {KEY[:6]}***"}}
            return JSONResponse(detail, status_code=500)
        if scenario == "unauthorized":
            return JSONResponse({"error": {"message": "invalid key"}}, status_code=401)
        if scenario == "slow":
            await asyncio.sleep(1.0)
            return JSONResponse(_completion(REPLY))
        if scenario == "malformed":
            return Response('{"choices": [', media_type="application/json")
        if scenario == "empty":
            return JSONResponse(_completion("   \n "))
        if scenario == "no_choices":
            return JSONResponse({"choices": []})
        if scenario == "null_content":
            return JSONResponse(_completion(None))
        if scenario == "think":
            return JSONResponse(_completion(f"<think>размышления модели</think>\n«{REPLY}»"))
        if scenario == "long":
            return JSONResponse(_completion("Это одно предложение ответа. " * 80))
        return JSONResponse({"error": "unknown scenario"}, status_code=404)

    return Starlette(
        routes=[Route("/{scenario}/v1/chat/completions", completions, methods=["POST"])]
    )


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    fake.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        _app(fake), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "fake LLM server failed to start"
        assert time.monotonic() < deadline, "fake LLM server did not start in time"
        time.sleep(0.01)
    yield fake
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def allowing(*urls: str) -> EgressPolicy:
    """The policy of a deployment that puts these local servers on the draft allow-list."""
    origins = frozenset(parse_origin(str(httpx.URL(url).copy_with(path="/"))) for url in urls)
    return EgressPolicy(https_only=False, allow={Purpose.DRAFT_PROVIDER: origins})


NOWHERE = EgressPolicy(https_only=False)  # an empty allow-list: only public addresses


def draft_request(channel: str = "review") -> DraftRequest:
    return DraftRequest(
        channel=channel,  # type: ignore[arg-type]
        text="Маломерят, жмут в носке",
        pros="Лёгкие",
        cons="Размер",
        rating=2,
        intent="sizing_fit",
        customer_name="Анна К.",
        product_name="Кроссовки беговые Lumi Run",
        previous_replies=[
            PreviousReply(
                31, "review", "Модель немного маломерит, берите на полразмера больше.", 4
            ),
            PreviousReply(
                32, "question", "Подошва из вспененного EVA. С уважением, команда Lumi", None
            ),
        ],
        top_intents=[("sizing_fit", 14), ("defect_quality", 3)],
    )


def assert_no_key(result: DraftResult) -> None:
    assert KEY not in repr(result)
    assert KEY[:6] not in (result.fallback_reason or "")


async def test_success_returns_the_servers_text_with_grounding_sources(fake_llm: FakeLLM) -> None:
    provider = OpenAICompatProvider(
        fake_llm.base_url("ok"), MODEL, KEY, allowing(fake_llm.url), timeout=5
    )
    result = await provider.draft(draft_request())

    assert result.text == REPLY
    assert result.provider == "openai_compat"
    assert result.model == MODEL
    assert result.fallback_reason is None
    assert result.sources == [
        {"kind": "previous_reply", "interaction_id": 31, "channel": "review", "use": "prompt"},
        {"kind": "previous_reply", "interaction_id": 32, "channel": "question", "use": "prompt"},
        {"kind": "top_intents", "intent": "sizing_fit", "count": 14, "use": "prompt"},
        {"kind": "top_intents", "intent": "defect_quality", "count": 3, "use": "prompt"},
    ]
    assert_no_key(result)

    sent = fake_llm.last("ok")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.body["model"] == MODEL
    system, user = sent.body["messages"]
    assert system["role"] == "system"
    assert user["role"] == "user"
    # The channel's publicity rules and the grounding are in the system prompt …
    assert "публичный ответ на отзыв" in system["content"]
    assert "ботом, ИИ" in system["content"]  # the rule never to mention AI
    assert "Не указывай контакты и ссылки" in system["content"]  # the marketplace's own rules
    assert "Модель немного маломерит, берите на полразмера больше." in system["content"]
    assert "С уважением, команда Lumi" in system["content"]
    assert "размер и посадка (14)" in system["content"]
    assert "Кроссовки беговые Lumi Run" in system["content"]
    assert "Имя покупателя: Анна;" in system["content"]  # the first name only
    assert "Анна К." not in system["content"]
    # … and the customer's own words in the user message.
    assert "оценка 2 из 5" in user["content"]
    assert "Комментарий: Маломерят, жмут в носке" in user["content"]
    assert "Достоинства: Лёгкие" in user["content"]
    assert "Недостатки: Размер" in user["content"]


async def test_no_key_no_authorization_header(fake_llm: FakeLLM) -> None:
    provider = OpenAICompatProvider(
        fake_llm.base_url("ok") + "/", MODEL, None, allowing(fake_llm.url), timeout=5
    )
    result = await provider.draft(draft_request("chat"))
    assert result.text == REPLY
    sent = fake_llm.last("ok")
    assert "authorization" not in sent.headers
    assert "личный чат" in sent.body["messages"][0]["content"]
    assert "Сообщения покупателя в чате." in sent.body["messages"][1]["content"]


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("error500", "openai_compat failed: HTTP status 500"),
        ("unauthorized", "openai_compat failed: HTTP status 401"),
        ("malformed", "openai_compat failed: malformed response"),
        ("empty", "openai_compat failed: empty reply"),
        ("no_choices", "openai_compat failed: malformed response"),
        ("null_content", "openai_compat failed: malformed response"),
        ("missing", "openai_compat failed: HTTP status 404"),
    ],
)
async def test_failures_fall_back_to_offline_with_a_reason(
    fake_llm: FakeLLM, scenario: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = draft_request()
    provider = OpenAICompatProvider(
        fake_llm.base_url(scenario), MODEL, KEY, allowing(fake_llm.url), timeout=5
    )
    with caplog.at_level(logging.WARNING, logger="app.drafts.providers.openai_compat"):
        result = await provider.draft(request)

    assert result.fallback_reason is not None
    assert result.fallback_reason.startswith(reason)
    expected = OfflineProvider().compose(request)
    assert (result.text, result.provider, result.model) == (expected.text, "offline", None)
    assert result.sources == expected.sources
    assert_no_key(result)
    assert reason in caplog.text
    assert KEY not in caplog.text
    assert fake_llm.last(scenario).headers["authorization"] == f"Bearer {KEY}"


async def test_slow_server_times_out_and_falls_back(fake_llm: FakeLLM) -> None:
    provider = OpenAICompatProvider(
        fake_llm.base_url("slow"), MODEL, KEY, allowing(fake_llm.url), timeout=0.2
    )
    started = time.monotonic()
    result = await provider.draft(draft_request())
    elapsed = time.monotonic() - started

    assert result.fallback_reason == "openai_compat failed: timeout"
    assert result.provider == "offline"
    assert result.text == OfflineProvider().compose(draft_request()).text
    assert elapsed < 0.9  # the server answers after 1 s
    assert_no_key(result)


async def test_connection_refused_falls_back() -> None:
    url = f"http://127.0.0.1:{unused_port()}/v1"
    provider = OpenAICompatProvider(url, MODEL, KEY, allowing(url), timeout=2)
    result = await provider.draft(draft_request())
    assert result.fallback_reason == "openai_compat failed: connection failed"
    assert result.provider == "offline"
    assert_no_key(result)


async def test_invalid_base_url_falls_back_instead_of_raising() -> None:
    provider = OpenAICompatProvider("ftp://nowhere/v1", MODEL, KEY, NOWHERE)
    result = await provider.draft(draft_request())
    assert result.fallback_reason == "openai_compat failed: refused by policy"
    assert result.provider == "offline"


async def test_reasoning_block_and_wrapping_quotes_are_stripped(fake_llm: FakeLLM) -> None:
    provider = OpenAICompatProvider(
        fake_llm.base_url("think"), MODEL, KEY, allowing(fake_llm.url), timeout=5
    )
    result = await provider.draft(draft_request())
    assert result.text == REPLY
    assert result.fallback_reason is None


async def test_overlong_chat_reply_is_cut_at_a_sentence(fake_llm: FakeLLM) -> None:
    provider = OpenAICompatProvider(
        fake_llm.base_url("long"), MODEL, KEY, allowing(fake_llm.url), timeout=5
    )
    result = await provider.draft(draft_request("chat"))
    assert result.provider == "openai_compat"
    assert len(result.text) <= 1000
    assert result.text.endswith("ответа.")


async def test_custom_fallback_provider_is_used() -> None:
    class Canned:
        name = "canned"

        async def draft(self, request: DraftRequest) -> DraftResult:
            return DraftResult("Запасной ответ.", self.name, None, [], None)

    url = f"http://127.0.0.1:{unused_port()}/v1"
    provider = OpenAICompatProvider(url, MODEL, KEY, allowing(url), fallback=Canned())
    result = await provider.draft(draft_request())
    assert (result.text, result.provider) == ("Запасной ответ.", "canned")
    assert result.fallback_reason == "openai_compat failed: connection failed"


async def test_an_injected_transport_is_used_and_left_open() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_completion("Ответ через транспорт."))

    transport = httpx.MockTransport(handler)
    policy = allowing("http://llm.test")
    provider = OpenAICompatProvider("http://llm.test/v1", MODEL, None, policy, transport=transport)
    first = await provider.draft(draft_request())
    second = await provider.draft(draft_request())
    assert first.text == second.text == "Ответ через транспорт."
    assert [str(r.url) for r in seen] == ["http://llm.test/v1/chat/completions"] * 2


def test_prompt_without_grounding_has_no_sources() -> None:
    bare = DraftRequest(
        "question", "Есть ли 42 размер?", None, None, None, None, None, None, [], []
    )
    messages, sources = build_messages(bare)
    assert sources == []
    assert "публичный ответ на вопрос" in messages[0]["content"]
    assert "Имя покупателя неизвестно" in messages[0]["content"]
    assert messages[1]["content"] == "Вопрос покупателя о товаре.\nТекст: Есть ли 42 размер?"


def test_repr_hides_the_key() -> None:
    provider = OpenAICompatProvider("http://llm.test/v1", MODEL, KEY, NOWHERE)
    assert KEY not in repr(provider)
    assert "key=set" in repr(provider)


# --- provider_for -----------------------------------------------------------------------------


def test_provider_for_offline() -> None:
    provider = provider_for("offline", model=None, base_url=None, api_key=None, policy=NOWHERE)
    assert isinstance(provider, OfflineProvider)


def test_provider_for_openai_compat() -> None:
    provider = provider_for(
        "openai_compat",
        model=MODEL,
        base_url="http://llm.test/v1",
        api_key=KEY,
        timeout=3,
        policy=NOWHERE,
    )
    assert isinstance(provider, OpenAICompatProvider)
    assert (provider.base_url, provider.model, provider.timeout) == (
        "http://llm.test/v1",
        MODEL,
        3,
    )


@pytest.mark.parametrize(
    ("model", "base_url", "reason"),
    [
        (MODEL, None, "openai_compat not configured: no base URL"),
        (None, "http://llm.test/v1", "openai_compat not configured: no model"),
        (None, "", "openai_compat not configured: no base URL and no model"),
    ],
)
async def test_provider_for_incomplete_openai_compat_falls_back(
    model: str | None, base_url: str | None, reason: str
) -> None:
    provider = provider_for(
        "openai_compat", model=model, base_url=base_url, api_key=KEY, policy=NOWHERE
    )
    assert isinstance(provider, MisconfiguredProvider)
    result = await provider.draft(draft_request())
    assert result.provider == "offline"
    assert result.fallback_reason == reason


def test_provider_for_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown draft provider"):
        provider_for("magic", model=None, base_url=None, api_key=None, policy=NOWHERE)
