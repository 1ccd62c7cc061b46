"""The sandbox clock (real time plus an adjustable offset) and WB's many date formats."""

import time

MSK_OFFSET = 3 * 3600
DAY = 86400.0


class Clock:
    """Monotonic wall time: `start` (default: now) + elapsed real time + offset.

    A frozen clock does not follow real time, so generated dates are reproducible in tests.
    """

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._start = time.time() if start is None else start
        self._mono = time.monotonic()
        self._frozen = frozen
        self.offset = 0.0

    def now(self) -> float:
        elapsed = 0.0 if self._frozen else time.monotonic() - self._mono
        return self._start + elapsed + self.offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset += seconds
        return self.now()


def msk(ts: float) -> str:
    """Review dates: `2024-09-26T10:20:48+03:00`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+03:00", time.gmtime(int(ts) + MSK_OFFSET))


def utc_nanos(ts: float) -> str:
    """Question dates: `2022-02-01T11:18:08.769513469Z`."""
    whole = int(ts)
    nanos = int((ts - whole) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{nanos:09d}Z"


def utc(ts: float) -> str:
    """Chat and gateway times: `2024-09-30T06:52:38Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def msk_day_start(ts: float) -> float:
    """Midnight in Moscow of the day containing ts, as a Unix timestamp."""
    return (int(ts + MSK_OFFSET) // 86400) * 86400 - MSK_OFFSET
