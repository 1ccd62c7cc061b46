"""Generated data: deterministic, shaped like WB's objects, and consistent across methods."""

import re
from collections import Counter
from datetime import datetime
from typing import Any

from httpx import AsyncClient

from app.sandbox.app import create_sandbox_app
from tests.sandbox.conftest import (
    MakeSeller,
    all_events,
    all_items,
    client_for,
    create_seller,
    sandbox_config,
)

FEEDBACK_FIELDS = {
    "id", "text", "pros", "cons", "productValuation", "createdDate", "state", "answer",
    "productDetails", "photoLinks", "video", "wasViewed", "userName", "orderStatus",
    "matchingSize", "isAbleSupplierFeedbackValuation", "supplierFeedbackValuation",
    "isAbleSupplierProductValuation", "supplierProductValuation", "isAbleReturnProductOrders",
    "returnProductOrdersDate", "bables", "lastOrderShkId", "lastOrderCreatedAt", "color",
    "subjectId", "subjectName", "parentFeedbackId", "childFeedbackId",
}  # fmt: skip
QUESTION_FIELDS = {
    "id", "text", "createdDate", "state", "answer", "productDetails", "wasViewed", "isWarned"
}  # fmt: skip
REVIEW_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+03:00")
QUESTION_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)


async def _snapshot(spec: dict[str, Any]) -> dict[str, Any]:
    """Everything one seller's token can read, from a fresh sandbox."""
    async with client_for(create_sandbox_app(sandbox_config())) as client:
        seller = await create_seller(client, limits=False, **spec)
        headers = seller["headers"]
        return {
            "reviews": [await all_items(client, headers, "review", flag) for flag in (True, False)],
            "questions": [
                await all_items(client, headers, "question", flag) for flag in (True, False)
            ],
            "chats": (await client.get("/api/v1/seller/chats", headers=headers)).json(),
            "events": await all_events(client, headers),
            "seller": (seller["seller_id"], seller["token"]),
        }


async def test_the_same_seed_gives_the_same_items_and_another_seed_does_not() -> None:
    spec = {"name": "twin", "seed": 11, "reviews": 150, "questions": 60, "chats": 8}

    first, again, other = (
        await _snapshot(spec),
        await _snapshot(spec),
        await _snapshot(spec | {"seed": 12}),
    )

    assert first == again
    assert other["seller"] == first["seller"]  # identity follows the name, not the seed
    assert other["reviews"] != first["reviews"]
    assert other["events"] != first["events"]


