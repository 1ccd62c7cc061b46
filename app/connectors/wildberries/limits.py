"""Wildberries' rate limits (wb-api.md §0) as our limiter's buckets, per seller and API group."""

from app.core.ratelimit import Limit

# every reviews+questions method of a seller, reads and replies: WB allows 3/s burst 6
FEEDBACKS = "feedbacks"
# buyer chat: WB allows 10 per 10 s → rate 1.0, burst 10
CHAT = "chat"
MARKETPLACE_LIMITS: dict[str, Limit] = {FEEDBACKS: Limit(3.0, 6), CHAT: Limit(1.0, 10)}
# Ours keep one token in hand. Requests leave us paced but reach the marketplace bunched: a burst
# from several workers is served one by one and arrives late, so the next paced request arrives
# early by the marketplace's clock, which counts arrivals. With the full burst, every burst was
# followed by one 429 in the dispatcher's rate test; one token less keeps the rate at 3/s.
DEFAULT_LIMITS: dict[str, Limit] = {
    category: Limit(limit.rate, max(1, limit.burst - 1))
    for category, limit in MARKETPLACE_LIMITS.items()
}
