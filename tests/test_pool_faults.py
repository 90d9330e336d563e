"""A pool under faults: tasks cancelled at random points of acquire, query and release
(the pool keeps within its size and hands out only clean sessions), pgbouncer restarting
under a workload, and pgbouncer refusing clients when full."""

import asyncio
import os
import random
import time

import pytest

import ferropg
from ferropg import exceptions

#: How long the cancellation storm runs (the issue asks for 60 s).
CHAOS_SECONDS = float(os.environ.get("FERROPG_CHAOS_SECONDS", "60"))

#: The ways a task dirties its session before it is cancelled (or finishes).
DIRT = (
    "SET work_mem = '7MB'",
    "SELECT set_config('statement_timeout', '12345', false)",
    "SELECT pg_advisory_lock({k})",
    "DO $$ BEGIN PERFORM pg_advisory_lock({k} + 1000000); END $$",
    "LISTEN chaos_{k}",
    "BEGIN",
    "CREATE TEMP TABLE IF NOT EXISTS chaos_temp (x int)",
    "DECLARE chaos_cursor_{k} CURSOR WITH HOLD FOR SELECT 1",
)


async def _check_clean(con, defaults):
    """Fails unless ``con``'s session is as a fresh one would be."""
    assert not con.is_in_transaction()
    row = await con.fetchrow(
        "SELECT current_setting('work_mem') AS w, current_setting('statement_timeout') AS s,"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        "  AND pid = pg_backend_pid()) AS locks,"
        " (SELECT count(*) FROM pg_listening_channels()) AS channels,"
        " (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,"
        " to_regclass('pg_temp.chaos_temp') IS NULL AS no_temp"
    )
    assert (row["w"], row["s"]) == defaults
    assert (row["locks"], row["channels"], row["cursors"], row["no_temp"]) == (0, 0, 0, True)


def test_a_pool_survives_tasks_cancelled_anywhere(dsn):
    """Tasks that acquire, dirty their session, query and release are cancelled at
    random points for CHAOS_SECONDS (at least 500 of them). Afterwards the pool holds
    no more connections than its maximum, the server sees no more, and every
    connection it hands out is clean. (One loop: the test runs for a minute.)"""
    asyncio.run(_storm(dsn))


async def _storm(dsn):
    rng = random.Random(20261207)
    max_size = 6
    pool = await ferropg.create_pool(
        dsn,
        min_size=2,
        max_size=max_size,
        server_settings={"application_name": "ferropg_chaos"},
    )
    try:
        async with pool.acquire() as con:
            defaults = tuple(
                await con.fetchrow(
                    "SELECT current_setting('work_mem'), current_setting('statement_timeout')"
                )
            )
        stats = {"cancelled": 0, "done": 0}

        async def worker(k):
            async with pool.acquire(timeout=10) as con:
                for sql in rng.sample(DIRT, rng.randint(0, 3)):
                    await con.execute(sql.format(k=k))
                await con.fetchval("SELECT pg_sleep($1::float8)", rng.random() / 200)

        async def one(k):
            task = asyncio.ensure_future(worker(k))
            await asyncio.sleep(rng.random() / 50)
            task.cancel()
            try:
                await task
                stats["done"] += 1
            except asyncio.CancelledError:
                stats["cancelled"] += 1

        deadline = time.monotonic() + CHAOS_SECONDS
        k = 0
        running = set()
        while time.monotonic() < deadline or stats["cancelled"] < 500:
            while len(running) < 40:
                k += 1
                running.add(asyncio.ensure_future(one(k)))
            finished, running = await asyncio.wait(running, return_when="FIRST_COMPLETED")
            for t in finished:
                t.result()  # a task's own failure (not a cancellation) fails the test
            assert pool.get_size() <= max_size
        await asyncio.gather(*running)
        assert stats["cancelled"] >= 500, stats

        assert pool.get_size() <= max_size
        # Every connection at once: each clean, and no more server sessions than the
        # pool's maximum (none leaked by a cancelled acquire or release).
        cons = [await pool.acquire(timeout=10) for _ in range(max_size)]
        try:
            assert len({c.get_server_pid() for c in cons}) == max_size
            for con in cons:
                await _check_clean(con, defaults)
            sessions = await cons[0].fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ferropg_chaos'"
            )
            assert sessions <= max_size
        finally:
            for con in cons:
                await pool.release(con)
    finally:
        await pool.close()


async def test_a_pool_rides_out_pgbouncer_restarting(pgbouncer_factory):
    """A workload through pgbouncer while it restarts: calls in flight fail with a
    connection error (never hang, never a wrong answer), and the pool serves again
    once pgbouncer is back."""
    bouncer = pgbouncer_factory(default_pool_size=2)
    pool = await ferropg.create_pool(**bouncer.connect_kwargs(), min_size=2, max_size=4)
    loop = asyncio.get_running_loop()
    restarted = asyncio.Event()
    failures: list[BaseException] = []
    served_after = [0]

    async def worker(i):
        k = 0
        while not restarted.is_set() or served_after[0] < 40:
            k += 1
            try:
                async with pool.acquire(timeout=5) as con:
                    assert await con.fetchval("SELECT $1::int * 2", k, timeout=5) == k * 2
                if restarted.is_set():
                    served_after[0] += 1
            except (exceptions.ConnectionDoesNotExistError, OSError) as e:
                # OSError: connection refused while pgbouncer is down.
                failures.append(e)
                await asyncio.sleep(0.01)

    try:
        tasks = [asyncio.ensure_future(worker(i)) for i in range(6)]
        await asyncio.sleep(0.3)
        await loop.run_in_executor(None, bouncer.restart)
        restarted.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert served_after[0] >= 40
        assert pool.get_size() <= 4
    finally:
        await pool.close()


async def test_pgbouncer_full_refuses_clearly_and_nothing_else_breaks(pgbouncer_factory):
    bouncer = pgbouncer_factory(max_client_conn=2)
    first = await ferropg.connect(**bouncer.connect_kwargs())
    second = await ferropg.connect(**bouncer.connect_kwargs())
    try:
        with pytest.raises(exceptions.PostgresError, match="no more connections allowed"):
            await ferropg.connect(**bouncer.connect_kwargs())
        for con in (first, second):
            assert await con.fetchval("SELECT $1::int", 3) == 3
        # A pool that cannot grow past pgbouncer's limit reports each refusal and keeps
        # the connections it has.
        await second.close()
        pool = await ferropg.create_pool(**bouncer.connect_kwargs(), min_size=1, max_size=3)
        try:
            held = await pool.acquire()
            with pytest.raises(exceptions.PostgresError, match="no more connections allowed"):
                await pool.acquire(timeout=5)
            assert await held.fetchval("SELECT 1") == 1
            await pool.release(held)
            assert pool.get_size() <= 3
            async with pool.acquire(timeout=5) as con:
                assert await con.fetchval("SELECT 2") == 2
        finally:
            await pool.close()
    finally:
        await first.close()
        await second.close()
