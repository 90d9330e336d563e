"""A write workload through a pool, for the failover tests: several tasks insert rows,
each remembering what the server acknowledged, and everything that broke a promise.

:class:`Workload` runs ``WORKERS`` tasks; each round acquires a connection (with a
timeout), checks that it is on a writable server (``pg_is_in_recovery()``,
``transaction_read_only``), inserts one row ``(worker, seq)`` and releases the
connection, every call with its own timeout.  A round that ends with connection trouble
(the server went away, refused, timed out, no server is a primary yet) is counted and
retried; anything else is a *violation*: a read-only server handed out, a step that ran
past its timeout, a round that hung, an unexpected error, the pool above its maximum.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from ferropg import exceptions

__all__ = ["Ack", "Workload", "close_pool", "floor_restored"]

WHO = "SELECT pg_catalog.pg_is_in_recovery(), current_setting('port')::int"

WORKERS = 4
MIN_SIZE, MAX_SIZE = 2, 3
ACQUIRE_TIMEOUT = 5.0
QUERY_TIMEOUT = 5.0
#: How far past its timeout a step may end on a busy machine before it counts as hung.
SLACK = 2.0
#: What one round of a worker (acquire, two queries, release) may take at most.
ROUND_LIMIT = ACQUIRE_TIMEOUT + 3 * QUERY_TIMEOUT + 2 * SLACK
#: Pause after a failed round, so that workers do not spin on refused connections.
RETRY_PAUSE = 0.02
#: Errors a round may end with while a server is down: connection trouble, timeouts.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    exceptions.PostgresConnectionError,
    exceptions.OperatorInterventionError,
    exceptions.InterfaceError,
    # Every server answered, none of them a primary (yet).
    exceptions.TargetServerAttributeNotMatched,
)

#: What a round checks on the connection it was handed: it must be a writable primary.
CHECK = (
    "SELECT pg_catalog.pg_is_in_recovery() OR current_setting('transaction_read_only')::bool,"
    " current_setting('port')::int"
)


@dataclass
class Ack:
    worker: int
    seq: int
    at: float
    port: int


@dataclass
class Workload:
    """``WORKERS`` tasks inserting rows through ``pool``, each remembering what the
    server acknowledged, and everything that went wrong."""

    pool: Any
    table: str
    acked: list[Ack] = field(default_factory=list)
    errors: collections.Counter = field(default_factory=collections.Counter)
    #: Broken promises: a read-only server handed out, a step past its timeout, a hung
    #: round, an unexpected error, the pool above its maximum.
    violations: list[str] = field(default_factory=list)
    rounds: int = 0
    #: When the promotion was over (``time.monotonic()``).
    promoted: float = float("inf")
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> list[asyncio.Task]:
        return [asyncio.create_task(self._worker(w)) for w in range(WORKERS)]

    def acks_since(self, t: float) -> collections.Counter:
        return collections.Counter(a.worker for a in self.acked if a.at >= t)

    async def wait_acks_since(self, t: float, n: int, timeout: float, what: str) -> None:
        """Waits until every worker has ``n`` acknowledged rows since ``t``; fails at
        once on a violation."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.acks_since(t)
            if all(counts[w] >= n for w in range(WORKERS)):
                return
            if self.violations or time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: acknowledged rows per worker {dict(counts)} (wanted {n} each, "
                    f"within {timeout}s); "
                    f"errors {dict(self.errors)}; violations {self.violations[:5]}"
                )
            await asyncio.sleep(0.02)

    def _step(self, name: str, started: float, limit: float) -> None:
        took = time.monotonic() - started
        if took > limit + SLACK:
            self.violations.append(f"{name} took {took:.2f}s (timeout {limit}s)")

    def _size(self) -> None:
        size = self.pool.get_size()
        if not 0 <= size <= MAX_SIZE:
            self.violations.append(f"pool size {size} outside 0..{MAX_SIZE}")

    async def _worker(self, w: int) -> None:
        seq = 0
        while not self.stop.is_set():
            seq += 1
            self.rounds += 1
            try:
                async with asyncio.timeout(ROUND_LIMIT) as guard:
                    await self._round(w, seq)
            except TimeoutError as e:
                if guard.expired():
                    self.violations.append(f"worker {w} round {seq} hung past {ROUND_LIMIT}s")
                self.errors[type(e).__name__] += 1
            except exceptions.ReadOnlySQLTransactionError as e:
                # The server was writable when checked, and turned read-only before the
                # INSERT (a switchover demoting it): an outage, counted on its own.
                self.errors[f"{type(e).__name__} after a writable check"] += 1
            except OUTAGE_ERRORS as e:
                self.errors[type(e).__name__] += 1
            except Exception as e:
                self.violations.append(f"worker {w}: unexpected {type(e).__name__}: {e}")
                self.errors[type(e).__name__] += 1
            else:
                continue
            await asyncio.sleep(RETRY_PAUSE)

    async def _round(self, w: int, seq: int) -> None:
        pool = self.pool
        t = time.monotonic()
        con = await pool.acquire(timeout=ACQUIRE_TIMEOUT)
        self._step("acquire", t, ACQUIRE_TIMEOUT)
        self._size()
        try:
            t = time.monotonic()
            read_only, port = await con.fetchrow(CHECK, timeout=QUERY_TIMEOUT)
            self._step("pg_is_in_recovery()", t, QUERY_TIMEOUT)
            if read_only:
                self.violations.append(f"worker {w} was handed a read-only server (port {port})")
                return
            t = time.monotonic()
            await con.execute(
                f"INSERT INTO {self.table} (worker, seq) VALUES ($1, $2)",
                w,
                seq,
                timeout=QUERY_TIMEOUT,
            )
            self._step("INSERT", t, QUERY_TIMEOUT)
            # The server acknowledged the commit (synchronously replicated).
            self.acked.append(Ack(w, seq, time.monotonic(), port))
        finally:
            t = time.monotonic()
            await pool.release(con, timeout=QUERY_TIMEOUT)
            self._step("release", t, QUERY_TIMEOUT)


async def floor_restored(pool: Any, floor: int) -> None:
    """Waits until the pool is back at its floor (``floor``, its min_size), which its
    floor task restores on a back-off schedule (1 s, doubling) after failed attempts
    during the outage; its size never exceeds its maximum meanwhile."""
    deadline = time.monotonic() + 45
    while (size := pool.get_size()) < floor:
        assert size <= pool.get_max_size()
        assert time.monotonic() < deadline, f"pool size {size} stayed below {floor}"
        await asyncio.sleep(0.02)
    assert pool.get_size() <= pool.get_max_size()


async def close_pool(pool: Any) -> None:
    """Closes the pool; terminates it if closing does not end in time."""
    try:
        await asyncio.wait_for(pool.close(), 30)
    finally:
        pool.terminate()
