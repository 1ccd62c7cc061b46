"""Answers: 204s, moderation delay, edits once, delivery counts (wb-api.md §1, §4)."""

from typing import Any

from httpx import AsyncClient

from tests.sandbox.conftest import MakeSeller, advance, all_items

ANSWER = "/api/v1/feedbacks/answer"


async def _review(wb: AsyncClient, seller: dict[str, Any], review_id: str) -> dict[str, Any]:
    response = await wb.get("/api/v1/feedback", params={"id": review_id}, headers=seller["headers"])
    assert response.status_code == 200
    item: dict[str, Any] = response.json()["data"]
    return item


async def _question(wb: AsyncClient, seller: dict[str, Any], question_id: str) -> dict[str, Any]:
    response = await wb.get(
        "/api/v1/question", params={"id": question_id}, headers=seller["headers"]
    )
    assert response.status_code == 200
    item: dict[str, Any] = response.json()["data"]
    return item


async def _ids(wb: AsyncClient, seller: dict[str, Any], channel: str, answered: bool) -> list[str]:
    return [item["id"] for item in await all_items(wb, seller["headers"], channel, answered)]


async def _deliveries(wb: AsyncClient, seller: dict[str, Any]) -> dict[str, Any]:
    response = await wb.get(f"/_sandbox/sellers/{seller['seller_id']}/deliveries")
    body: dict[str, Any] = response.json()
    return body


