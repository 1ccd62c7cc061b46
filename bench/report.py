"""What every benchmark prints and how it times: the machine, percentiles, a closed-loop HTTP load
driver and its client, the scenario/metric table, and `run_main`, the skeleton of a benchmark's
`main()`.

`run_main` runs the benchmark's coroutine, then prints a Markdown report: the machine, the command
and its wall time, the load average, the benchmark's notes, its body (tables, blocks) and a
verdict. It returns 0 when the benchmark ran to the end (whatever it measured) and 1 when it
stopped early; what was measured until then is still printed.
"""

import argparse
import asyncio
import math
import os
import platform
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
import httpx
import orjson
import psutil
from yarl import URL

from bench.stack import BenchError, say

MB = 1024 * 1024


# --- numbers -----------------------------------------------------------------------------------


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s"


def fmt_mb(nbytes: int) -> str:
    return f"{nbytes / MB:.0f} MB"


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile: the smallest value with at least q of all at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- nproc: {cpus()}; CPU: {model}",
        f"- RAM: {psutil.virtual_memory().total / 1024**3:.1f} GiB",
        f"- Python {platform.python_version()} ({platform.platform()})",
    ]


def scale_note(scale: float) -> list[str]:
    return [] if scale == 1.0 else [f"**scale {scale:g}: the targets are defined for scale 1**"]


# --- closed-loop HTTP load ---------------------------------------------------------------------


