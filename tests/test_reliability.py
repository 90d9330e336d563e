"""Regression tests for the defects that fault injection found (issue: reliability and
security). Each test is the reproduction from the report, shortened, against a real
server; where a link must break, a :class:`faultproxy.FaultProxy` stands in between.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time

import pytest
from faultproxy import FaultProxy

import ferropg
from ferropg import exceptions


async def test_stale_cancel_never_reaches_the_next_query(dsn):
    """Timeouts that land inside queries: the CancelRequest sent for an abandoned query
    must never cancel a later one on the same connection (it did about once in 130
    queries here, when a later call gave up waiting for the cancellation)."""

    async def worker(con, outcomes, rng):
        for _ in range(250):
            try:
                value = await asyncio.wait_for(
                    con.fetchval("select 1 from pg_sleep(random() * 0.01)"),
                    rng.uniform(0, 0.02),
                )
            except TimeoutError:
                outcomes["timeout"] += 1
            except Exception as e:  # any other error is the defect
                outcomes[f"{type(e).__name__}: {e}"] += 1
            else:
                assert value == 1
                outcomes["ok"] += 1

    cons = [await ferropg.connect(dsn) for _ in range(8)]
    outcomes = collections.Counter()
    rng = random.Random(20261206)
    try:
        await asyncio.gather(*(worker(c, outcomes, rng) for c in cons))
        # Every connection is still open and answers.
        assert [await c.fetchval("select 2") for c in cons] == [2] * len(cons)
    finally:
        for c in cons:
            await c.close()
    errors = {k: v for k, v in outcomes.items() if k not in ("ok", "timeout")}
    assert errors == {}
    # The run did exercise both outcomes.
    assert outcomes["timeout"] > 100 and outcomes["ok"] > 100


async def test_connection_loss_inside_acquire_raises_the_connection_error(dsn):
    """The server ending the session under ``pool.acquire()`` raises
    ConnectionDoesNotExistError, not the pool's internal error about a free holder."""

    pool = await ferropg.create_pool(dsn, min_size=1, max_size=1)
    admin = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            async with pool.acquire() as con:
                pid = await con.fetchval("select pg_backend_pid()")
                asyncio.get_running_loop().call_later(
                    0.3,
                    asyncio.ensure_future,
                    admin.execute("select pg_terminate_backend($1)", pid),
                )
                await con.fetch("select pg_sleep(5)")
        # The pool recovers, within its size.
        assert await pool.fetchval("select 1") == 1
        assert pool.get_size() == 1
    finally:
        await admin.close()
        await pool.close()


async def test_pool_timeout_bounds_the_release_on_a_blackholed_link(cluster, dsn):
    """``pool.fetchval(..., timeout=T)`` returns by T even when the link goes silent:
    the release does not wait for a cancellation that cannot arrive, and the connection
    it cannot clean is terminated rather than handed out again."""
    if cluster is None:
        pytest.skip("needs the managed cluster's address")
    host, port = cluster.connection_kwargs()["host"], cluster.connection_kwargs()["port"]

    with FaultProxy((host, port)) as proxy:
        pool = await ferropg.create_pool(
            host=proxy.address[0],
            port=proxy.address[1],
            user="postgres",
            database="postgres",
            ssl=False,
            min_size=1,
            max_size=1,
        )
        try:
            assert await pool.fetchval("select 1") == 1
            proxy.set_mode("blackhole")
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(pool.fetchval("select 1", timeout=1), 10)
            elapsed = time.monotonic() - started
            assert elapsed < 1.5, elapsed
            proxy.set_mode("pass")
            # The connection that could not be cleaned was terminated; a new one serves.
            assert await asyncio.wait_for(pool.fetchval("select 2", timeout=5), 10) == 2
            assert pool.get_size() <= 1
        finally:
            proxy.set_mode("pass")
            await asyncio.wait_for(pool.close(), 10)


def _many_params(n: int) -> str:
    return "SELECT cardinality(ARRAY[" + ",".join(f"${i}::int" for i in range(1, n + 1)) + "])"


async def test_argument_counts_past_the_protocol_limit_fail_the_call_not_the_connection(dsn):
    """70,000 arguments: the server would write the statement's parameter count as
    an Int16 (4,464); the call fails with InterfaceError and the connection goes on."""

    con = await ferropg.connect(dsn)
    try:
        too_many = _many_params(70_000)
        calls = [
            lambda: con.fetchval(too_many, *range(70_000)),
            lambda: con.execute(too_many, *range(70_000)),
            lambda: con.prepare(too_many),
            lambda: con.executemany(too_many, [range(70_000)]),
            lambda: con.fetchval("SELECT $1::int", *range(32_768)),
        ]
        for call in calls:
            with pytest.raises(exceptions.InterfaceError, match="cannot exceed 32767"):
                await call()
            assert not con.is_closed()
            assert await con.fetchval("SELECT 1") == 1
        # The limit itself works.
        assert await con.fetchval(_many_params(32_767), *range(32_767)) == 32_767
    finally:
        await con.close()


async def test_pool_reset_drops_temporary_tables(dsn):
    """Decision (docs/reliability.md): a pooled connection's next user sees none of
    the last user's temporary tables, and can create its own of the same name."""

    pool = await ferropg.create_pool(dsn, min_size=1, max_size=1)
    try:
        for _ in range(2):
            async with pool.acquire() as con:
                assert await con.fetchval("SELECT to_regclass('pg_temp.leftover')") is None
                await con.execute("CREATE TEMP TABLE leftover (secret text)")
                await con.execute("INSERT INTO leftover VALUES ('x')")
    finally:
        await pool.close()


async def test_a_stray_copy_from_stdin_is_refused_and_the_connection_goes_on(dsn):
    """COPY FROM STDIN through a query method (simple and extended protocol) fails
    that call; the connection stays in step."""

    con = await ferropg.connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE stray (x int)")
        for call in (
            lambda: con.execute("COPY stray FROM STDIN"),
            lambda: con.fetch("COPY stray FROM STDIN"),
        ):
            with pytest.raises(exceptions.PostgresError, match="cannot run through a query call"):
                await call()
            assert await con.fetchval("SELECT count(*) FROM stray") == 0
    finally:
        await con.close()