async def test_a_review_answer_is_moderated_then_published(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    headers = seller["headers"]
    review_id = (await _ids(wb, seller, "review", False))[0]
    unanswered_before = len(await _ids(wb, seller, "review", False))

    response = await wb.post(
        ANSWER, json={"id": review_id, "text": "Спасибо за отзыв!"}, headers=headers
    )

    assert response.status_code == 204
    assert response.content == b""
    pending = await _review(wb, seller, review_id)
    assert pending["answer"] == {
        "text": "Спасибо за отзыв!",
        "state": "reviewRequired",
        "editable": False,
    }
    assert pending["state"] == "none"
    assert review_id in await _ids(wb, seller, "review", False)

    await advance(wb, 4.9)
    assert (await _review(wb, seller, review_id))["answer"]["state"] == "reviewRequired"
    await advance(wb, 0.2)

    published = await _review(wb, seller, review_id)
    assert published["answer"] == {"text": "Спасибо за отзыв!", "state": "wbRu", "editable": True}
    assert (published["state"], published["wasViewed"]) == ("wbRu", True)
    assert review_id not in await _ids(wb, seller, "review", False)
    assert review_id in await _ids(wb, seller, "review", True)
    assert len(await _ids(wb, seller, "review", False)) == unanswered_before - 1
    assert (await _deliveries(wb, seller))["review"] == {review_id: 1}


async def test_moderation_delay_is_a_seller_setting(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False, moderation_seconds=0)
    review_id = (await _ids(wb, seller, "review", False))[0]
    await wb.post(ANSWER, json={"id": review_id, "text": "Спасибо!"}, headers=seller["headers"])
    assert (await _review(wb, seller, review_id))["answer"]["state"] == "wbRu"

    await wb.patch(f"/_sandbox/sellers/{seller['seller_id']}", json={"moderation_seconds": 60})
    other = (await _ids(wb, seller, "review", False))[0]
    await wb.post(ANSWER, json={"id": other, "text": "Спасибо!"}, headers=seller["headers"])
    await advance(wb, 30)
    assert (await _review(wb, seller, other))["answer"]["state"] == "reviewRequired"
    await advance(wb, 30)
    assert (await _review(wb, seller, other))["answer"]["state"] == "wbRu"


async def test_an_unknown_id_still_answers_204(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    body = {"id": "doesNotExist00000000", "text": "Спасибо!"}

    posted = await wb.post(ANSWER, json=body, headers=seller["headers"])
    patched = await wb.patch(ANSWER, json=body, headers=seller["headers"])

    assert (posted.status_code, patched.status_code) == (204, 204)
    assert (await _deliveries(wb, seller))["review"] == {"doesNotExist00000000": 2}


async def test_a_second_answer_is_refused_and_counted(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    review_id = (await _ids(wb, seller, "review", False))[0]
    body = {"id": review_id, "text": "Спасибо!"}

    first = await wb.post(ANSWER, json=body, headers=seller["headers"])
    second = await wb.post(ANSWER, json=body, headers=seller["headers"])

    assert first.status_code == 204
    assert second.status_code == 422
    assert second.json()["errorText"] == "Ответ на этот отзыв уже отправлен"
    assert (await _deliveries(wb, seller))["review"] == {review_id: 2}


async def test_an_answer_can_be_edited_once(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    headers = seller["headers"]
    review_id = (await _ids(wb, seller, "review", False))[0]
    await wb.post(ANSWER, json={"id": review_id, "text": "Спасибо!"}, headers=headers)

    too_early = await wb.patch(ANSWER, json={"id": review_id, "text": "Правка"}, headers=headers)
    await advance(wb, 5)
    edited = await wb.patch(
        ANSWER, json={"id": review_id, "text": "Спасибо, ждём снова!"}, headers=headers
    )
    in_moderation = (await _review(wb, seller, review_id))["answer"]
    await advance(wb, 5)
    after = (await _review(wb, seller, review_id))["answer"]
    again = await wb.patch(ANSWER, json={"id": review_id, "text": "Ещё правка"}, headers=headers)

    assert too_early.status_code == 422
    assert edited.status_code == 204
    assert in_moderation["state"] == "reviewRequired"
    assert review_id in await _ids(wb, seller, "review", True)  # still answered meanwhile
    assert after == {"text": "Спасибо, ждём снова!", "state": "wbRu", "editable": False}
    assert again.status_code == 422
    assert (await _deliveries(wb, seller))["review"] == {review_id: 4}


async def test_a_seeded_answer_can_be_edited(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    answered = await all_items(wb, seller["headers"], "review", True)
    recent = next(r for r in answered if r["answer"]["editable"])
    old = next(r for r in reversed(answered) if not r["answer"]["editable"])

    ok = await wb.patch(
        ANSWER, json={"id": recent["id"], "text": "Новый ответ"}, headers=seller["headers"]
    )
    refused = await wb.patch(
        ANSWER, json={"id": old["id"], "text": "Новый ответ"}, headers=seller["headers"]
    )

    assert ok.status_code == 204
    assert refused.status_code == 422  # older than 60 days


async def test_moderation_turns_down_answers_with_links(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    review_id = (await _ids(wb, seller, "review", False))[0]
    body = {"id": review_id, "text": "Подробности на https://shop.example"}

    await wb.post(ANSWER, json=body, headers=seller["headers"])
    await advance(wb, 5)
    rejected = await _review(wb, seller, review_id)
    retry = await wb.post(
        ANSWER, json={"id": review_id, "text": "Спасибо!"}, headers=seller["headers"]
    )

    assert rejected["answer"]["state"] == "rejected"
    assert rejected["state"] == "none"
    assert review_id in await _ids(wb, seller, "review", False)
    assert retry.status_code == 204


async def test_a_question_answer_shows_after_moderation(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    headers = seller["headers"]
    question_id = (await _ids(wb, seller, "question", False))[0]
    body = {"id": question_id, "answer": {"text": "Да, подойдёт."}, "state": "wbRu"}

    response = await wb.patch("/api/v1/questions", json=body, headers=headers)
    pending = await _question(wb, seller, question_id)
    await advance(wb, 5)
    published = await _question(wb, seller, question_id)

    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "error": False,
        "errorText": "",
        "additionalErrors": None,
    }
    assert (pending["state"], pending["answer"]) == ("suppliersPortalSynch", None)
    assert published["state"] == "wbRu"
    assert published["answer"]["text"] == "Да, подойдёт."
    assert published["answer"]["editable"] is True
    assert question_id in await _ids(wb, seller, "question", True)

    edit = {"id": question_id, "answer": {"text": "Да, подойдёт к любой модели."}, "state": "wbRu"}
    assert (await wb.patch("/api/v1/questions", json=edit, headers=headers)).status_code == 200
    assert (await _question(wb, seller, question_id))["answer"]["text"] == "Да, подойдёт."
    await advance(wb, 5)
    edited = (await _question(wb, seller, question_id))["answer"]
    assert (edited["text"], edited["editable"]) == ("Да, подойдёт к любой модели.", False)
    again = await wb.patch("/api/v1/questions", json=edit, headers=headers)
    assert again.status_code == 422
    assert again.json()["errorText"] == "Не удалось отредактировать вопрос"
    assert (await _deliveries(wb, seller))["question"] == {question_id: 3}


async def test_rejecting_a_question_hides_it_at_once(
    wb: AsyncClient, make_seller: MakeSeller
) -> None:
    seller = await make_seller(limits=False)
    question_id = (await _ids(wb, seller, "question", False))[0]
    body = {"id": question_id, "answer": {"text": "Вопрос не по теме"}, "state": "none"}

    response = await wb.patch("/api/v1/questions", json=body, headers=seller["headers"])
    question = await _question(wb, seller, question_id)

    assert response.status_code == 200
    assert question["state"] == "none"
    assert question_id in await _ids(wb, seller, "question", True)


async def test_question_patch_errors(wb: AsyncClient, make_seller: MakeSeller) -> None:
    seller = await make_seller(limits=False)
    headers = seller["headers"]
    question_id = (await _ids(wb, seller, "question", False))[0]

    unknown = await wb.patch(
        "/api/v1/questions",
        json={"id": "YX52RZEBhH9mrcYdEJuD", "answer": {"text": "Да"}, "state": "wbRu"},
        headers=headers,
    )
    bad_state = await wb.patch(
        "/api/v1/questions",
        json={"id": question_id, "answer": {"text": "Да, есть"}, "state": "published"},
        headers=headers,
    )
    bad_viewed = await wb.patch(
        "/api/v1/questions", json={"id": question_id, "wasViewed": "yes"}, headers=headers
    )

    assert (unknown.status_code, unknown.json()["errorText"]) == (404, "Не найден отзыв")
    assert bad_state.status_code == 400
    assert bad_viewed.status_code == 400
