"""Required parameters, caps and the feedbacks-api error envelopes (wb-api.md §1 and §4)."""

import re
from typing import Any

import pytest
from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller


def assert_feedbacks_error(response: Any, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "error", "errorText", "additionalErrors", "requestId"}
    assert body["data"] is None
    assert body["error"] is True
    assert body["errorText"] == text
    assert body["additionalErrors"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", body["requestId"])


@pytest.mark.parametrize("path", ["/api/v1/feedbacks", "/api/v1/questions"])
@pytest.mark.parametrize(
    ("query", "text"),
    [
        ({"take": 10, "skip": 0}, "Плохой формат isAnswered"),
        ({"isAnswered": "yes", "take": 10, "skip": 0}, "Плохой формат isAnswered"),
        ({"isAnswered": "true", "skip": 0}, "Плохой формат take"),
        ({"isAnswered": "true", "take": "ten", "skip": 0}, "Плохой формат take"),
        ({"isAnswered": "true", "take": 0, "skip": 0}, "Плохой формат take"),
        ({"isAnswered": "true", "take": 10}, "Плохой формат skip"),
        ({"isAnswered": "true", "take": 10, "skip": -1}, "Плохой формат skip"),
        ({"isAnswered": "true", "take": 1, "skip": 0, "dateFrom": "x"}, "Плохой формат dateFrom"),
        ({"isAnswered": "true", "take": 1, "skip": 0, "dateTo": "1.5"}, "Плохой формат dateTo"),
        ({"isAnswered": "true", "take": 1, "skip": 0, "nmId": "abc"}, "Плохой формат nmId"),
        ({"isAnswered": "true", "take": 1, "skip": 0, "order": "newest"}, "Плохой формат order"),
    ],
)
async def test_missing_or_invalid_list_params_are_400(
    wb: AsyncClient, make_seller: MakeSeller, path: str, query: dict[str, Any], text: str
) -> None:
    seller = await make_seller()

    response = await wb.get(path, params=query, headers=seller["headers"])

    assert_feedbacks_error(response, 400, text)


@pytest.mark.parametrize(
    ("path", "query", "text"),
    [
        ("/api/v1/feedbacks", {"take": 5001, "skip": 0}, "Значение take не может быть больше 5000"),
        (
            "/api/v1/feedbacks",
            {"take": 1, "skip": 199_991},
            "Значение skip не может быть больше 199990",
        ),
        (
            "/api/v1/feedbacks/archive",
            {"take": 5001, "skip": 0},
            "Значение take не может быть больше 5000",
        ),
        (
            "/api/v1/questions",
            {"take": 10_001, "skip": 0},
            "Значение take не может быть больше 10000",
        ),
        (
            "/api/v1/questions",
            {"take": 1, "skip": 10_001},
            "Значение skip не может быть больше 10000",
        ),
        (
            "/api/v1/questions",
            {"take": 5001, "skip": 5000},
            "Сумма take и skip не может быть больше 10000",
        ),
    ],
)
async def test_caps_are_enforced(
    wb: AsyncClient, make_seller: MakeSeller, path: str, query: dict[str, Any], text: str
) -> None:
    seller = await make_seller()

    response = await wb.get(
        path, params={"isAnswered": "false", **query}, headers=seller["headers"]
    )

    assert_feedbacks_error(response, 400, text)


@pytest.mark.parametrize(
    ("path", "query", "key"),
    [
        ("/api/v1/feedbacks", {"take": 5000, "skip": 199_990}, "feedbacks"),
        ("/api/v1/questions", {"take": 5000, "skip": 5000}, "questions"),
        ("/api/v1/questions", {"take": 10_000, "skip": 0}, "questions"),
    ],
)
async def test_values_at_the_caps_are_accepted(
    wb: AsyncClient, make_seller: MakeSeller, path: str, query: dict[str, Any], key: str
) -> None:
    seller = await make_seller()

    response = await wb.get(
        path, params={"isAnswered": "false", **query}, headers=seller["headers"]
    )

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "error", "errorText", "additionalErrors"}
    assert (body["error"], body["errorText"], body["additionalErrors"]) == (False, "", None)
    assert set(body["data"]) == {"countUnanswered", "countArchive", key}


async def test_is_answered_takes_go_booleans(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller()
    pages = []
    for flag in ("true", "1", "True", "false", "0", "F"):
        query = {"isAnswered": flag, "take": 5, "skip": 0}
        response = await wb.get("/api/v1/feedbacks", params=query, headers=seller["headers"])
        pages.append([item["id"] for item in response.json()["data"]["feedbacks"]])

    assert pages[0] == pages[1] == pages[2]
    assert pages[3] == pages[4] == pages[5]
    assert pages[0] != pages[3]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/api/v1/feedback", "Невозможно получить отзыв по id"),
        ("/api/v1/question", "Невозможно получить вопрос по id"),
    ],
)
async def test_get_one_with_an_unknown_id_is_422(
    wb: AsyncClient, make_seller: MakeSeller, path: str, text: str
) -> None:
    seller = await make_seller()

    unknown = await wb.get(path, params={"id": "YX52RZEBhH9mrcYdEJuD"}, headers=seller["headers"])
    missing = await wb.get(path, headers=seller["headers"])

    assert_feedbacks_error(unknown, 422, text)
    assert_feedbacks_error(missing, 400, "Неправильный id в запросе")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/feedbacks/answer"),
        ("PATCH", "/api/v1/feedbacks/answer"),
        ("PATCH", "/api/v1/questions"),
    ],
)
async def test_a_body_that_is_not_json_is_the_fbapi_bad_request(
    wb: AsyncClient, make_seller: MakeSeller, method: str, path: str
) -> None:
    seller = await make_seller()
    headers = seller["headers"] | {"Content-Type": "application/json"}

    for content in (b"{not json", b"[1, 2]", b""):
        response = await wb.request(method, path, content=content, headers=headers)

        assert response.status_code == 400
        body = response.json()
        assert set(body) == {"title", "requestId", "origin", "detail"}
        assert (body["title"], body["origin"]) == ("bad request", "fbapi")
        assert body["detail"] == "failed to decode JSON request."

    text_body = seller["headers"] | {"Content-Type": "text/plain"}
    response = await wb.request(method, path, content=b'{"id": "x"}', headers=text_body)
    assert response.status_code == 400
    assert response.json()["origin"] == "fbapi"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"text": "Спасибо за отзыв"}, "Неправильный id в запросе"),
        ({"id": 5, "text": "Спасибо за отзыв"}, "Неправильный id в запросе"),
        ({"id": "abc"}, "Текст ответа должен содержать от 2 до 5000 символов"),
        ({"id": "abc", "text": "!"}, "Текст ответа должен содержать от 2 до 5000 символов"),
        ({"id": "abc", "text": "a" * 5001}, "Текст ответа должен содержать от 2 до 5000 символов"),
    ],
)
async def test_answer_body_is_validated(
    wb: AsyncClient, make_seller: MakeSeller, body: dict[str, Any], text: str
) -> None:
    seller = await make_seller()

    response = await wb.post("/api/v1/feedbacks/answer", json=body, headers=seller["headers"])

    assert_feedbacks_error(response, 400, text)