@dataclass
class Latencies:
    """Client-side latencies of the requests that got `ok_status`, and what the others got."""

    latencies: list[float] = field(default_factory=list)  # seconds, `ok_status` only
    by_request: dict[str, list[float]] = field(default_factory=dict)  # the same, by `describe`
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    stopped_early: bool = False
    body_bytes: int = 0
    ok_status: int = 200

    @property
    def count(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def non_ok(self) -> int:
        return self.count - self.statuses.get(self.ok_status, 0)

    def pct(self, q: float) -> float:
        """Milliseconds."""
        return nearest_rank(self.latencies, q) * 1000 if self.latencies else float("nan")


class Answer(Protocol):
    """What `drive` reads of a response: `Fetched` (from `LoadClient`) and httpx.Response."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response read in full by `LoadClient`: its status and body."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class LoadClient:
    """The measured load's HTTP client: one `aiohttp.ClientSession`, keep-alive HTTP/1.1, up to
    `connections` connections to `base_url` (one per `drive` worker), `headers` on every request,
    `timeout` (s) for a whole request (connecting, sending, reading the body); a request returns
    once its body is read in full.

    Why not httpx: the client, the API and Postgres share this machine's 2 cores, and every
    millisecond of client CPU is one the server under test does not get. The client process's
    CPU per request (`time.process_time()`; medians of 3 runs of 3,000 requests at concurrency 8
    after 300 warm-up, heap frozen) against a minimal uvicorn app (`--loop uvloop --http
    httptools`) on this machine, default asyncio loop:

    | client | GET, 38 KB JSON | GET, 15 bytes | POST, small JSON |
    |---|---|---|---|
    | httpx.AsyncClient 0.28 (what the benchmarks used) | 1.25 ms | 1.35 ms | 1.07 ms |
    | aiohttp.ClientSession 3.14 through this class | 0.13 ms | 0.11 ms | 0.12 ms |
    | hand-written: asyncio.Protocol + httptools' parser | 0.05 ms | 0.04 ms | 0.05 ms |

    aiohttp is within 0.1 ms of the hand-written minimal client, so the benchmarks use the
    maintained library. uvloop as the client's loop saved ≤ 0.02 ms: not worth changing every
    benchmark's event loop.

    URLs are sent as given (`encoded=True`: already percent-encoded, as `urlencode` makes them;
    never re-quoted). Requests that get no complete response raise aiohttp.ClientError or
    TimeoutError, which `drive` counts as errors.
    """

    # Below uvicorn's keep-alive timeout (5 s): an idle connection is dropped by us before the
    # server closes it, never written to as it closes.
    KEEPALIVE_S = 4.0

    def __init__(
        self,
        base_url: str,
        *,
        connections: int,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=self.KEEPALIVE_S),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def get(self, url: str) -> Fetched:
        async with self._session.get(URL(self._base + url, encoded=True)) as response:
            return Fetched(response.status, await response.read())

    async def post(self, url: str, *, json: Any, headers: dict[str, str] | None = None) -> Fetched:
        """`json` sent as application/json (UTF-8, compact: as httpx encodes it)."""
        async with self._session.post(
            URL(self._base + url, encoded=True),
            data=orjson.dumps(json),
            headers={"Content-Type": "application/json", **(headers or {})},
        ) as response:
            return Fetched(response.status, await response.read())

    async def __aenter__(self) -> "LoadClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()


async def drive(
    send: Callable[[int], Awaitable[Answer]],
    describe: Callable[[int], str],
    count: int,
    concurrency: int,
    deadline: float,
    result: Latencies | None,
) -> bool:
    """Requests 0 … count-1 (`send(i)`), by `concurrency` workers each waiting for its answer
    before sending the next; False when cut by `deadline` (time.monotonic()). `describe(i)`
    names a request in the errors kept."""
    next_index = 0
    cut = False

    async def worker() -> None:
        nonlocal next_index, cut
        while next_index < count:
            if time.monotonic() > deadline:
                cut = True
                return
            i = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                response = await send(i)
            except (aiohttp.ClientError, TimeoutError, httpx.HTTPError) as exc:
                if result is not None:
                    result.errors.append(f"{type(exc).__name__} {describe(i)}: {exc}")
                continue
            elapsed = time.perf_counter() - started
            if result is not None:
                status = response.status_code
                result.statuses[status] = result.statuses.get(status, 0) + 1
                result.body_bytes += len(response.content)
                if status == result.ok_status:
                    result.latencies.append(elapsed)
                    result.by_request.setdefault(describe(i), []).append(elapsed)
                elif len(result.errors) < 5:
                    result.errors.append(f"{status} {describe(i)}: {response.text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return not cut


# --- the scenario / metric table ---------------------------------------------------------------


@dataclass
class Row:
    metric: str
    measured: str
    target: str = ""
    ok: bool | None = None  # None: information, no target

    @property
    def result(self) -> str:
        return "" if self.ok is None else ("ok" if self.ok else "**MISSED**")


@dataclass
class Section:
    name: str
    rows: list[Row] = field(default_factory=list)

    def info(self, metric: str, measured: str) -> None:
        self._add(Row(metric, measured))

    def check(self, metric: str, measured: str, target: str, ok: bool) -> None:
        self._add(Row(metric, measured, target, ok))

    def _add(self, row: Row) -> None:
        self.rows.append(row)
        target = f"  (target {row.target}: {'ok' if row.ok else 'MISSED'})" if row.target else ""
        say(f"  {row.metric}: {row.measured}{target}")


@dataclass
class Report:
    """Sections of rows printed as one table, then further Markdown blocks."""

    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)  # further Markdown after the table

    def section(self, name: str) -> Section:
        section = Section(name)
        self.sections.append(section)
        return section

    def missed(self) -> list[Row]:
        return [row for s in self.sections for row in s.rows if row.ok is False]

    def table(self) -> str:
        lines = ["| scenario | metric | measured | target | result |", "|---|---|---|---|---|"]
        for section in self.sections:
            for i, row in enumerate(section.rows):
                name = section.name if i == 0 else ""
                cells = (name, row.metric, row.measured, row.target, row.result)
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def body(self) -> str:
        return "\n\n".join([self.table(), *self.blocks])

    def verdict(self) -> str:
        missed = self.missed()
        return f"**{len(missed)} target(s) MISSED.**" if missed else "All targets met."


# --- main() ------------------------------------------------------------------------------------


def arg_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The benchmark's options, with its module docstring as the help text."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


class Printable(Protocol):
    notes: list[str]

    def body(self) -> str:
        """Markdown printed after the notes."""
        ...

    def verdict(self) -> str:
        """The last line when the benchmark ran to the end."""
        ...


def run_main(
    module: str,
    title: str,
    args: Sequence[str],
    work: Coroutine[Any, Any, None],
    report: Printable,
    leading: Sequence[str] = (),
) -> int:
    """Run the benchmark `module` (`bench.x_bench`, called with `args`) as `work`, and print the
    report: `## {title}`, the machine, the command, the load average, `leading` and the report's
    notes as bullets, its body and verdict. 0 when the benchmark ran to the end, 1 when it stopped
    early (a BenchError, a crash, Ctrl-C)."""
    command = " ".join([f".venv/bin/python -m {module}", *args])
    name = module.removeprefix("bench.").removesuffix("_bench")
    say(f"{name} benchmark: {command}")
    for line in machine():
        say(line.removeprefix("- "))
    started = time.monotonic()
    load_before = os.getloadavg()
    say(f"load average before: {load_before[0]:.2f} (other processes skew the numbers)")
    failure: BaseException | None = None
    try:
        asyncio.run(work)
    except (Exception, KeyboardInterrupt) as exc:  # what was measured so far still prints
        failure = exc
        if not isinstance(exc, BenchError | KeyboardInterrupt):
            traceback.print_exc()
    print(flush=True)
    print(f"## {title}\n")
    print("\n".join(machine()))
    print(f"- command: `{command}`; benchmark wall time {time.monotonic() - started:.0f} s")
    load_after = os.getloadavg()
    print(
        f"- load average (1 min) before the benchmark {load_before[0]:.2f}, after "
        f"{load_after[0]:.2f} (the benchmark's own processes included)"
    )
    for note in [*leading, *report.notes]:
        print(f"- {note}")
    print()
    print(report.body())
    print()
    if failure is not None:
        print(f"**The benchmark stopped early: {type(failure).__name__}: {failure}**")
        return 1
    print(report.verdict())
    return 0
