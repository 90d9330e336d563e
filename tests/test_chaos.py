"""Cancellation at random points: 500 tasks call every kind of API through a pool and
on connections of their own, each call under ``asyncio.wait_for`` with a random
timeout, for ``FERROPG_CHAOS_SECONDS`` (60) seconds, on asyncio and on uvloop.

What must hold:

* a caller sees only its result, TimeoutError or CancelledError: never another error
  (a QueryCanceledError would be a cancel that reached a query it was not sent for);
* every result is the answer to its own query;
* afterwards every pooled connection is clean (no transaction, advisory lock, LISTEN,
  changed setting or open cursor) and the pool holds no more than its maximum;
* RSS is flat: after the first third of the run it grows by less than
  :data:`RSS_SLACK` bytes.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import time
from collections import Counter

import ferropg

TASKS = 500
POOL_SIZE = 20
OWN_CONNECTIONS = 20
SECONDS = float(os.environ.get("FERROPG_CHAOS_SECONDS", "60"))
#: Slack for allocator noise and caches that fill once (statements, types, records).
RSS_SLACK = 24 * 1024 * 1024


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Chaos:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.outcomes: Counter = Counter()
        self.wrong: list[str] = []

    def check(self, what: str, got, want) -> None:
        if got != want:
            self.wrong.append(f"{what}: got {got!r}, want {want!r}")

    # Each operation runs on ``con`` and checks what it gets back.

    async def op_fetchval(self, con):
        n = self.rng.randrange(1000)
        self.check("fetchval", await con.fetchval("SELECT $1::int + 1", n), n + 1)

    async def op_fetch(self, con):
        n = self.rng.randrange(1, 300)
        rows = await con.fetch("SELECT g FROM generate_series(1, $1) g", n)
        self.check("fetch", [r[0] for r in rows], list(range(1, n + 1)))

    async def op_sleep(self, con):
        await con.execute("SELECT pg_sleep($1)", self.rng.uniform(0, 0.02))

    async def op_transaction(self, con):
        async with con.transaction():
            await con.execute("INSERT INTO chaos VALUES ($1)", self.rng.randrange(1000))
            await con.execute("SELECT pg_sleep($1)", self.rng.uniform(0, 0.01))

    async def op_savepoint(self, con):
        async with con.transaction():
            try:
                async with con.transaction():
                    await con.execute("INSERT INTO chaos VALUES (-1)")
                    raise LookupError
            except LookupError:
                pass
            self.check("savepoint", await con.fetchval("SELECT 7"), 7)

    async def op_executemany(self, con):
        await con.executemany("INSERT INTO chaos VALUES ($1)", [(i,) for i in range(50)])

    async def op_cursor(self, con):
        async with con.transaction():
            got = [r[0] async for r in con.cursor("SELECT generate_series(1, 100)", prefetch=7)]
            self.check("cursor", got, list(range(1, 101)))

    async def op_prepared(self, con):
        stmt = await con.prepare("SELECT $1::text || 'x'")
        s = str(self.rng.randrange(1000))
        self.check("prepared", await stmt.fetchval(s), s + "x")

    async def op_copy_in(self, con):
        await con.copy_records_to_table("chaos", records=[(i,) for i in range(100)])

    async def op_copy_out(self, con):
        out = io.BytesIO()
        await con.copy_from_query("SELECT generate_series(1, 200)", output=out)
        self.check("copy out", out.getvalue().count(b"\n"), 200)

    async def op_dirty_session(self, con):
        # Everything a pool's reset must undo.
        await con.execute("SET work_mem = '7MB'")
        await con.execute("LISTEN chaos_channel")
        await con.execute("SELECT pg_advisory_lock($1)", self.rng.randrange(1_000_000))
        await con.execute("DECLARE chaos_cur CURSOR WITH HOLD FOR SELECT 1")

    async def op_listener(self, con):
        def callback(*args):
            pass

        await con.add_listener("chaos_listener", callback)
        await con.remove_listener("chaos_listener", callback)

    def pick(self):
        ops = [getattr(self, name) for name in dir(self) if name.startswith("op_")]
        return self.rng.choice(ops)

    async def call(self, coro, label: str) -> None:
        try:
            await asyncio.wait_for(coro, self.rng.uniform(0, 0.08))
        except (TimeoutError, asyncio.CancelledError):
            self.outcomes["timeout"] += 1
        except Exception as e:
            self.outcomes[f"{label}: {type(e).__name__}: {e}"] += 1
        else:
            self.outcomes["ok"] += 1


async def _pooled_worker(chaos: Chaos, pool, until: float) -> None:
    while time.monotonic() < until:
        op = chaos.pick()

        async def run(op=op):
            async with pool.acquire() as con:
                await op(con)
                if op != chaos.op_dirty_session:
                    await op(con)

        await chaos.call(run(), f"pooled {op.__name__}")


async def _own_worker(chaos: Chaos, con, until: float) -> None:
    while time.monotonic() < until:
        op = chaos.pick()
        if op == chaos.op_dirty_session:
            continue
        await chaos.call(op(con), f"own {op.__name__}")


async def _assert_clean(pool) -> None:
    cons = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for con in cons:
            pid = con.get_server_pid()
            assert not con.is_in_transaction()
            assert await con.fetchval("SHOW work_mem") == "4MB"
            assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
            # The unnamed portal of this very query is listed too.
            cursors = await con.fetchval("SELECT count(*) FROM pg_cursors WHERE name <> ''")
            assert cursors == 0
            locks = await con.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", pid
            )
            assert locks == 0
    finally:
        for con in cons:
            await pool.release(con)
    assert pool.get_size() <= pool.get_max_size()


async def test_random_cancellation_everywhere(dsn):
    setup = await ferropg.connect(dsn)
    await setup.execute("DROP TABLE IF EXISTS chaos; CREATE TABLE chaos (x int)")
    pool = await ferropg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
    own = [await ferropg.connect(dsn) for _ in range(OWN_CONNECTIONS)]
    chaos = Chaos(random.Random(1206))
    try:
        start = time.monotonic()
        until = start + SECONDS
        workers = [
            asyncio.ensure_future(_own_worker(chaos, own[i], until)) for i in range(OWN_CONNECTIONS)
        ]
        workers += [
            asyncio.ensure_future(_pooled_worker(chaos, pool, until))
            for _ in range(TASKS - OWN_CONNECTIONS)
        ]
        await asyncio.sleep(SECONDS / 3)
        rss_early = _rss()
        await asyncio.gather(*workers)
        rss_late = _rss()

        errors = {k: v for k, v in chaos.outcomes.items() if k not in ("ok", "timeout")}
        assert errors == {}
        assert chaos.wrong == []
        assert chaos.outcomes["ok"] > 100 and chaos.outcomes["timeout"] > 100
        assert rss_late - rss_early < RSS_SLACK, (rss_early, rss_late)

        await asyncio.wait_for(_assert_clean(pool), 60)
        for con in own:
            assert await asyncio.wait_for(con.fetchval("SELECT 1"), 30) == 1
            assert not con.is_in_transaction()
    finally:
        for con in own:
            con.terminate()
        pool.terminate()
        await setup.execute("DROP TABLE chaos")
        await setup.close()