async def test_reviews_have_every_feedback_field(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(reviews=400, limits=False)
    reviews = [
        r for flag in (True, False) for r in await all_items(wb, seller["headers"], "review", flag)
    ]

    assert len(reviews) == 400
    assert len({r["id"] for r in reviews}) == 400
    for review in reviews:
        assert set(review) == FEEDBACK_FIELDS
        assert re.fullmatch(r"[0-9A-Za-z]{20}", review["id"])
        assert REVIEW_DATE.fullmatch(review["createdDate"])
        assert REVIEW_DATE.fullmatch(review["lastOrderCreatedAt"])
        assert review["productValuation"] in range(1, 6)
        assert set(review["productDetails"]) == {
            "nmId", "imtId", "productName", "supplierArticle", "supplierName", "brandName", "size"
        }  # fmt: skip
        assert review["state"] in ("none", "wbRu")
        assert review["orderStatus"] in ("buyout", "rejected", "returned", "notSpecified")
        assert review["matchingSize"] in ("", "ok", "smaller", "bigger")
        assert all(isinstance(review[k], str) for k in ("text", "pros", "cons", "userName"))
        for photo in review["photoLinks"] or []:
            assert photo["fullSize"].endswith(".webp")
            assert photo["miniSize"].endswith(".webp")
        if review["answer"] is not None:
            assert set(review["answer"]) == {"text", "state", "editable"}
            assert CYRILLIC.search(review["answer"]["text"])
    texts = [r["text"] for r in reviews if r["text"]]
    assert len(texts) > 300
    assert all(CYRILLIC.search(t) for t in texts)
    assert any(r["photoLinks"] for r in reviews)


async def test_questions_have_every_question_field(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(questions=300, limits=False)
    answered = await all_items(wb, seller["headers"], "question", True)
    waiting = await all_items(wb, seller["headers"], "question", False)

    assert len(answered) + len(waiting) == 300
    for question in answered + waiting:
        assert set(question) == QUESTION_FIELDS
        assert QUESTION_DATE.fullmatch(question["createdDate"])
        assert set(question["productDetails"]) == {
            "nmId", "imtId", "productName", "supplierArticle", "supplierName", "brandName"
        }  # fmt: skip
        assert CYRILLIC.search(question["text"])
    for question in answered:
        assert question["state"] == "wbRu"
        assert set(question["answer"]) == {"text", "editable", "createDate"}
        assert QUESTION_DATE.fullmatch(question["answer"]["createDate"])
    assert all(q["state"] == "suppliersPortalSynch" and q["answer"] is None for q in waiting)


async def test_ratings_and_answered_shares_look_like_a_real_shop(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(reviews=20_000, questions=4000, limits=False)
    summary = (await wb.get(f"/_sandbox/sellers/{seller['seller_id']}")).json()["counts"]
    reviews = [
        r for flag in (True, False) for r in await all_items(wb, seller["headers"], "review", flag)
    ]
    shares = Counter(r["productValuation"] for r in reviews)

    expected = {5: 0.60, 4: 0.15, 3: 0.08, 2: 0.06, 1: 0.11}
    for stars, share in expected.items():
        assert abs(shares[stars] / 20_000 - share) < 0.02, (stars, shares)
    assert 0.35 < summary["review"]["answered"] / 20_000 < 0.42
    assert 0.45 < summary["question"]["answered"] / 4000 < 0.53
    low = [r for r in reviews if r["productValuation"] <= 2 and r["text"]]
    assert all(r["text"] != "" for r in low)
    assert len({r["productDetails"]["nmId"] for r in reviews}) >= 50


async def test_lists_are_ordered_and_date_windows_are_inclusive(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(reviews=600, limits=False)
    headers = seller["headers"]
    newest_first = await all_items(wb, headers, "review", False)
    oldest_first = await all_items(wb, headers, "review", False, order="dateAsc")

    def ts(item: dict[str, Any]) -> int:
        return int(datetime.fromisoformat(item["createdDate"]).timestamp())

    assert [ts(r) for r in newest_first] == sorted((ts(r) for r in newest_first), reverse=True)
    assert oldest_first == list(reversed(newest_first))

    date_from, date_to = ts(oldest_first[100]), ts(oldest_first[199])
    window = await all_items(wb, headers, "review", False, dateFrom=date_from, dateTo=date_to)
    expected = [r for r in newest_first if date_from <= ts(r) <= date_to]
    assert window == expected
    assert len(window) >= 100
    count = await wb.get(
        "/api/v1/feedbacks/count",
        params={"isAnswered": "false", "dateFrom": date_from, "dateTo": date_to},
        headers=headers,
    )
    assert count.json()["data"] == len(expected)


async def test_paging_with_skip_matches_one_big_page(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(questions=500, limits=False)
    query = {"isAnswered": "false", "order": "dateAsc"}
    whole = await wb.get(
        "/api/v1/questions", params=query | {"take": 1000, "skip": 0}, headers=seller["headers"]
    )
    pages = []
    for skip in range(0, 300, 37):
        page = await wb.get(
            "/api/v1/questions",
            params=query | {"take": 37, "skip": skip},
            headers=seller["headers"],
        )
        pages += page.json()["data"]["questions"]

    assert pages == whole.json()["data"]["questions"][: len(pages)]


async def test_counts_agree_with_the_lists(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(reviews=700, questions=250, limits=False)
    headers = seller["headers"]

    for channel, base in (("review", "/api/v1/feedbacks"), ("question", "/api/v1/questions")):
        answered = await all_items(wb, headers, channel, True)
        waiting = await all_items(wb, headers, channel, False)
        count_true = (await wb.get(f"{base}/count", headers=headers)).json()["data"]  # default true
        count_false = (
            await wb.get(f"{base}/count", params={"isAnswered": "false"}, headers=headers)
        ).json()["data"]
        unanswered = (await wb.get(f"{base}/count-unanswered", headers=headers)).json()["data"]
        key = "feedbacks" if channel == "review" else "questions"
        page = (
            await wb.get(base, params={"isAnswered": "true", "take": 1, "skip": 0}, headers=headers)
        ).json()["data"]

        assert (count_true, count_false) == (len(answered), len(waiting))
        assert unanswered["countUnanswered"] == len(waiting)
        assert 0 <= unanswered["countUnansweredToday"] <= len(waiting)
        assert (page["countArchive"], page["countUnanswered"]) == (len(answered), len(waiting))
        assert len(page[key]) == 1
        assert all(item["answer"] is None for item in waiting)

    archive = await wb.get(
        "/api/v1/feedbacks/archive", params={"take": 5000, "skip": 0}, headers=headers
    )
    assert archive.json()["data"]["feedbacks"] == await all_items(wb, headers, "review", True)


async def test_nm_id_filters_one_product(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(reviews=3000, limits=False)
    headers = seller["headers"]
    reviews = await all_items(wb, headers, "review", False)
    nm_id, expected = Counter(r["productDetails"]["nmId"] for r in reviews).most_common(1)[0]

    filtered = await all_items(wb, headers, "review", False, nmId=nm_id)
    unknown = await all_items(wb, headers, "review", False, nmId=1)

    assert filtered == [r for r in reviews if r["productDetails"]["nmId"] == nm_id]
    assert len(filtered) == expected
    assert unknown == []


async def test_get_one_returns_the_listed_item(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    headers = seller["headers"]
    review = (await all_items(wb, headers, "review", True))[3]
    question = (await all_items(wb, headers, "question", False))[5]

    got_review = await wb.get("/api/v1/feedback", params={"id": review["id"]}, headers=headers)
    got_question = await wb.get("/api/v1/question", params={"id": question["id"]}, headers=headers)

    assert got_review.json()["data"] == review
    assert got_question.json()["data"] == question


async def test_new_feedbacks_questions_flags_follow_new_and_viewed_items(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(reviews=0, questions=0, limits=False)
    url, headers = "/api/v1/new-feedbacks-questions", seller["headers"]
    before = (await wb.get(url, headers=headers)).json()["data"]
    items = f"/_sandbox/sellers/{seller['seller_id']}/items"
    await wb.post(items, json={"channel": "review", "count": 1})
    added = await wb.post(items, json={"channel": "question", "count": 1})
    after = (await wb.get(url, headers=headers)).json()["data"]
    viewed = {"id": added.json()["ids"][0], "wasViewed": True}
    marked = await wb.patch("/api/v1/questions", json=viewed, headers=headers)
    last = (await wb.get(url, headers=headers)).json()["data"]

    assert before == {"hasNewQuestions": False, "hasNewFeedbacks": False}
    assert after == {"hasNewQuestions": True, "hasNewFeedbacks": True}
    assert marked.json() == {
        "data": None,
        "error": False,
        "errorText": "",
        "additionalErrors": None,
    }
    assert last == {"hasNewQuestions": False, "hasNewFeedbacks": True}
