"""In-memory token buckets (the sandbox is one process) and the per-seller request log."""

import math
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any

from app.sandbox.config import RateSpec

GROUPS = ("feedbacks", "chat")
_GROUP_CODE = {name: code for code, name in enumerate(GROUPS)}
_EPSILON = 1e-9  # float refill arithmetic must not turn an exact third of a second into a 429


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int  # whole tokens left after this request
    retry: int  # seconds until one token is back (0 when allowed)
    limit: int  # the burst size
    reset: int  # seconds until the bucket is full again


class TokenBucket:
    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, spec: RateSpec, now: float) -> None:
        self.rate = spec.rate
        self.burst = spec.burst
        self.tokens = float(spec.burst)
        self.updated = now

    def matches(self, spec: RateSpec) -> bool:
        return self.rate == spec.rate and self.burst == spec.burst

    def take(self, now: float) -> Decision:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens + _EPSILON >= 1:
            self.tokens = max(0.0, self.tokens - 1)
            return Decision(True, int(self.tokens + _EPSILON), 0, self.burst, self._reset())
        retry = max(1, math.ceil((1 - self.tokens) / self.rate - _EPSILON))
        return Decision(False, 0, retry, self.burst, self._reset())

    def _reset(self) -> int:
        return max(0, math.ceil((self.burst - self.tokens) / self.rate - _EPSILON))


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def take(self, seller_id: str, group: str, spec: RateSpec, now: float) -> Decision:
        bucket = self._buckets.get((seller_id, group))
        if bucket is None or not bucket.matches(spec):
            # A changed limit starts from a full bucket, as a fresh token would.
            bucket = self._buckets[(seller_id, group)] = TokenBucket(spec, now)
        return bucket.take(now)

    def forget(self, seller_id: str | None = None) -> None:
        if seller_id is None:
            self._buckets.clear()
            return
        for key in [k for k in self._buckets if k[0] == seller_id]:
            del self._buckets[key]


class RequestLog:
    """Arrival time, group and status of the last `capacity` marketplace requests of a seller,
    in three compact arrays used as one ring buffer (about 11 bytes per request)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.clear()

    def clear(self) -> None:
        self._times = array("d")
        self._groups = bytearray()
        self._statuses = array("H")
        self._head = 0  # oldest entry once the ring is full
        self.total = 0

    def add(self, ts: float, group: str, status: int) -> None:
        self.total += 1
        code = _GROUP_CODE[group]
        if len(self._times) < self.capacity:
            self._times.append(ts)
            self._groups.append(code)
            self._statuses.append(status)
            return
        self._times[self._head] = ts
        self._groups[self._head] = code
        self._statuses[self._head] = status
        self._head = (self._head + 1) % self.capacity

    def summary(self) -> dict[str, Any]:
        by_group: dict[str, Any] = {}
        per_second: Counter[tuple[int, str]] = Counter()
        for code, group in enumerate(GROUPS):
            picked = [i for i, g in enumerate(self._groups) if g == code]
            times = sorted(self._times[i] for i in picked)
            statuses = Counter(str(self._statuses[i]) for i in picked)
            per_second.update((int(t), group) for t in times)
            by_group[group] = {
                "count": len(times),
                "max_in_any_1s": max_in_window(times, 1.0),
                "max_in_any_10s": max_in_window(times, 10.0),
                "status_counts": dict(sorted(statuses.items())),
            }
        return {
            "total": self.total,
            "kept": len(self._times),
            "by_group": by_group,
            "per_second": [[sec, group, n] for (sec, group), n in sorted(per_second.items())],
        }


def max_in_window(times: list[float], width: float) -> int:
    """The most requests inside any half-open window [t, t + width) of sorted times."""
    best, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= width:
            left += 1
        best = max(best, right - left + 1)
    return best
