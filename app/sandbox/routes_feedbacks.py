"""feedbacks-api: reviews and questions (wb-api.md §1)."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.sandbox import params, render
from app.sandbox.clock import msk_day_start
from app.sandbox.errors import FeedbacksError, feedbacks_ok
from app.sandbox.faults import FaultState
from app.sandbox.gate import FAULTS, NOW, SELLER
from app.sandbox.seller import Seller
from app.sandbox.store import Feed

router = APIRouter(tags=["feedbacks-api"])

REVIEWS_TAKE_MAX = 5000
REVIEWS_SKIP_MAX = 199_990
QUESTIONS_WINDOW_MAX = 10_000
_KEYS = {"review": "feedbacks", "question": "questions"}  # a list's items, by channel


def _context(request: Request) -> tuple[Seller, float, FaultState]:
    scope = request.scope
    return scope[SELLER], scope[NOW], scope[FAULTS]


def _no_content() -> Response:
    return Response(status_code=204)


def _has_new(feed: Feed, since: float) -> bool:
    """Unanswered items the seller has not looked at yet (seeded ones older than 2 days were)."""
    lo, hi = feed.window(int(since) + 1, None)
    viewed = sum(1 for i in feed.viewed if i >= lo and not feed.answered[i])
    return feed.count(False, lo, hi) > viewed


def _unanswered_counts(request: Request, channel: str) -> Response:
    seller, now, _ = _context(request)
    feed = seller.feed(channel)
    today = feed.window(int(msk_day_start(now)), None)
    return feedbacks_ok(
        {"countUnanswered": feed.count(False), "countUnansweredToday": feed.count(False, *today)}
    )


def _window(request: Request, feed: Feed) -> tuple[int, int]:
    date_from = params.optional_int(request.query_params, "dateFrom")
    date_to = params.optional_int(request.query_params, "dateTo")
    return feed.window(date_from, date_to)


def _count(request: Request, channel: str) -> Response:
    seller, _, _ = _context(request)
    feed = seller.feed(channel)
    window = _window(request, feed)
    answered = params.optional_bool(request.query_params, "isAnswered")
    return feedbacks_ok(feed.count(True if answered is None else answered, *window))


def _page(
    request: Request, seller: Seller, channel: str, answered: bool, take: int, skip: int
) -> list[dict[str, Any]]:
    _, now, faults = _context(request)
    feed = seller.feed(channel)
    query = request.query_params
    window = _window(request, feed)
    desc = params.order_desc(query)
    nm_id = params.optional_int(query, "nmId")
    product: int | None = None
    if nm_id is not None:
        product = seller.catalog.by_nm.get(nm_id)
        if product is None:
            return []
    indexes = feed.select(answered, window, product, desc, skip, take)
    return render.feed_page(seller, channel, indexes, now, faults)


def _listing(
    request: Request, channel: str, take_max: int, skip_max: int, window_max: int | None = None
) -> Response:
    """A list of reviews or questions with the feed's counts (`window_max`: a cap on take+skip)."""
    seller, _, _ = _context(request)
    query = request.query_params
    answered = params.required_bool(query, "isAnswered")
    take = params.capped(params.required_int(query, "take", 1), "take", take_max)
    skip = params.capped(params.required_int(query, "skip"), "skip", skip_max)
    if window_max is not None and take + skip > window_max:
        raise FeedbacksError(f"Сумма take и skip не может быть больше {window_max}")
    items = _page(request, seller, channel, answered, take, skip)
    feed = seller.feed(channel)
    return feedbacks_ok(
        {
            "countUnanswered": feed.count(False),
            "countArchive": feed.count(True),
            _KEYS[channel]: items,
        }
    )


def _one(
    request: Request,
    channel: str,
    rendered: Callable[[Seller, int, float], dict[str, Any]],
    not_found: str,
) -> Response:
    """One review or question by its id."""
    seller, now, _ = _context(request)
    external_id = params.item_id(request.query_params.get("id"))
    index = seller.feed(channel).index_of(external_id)
    if index is None:
        raise FeedbacksError(not_found, 422)
    return feedbacks_ok(rendered(seller, index, now))


# --- reviews --------------------------------------------------------------------------------------


@router.get("/api/v1/new-feedbacks-questions")
async def new_feedbacks_questions(request: Request) -> Response:
    seller, _, _ = _context(request)
    return feedbacks_ok(
        {
            "hasNewQuestions": _has_new(seller.questions, seller.viewed_before),
            "hasNewFeedbacks": _has_new(seller.reviews, seller.viewed_before),
        }
    )


@router.get("/api/v1/feedbacks/count-unanswered")
async def feedbacks_count_unanswered(request: Request) -> Response:
    return _unanswered_counts(request, "review")


