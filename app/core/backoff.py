"""One backoff for every retry loop of ours: capped exponential with full jitter.

The n-th wait is uniform in [0, min(cap, base × 2ⁿ)] (AWS' "full jitter"): retries spread out
instead of arriving together, and a long outage costs at most `cap` per wait.
"""

import random


def full_jitter(attempt: int, base: float, cap: float = float("inf")) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry)."""
    ceiling = min(cap, base * 2 ** min(attempt, 64))
    return random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