@router.get("/api/v1/feedbacks/count")
async def feedbacks_count(request: Request) -> Response:
    return _count(request, "review")


@router.get("/api/v1/feedbacks")
async def feedbacks(request: Request) -> Response:
    return _listing(request, "review", REVIEWS_TAKE_MAX, REVIEWS_SKIP_MAX)


@router.get("/api/v1/feedbacks/archive")
async def feedbacks_archive(request: Request) -> Response:
    """Served as the answered reviews (WB defines the archive only loosely)."""
    seller, _, _ = _context(request)
    query = request.query_params
    take = params.capped(params.required_int(query, "take", 1), "take", REVIEWS_TAKE_MAX)
    skip = params.required_int(query, "skip")
    return feedbacks_ok({"feedbacks": _page(request, seller, "review", True, take, skip)})


@router.get("/api/v1/feedback")
async def feedback(request: Request) -> Response:
    return _one(request, "review", render.review, "Невозможно получить отзыв по id")


async def _review_answer_body(request: Request, seller: Seller) -> tuple[str, str, int | None]:
    body = await params.json_object(request)
    external_id = params.item_id(body.get("id"))
    text = params.answer_text(body.get("text"))
    seller.deliveries["review"][external_id] += 1
    return external_id, text, seller.reviews.index_of(external_id)


@router.post("/api/v1/feedbacks/answer", status_code=204)
async def answer_feedback(request: Request) -> Response:
    """204 even for an unknown id: WB does not validate it here."""
    seller, now, _ = _context(request)
    _, text, index = await _review_answer_body(request, seller)
    if index is not None and not seller.reviews.answer(index, text, now, seller.moderation_seconds):
        raise FeedbacksError("Ответ на этот отзыв уже отправлен", 422)
    return _no_content()


@router.patch("/api/v1/feedbacks/answer", status_code=204)
async def edit_feedback_answer(request: Request) -> Response:
    seller, now, _ = _context(request)
    _, text, index = await _review_answer_body(request, seller)
    if index is None:
        return _no_content()
    seeded = seller.seeded_answer("review", index) if seller.reviews.answered[index] else None
    if seeded is None or not seller.reviews.edit(
        index, text, now, seller.moderation_seconds, seeded
    ):
        raise FeedbacksError("Ответ можно отредактировать только один раз в течение 60 дней", 422)
    return _no_content()


# --- questions ------------------------------------------------------------------------------------


@router.get("/api/v1/questions/count-unanswered")
async def questions_count_unanswered(request: Request) -> Response:
    return _unanswered_counts(request, "question")


@router.get("/api/v1/questions/count")
async def questions_count(request: Request) -> Response:
    return _count(request, "question")


@router.get("/api/v1/questions")
async def questions(request: Request) -> Response:
    return _listing(
        request, "question", QUESTIONS_WINDOW_MAX, QUESTIONS_WINDOW_MAX, QUESTIONS_WINDOW_MAX
    )


@router.get("/api/v1/question")
async def question(request: Request) -> Response:
    return _one(request, "question", render.question, "Невозможно получить вопрос по id")


@router.patch("/api/v1/questions")
async def patch_question(request: Request) -> Response:
    """{id, wasViewed} marks viewed; {id, answer: {text}, state} rejects ("none") or answers
    ("wbRu", or edits an answer already published)."""
    seller, now, _ = _context(request)
    body = await params.json_object(request)
    external_id = params.item_id(body.get("id"))
    feed = seller.questions
    if "answer" not in body:
        if not isinstance(body.get("wasViewed"), bool):
            raise FeedbacksError("Неправильный формат запроса")
        index = _question_index(feed, external_id)
        (feed.viewed.add if body["wasViewed"] else feed.viewed.discard)(index)
        return feedbacks_ok(None)
    answer, state = body["answer"], body.get("state")
    if not isinstance(answer, dict) or state not in ("none", "wbRu"):
        raise FeedbacksError("Неправильный формат запроса")
    text = params.answer_text(answer.get("text"))
    seller.deliveries["question"][external_id] += 1
    index = _question_index(feed, external_id)
    if state == "none":
        feed.hide(index, text, now)
    elif not feed.answered[index]:
        if not feed.answer(index, text, now, seller.moderation_seconds):
            raise FeedbacksError("Не удалось отредактировать вопрос", 422)
    elif not feed.edit(
        index, text, now, seller.moderation_seconds, seller.seeded_answer("question", index)
    ):
        raise FeedbacksError("Не удалось отредактировать вопрос", 422)
    return feedbacks_ok(None)


def _question_index(feed: Feed, external_id: str) -> int:
    index = feed.index_of(external_id)
    if index is None:
        raise FeedbacksError("Не найден отзыв", 404)
    return index
