"""Timeouts, task cancellation and server-side cancel, close() during a query, and the
one-operation-at-a-time rule."""

import asyncio
import time

import pytest

import ferropg
from ferropg import exceptions

SLEEP = "SELECT pg_sleep(10)"
#: How long a timed-out call may take to give up, and the next query to answer. Both are
#: far below the 10 s sleep: a next query that returns in time proves that the server
#: really cancelled the sleep rather than the client merely stopping to wait.
PROMPT = 2.0


class _Clock:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.monotonic() - self.start
        return False


async def _assert_usable(con):
    with _Clock() as c:
        assert await con.fetchval("SELECT 'alive'") == "alive"
    assert c.elapsed < PROMPT


async def test_per_call_timeout(dsn):
    con = await ferropg.connect(dsn)
    try:
        calls = [
            lambda: con.fetch(SLEEP, timeout=0.05),
            lambda: con.fetchrow(SLEEP, timeout=0.05),
            lambda: con.fetchval(SLEEP, timeout=0.05),
            lambda: con.execute(SLEEP, timeout=0.05),  # simple protocol
            lambda: con.execute("SELECT pg_sleep($1)", 10, timeout=0.05),
            lambda: con.fetchval("SELECT pg_sleep($1::float8 * 10)", 1.0, timeout=0.05),
        ]
        for call in calls:
            with _Clock() as c, pytest.raises(asyncio.TimeoutError):
                await call()
            assert 0.04 < c.elapsed < PROMPT
            assert not con.is_closed()
            await _assert_usable(con)
        # A timeout that does not expire changes nothing.
        assert await con.fetchval("SELECT pg_sleep(0.05)::text || 'ok'", timeout=5) == "ok"
    finally:
        await con.close()


async def test_prepared_statement_timeout(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare(SLEEP)
        for meth in ("fetch", "fetchrow", "fetchval"):
            with _Clock() as c, pytest.raises(asyncio.TimeoutError):
                await getattr(st, meth)(timeout=0.05)
            assert c.elapsed < PROMPT
            await _assert_usable(con)
        # The statement itself is still good.
        quick = await con.prepare("SELECT pg_sleep($1)::text || 'done'")
        with pytest.raises(asyncio.TimeoutError):
            await quick.fetchval(10, timeout=0.05)
        assert await quick.fetchval(0) == "done"
    finally:
        await con.close()


async def test_command_timeout(dsn):
    con = await ferropg.connect(dsn, command_timeout=0.1)
    try:
        st = await con.prepare(SLEEP)
        calls = [
            lambda: con.fetch(SLEEP),
            lambda: con.fetchval(SLEEP),
            lambda: con.execute(SLEEP),
            lambda: st.fetch(),
        ]
        for call in calls:
            with _Clock() as c, pytest.raises(asyncio.TimeoutError):
                await call()
            assert 0.08 < c.elapsed < PROMPT
            await _assert_usable(con)
        # An explicit timeout overrides the command timeout.
        assert await con.fetchval("SELECT pg_sleep(0.3)::text || 'long'", timeout=5) == "long"
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval(SLEEP, timeout=0.02)
        await _assert_usable(con)
    finally:
        await con.close()


async def test_timeout_covers_prepare(dsn):
    class SlowPrepare(ferropg.Connection):
        async def _get_statement(self, query, timeout, **kwargs):
            await asyncio.sleep(0.5)
            return await super()._get_statement(query, timeout, **kwargs)

    con = await ferropg.connect(dsn, connection_class=SlowPrepare)
    try:
        # Preparing then running takes 1 s. One deadline covers both: the call gives up
        # after 0.3 s, not 0.8 s (0.3 s more after the prepare) or 1 s (no timeout).
        with _Clock() as c, pytest.raises(asyncio.TimeoutError):
            await con.fetchval("SELECT pg_sleep($1)", 0.5, timeout=0.3)
        assert 0.25 < c.elapsed < 0.65
        await _assert_usable(con)
    finally:
        await con.close()


async def test_zero_and_negative_timeouts(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT 1")
        calls = [
            lambda t: con.fetchval("SELECT 1", timeout=t),
            lambda t: con.fetch("SELECT $1::int", 1, timeout=t),
            lambda t: con.execute("SELECT 1", timeout=t),
            lambda t: st.fetchval(timeout=t),
        ]
        for timeout in (0, 0.0, -1, -0.5):
            for call in calls:
                with _Clock() as c, pytest.raises(asyncio.TimeoutError):
                    await call(timeout)
                assert c.elapsed < 0.5
            await _assert_usable(con)
    finally:
        await con.close()


async def test_invalid_timeouts(dsn):
    for command_timeout in ("a", False, True, -1, 0, -0.1):
        with pytest.raises(ValueError, match="invalid command_timeout"):
            await ferropg.connect(dsn, command_timeout=command_timeout)

    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT 1")
        for timeout in ("a", False, True):
            for meth in (con.execute, con.fetch, con.fetchrow, con.fetchval):
                with pytest.raises(ValueError, match="invalid timeout"):
                    await meth("SELECT 1", timeout=timeout)
        with pytest.raises(ValueError):
            await st.fetchval(timeout="a")
        await _assert_usable(con)
    finally:
        await con.close()


async def test_task_cancel(dsn):
    con = await ferropg.connect(dsn)
    try:
        starts = (
            lambda: con.fetch(SLEEP),
            lambda: con.execute(SLEEP),
            lambda: con.fetchval("SELECT pg_sleep($1)", 10),
            lambda: con.fetchrow("SELECT pg_sleep($1)", 10),
        )
        # Twice: the second round finds the statements cached (the unchecked path).
        for start in starts + starts:
            task = asyncio.ensure_future(start())
            await asyncio.sleep(0.1)
            assert not task.done()
            task.cancel()
            with _Clock() as c, pytest.raises(asyncio.CancelledError):
                await task
            assert c.elapsed < PROMPT
            assert not con.is_closed()
            await _assert_usable(con)

        # cancel() after the result arrived changes nothing.
        task = asyncio.ensure_future(con.fetchval("SELECT 5"))
        await asyncio.sleep(0.1)
        task.cancel()
        assert await task == 5
    finally:
        await con.close()


async def test_cancel_inside_transaction_fails_it(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("DROP TABLE IF EXISTS timeout_tx; CREATE TABLE timeout_tx (a int)")
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            async with con.transaction():
                await con.execute("INSERT INTO timeout_tx VALUES (1)")
                task = asyncio.ensure_future(con.fetch(SLEEP))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await con.fetchval("SELECT 1")
        assert not con.is_in_transaction()

        # The same for a timeout.
        tr = con.transaction()
        await tr.start()
        await con.execute("INSERT INTO timeout_tx VALUES (2)")
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval(SLEEP, timeout=0.05)
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await con.fetchval("SELECT 1")
        await tr.rollback()
        assert await con.fetchval("SELECT count(*) FROM timeout_tx") == 0
    finally:
        await con.execute("DROP TABLE IF EXISTS timeout_tx")
        await con.close()


async def test_cursor_timeouts(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            with _Clock() as c, pytest.raises(asyncio.TimeoutError):
                async for _ in con.cursor(SLEEP, timeout=0.05):
                    pass
            assert c.elapsed < PROMPT
        await _assert_usable(con)

        async with con.transaction():
            cur = await con.cursor(SLEEP)
            with pytest.raises(asyncio.TimeoutError):
                await cur.fetch(1, timeout=0.05)
            # The cancelled FETCH failed the transaction.
            with pytest.raises(exceptions.InFailedSQLTransactionError):
                await cur.fetchrow()
        await _assert_usable(con)
    finally:
        await con.close()


async def test_executemany_timeout(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("DROP TABLE IF EXISTS timeout_many; CREATE TABLE timeout_many (a int)")
        with _Clock() as c, pytest.raises(asyncio.TimeoutError):
            await con.executemany(
                "INSERT INTO timeout_many SELECT $1 FROM pg_sleep(0.05)",
                [(i,) for i in range(100)],
                timeout=0.2,
            )
        assert c.elapsed < PROMPT
        await _assert_usable(con)
        assert await con.fetchval("SELECT count(*) FROM timeout_many") == 0
    finally:
        await con.execute("DROP TABLE IF EXISTS timeout_many")
        await con.close()


async def test_repeated_tiny_timeouts(dsn):
    con = await ferropg.connect(dsn)
    try:
        # The cancel request may reach the server after the query is over; it must
        # never hit the next query.
        for i in range(25):
            with pytest.raises(asyncio.TimeoutError):
                await con.fetchval("SELECT pg_sleep(0.5)", timeout=1e-9)
            assert await con.fetchval("SELECT $1::int", i) == i
    finally:
        await con.close()


async def test_close_while_a_query_runs(dsn):
    for how in ("query", "prepared"):
        con = await ferropg.connect(dsn)
        if how == "query":
            task = asyncio.ensure_future(con.fetch(SLEEP))
        else:
            st = await con.prepare(SLEEP)
            task = asyncio.ensure_future(st.fetchval())
        await asyncio.sleep(0.1)
        assert not con.is_closed()
        with _Clock() as c:
            await con.close()
        assert c.elapsed < PROMPT
        assert con.is_closed()
        with pytest.raises((exceptions.QueryCanceledError, exceptions.ConnectionDoesNotExistError)):
            await task
        await con.close()  # again: fine
        with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
            await con.fetchval("SELECT 1")

    # terminate() does not wait: the query fails with the lost connection.
    con = await ferropg.connect(dsn)
    task = asyncio.ensure_future(con.fetchval(SLEEP))
    await asyncio.sleep(0.1)
    con.terminate()
    assert con.is_closed()
    with pytest.raises(exceptions.ConnectionDoesNotExistError, match="closed in the middle"):
        await task
    con.terminate()


async def test_cancel_current_command(dsn):
    loop = asyncio.get_running_loop()
    con = await ferropg.connect(dsn)
    try:
        task = asyncio.ensure_future(con.fetchval(SLEEP))
        await asyncio.sleep(0.1)
        waiter = loop.create_future()
        con._cancel_current_command(waiter)
        with _Clock() as c:
            await asyncio.wait_for(waiter, PROMPT)
            with pytest.raises(exceptions.QueryCanceledError):
                await task
        assert c.elapsed < PROMPT
        await _assert_usable(con)

        # With nothing running it is harmless.
        waiter = loop.create_future()
        con._cancel_current_command(waiter)
        await asyncio.wait_for(waiter, PROMPT)
        await _assert_usable(con)
        assert await con.fetchval("SELECT pg_sleep(0.1)::text || 'x'") == "x"
    finally:
        await con.close()


async def test_one_operation_at_a_time(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT 2")
        first = asyncio.ensure_future(con.fetch("SELECT pg_sleep(0.3), 'first'"))
        await asyncio.sleep(0.05)
        second_calls = [
            lambda: con.execute("SELECT 1"),
            lambda: con.execute("SELECT $1::int", 1),
            lambda: con.fetch("SELECT 1"),
            lambda: con.fetchrow("SELECT 1"),
            lambda: con.fetchval("SELECT 1"),
            lambda: con.prepare("SELECT 1"),
            lambda: con.executemany("SELECT $1::int", [(1,)]),
            lambda: st.fetchval(),
        ]
        for call in second_calls:
            with pytest.raises(exceptions.InterfaceError) as info:
                await call()
            assert str(info.value) == "cannot perform operation: another operation is in progress"
        # The first one is unaffected.
        rows = await first
        assert [tuple(r)[1] for r in rows] == ["first"]
        assert await st.fetchval() == 2

        # Same for two tasks started together.
        a = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.1)::text || 'a'"))
        b = asyncio.ensure_future(con.fetchval("SELECT 'b'"))
        results = await asyncio.gather(a, b, return_exceptions=True)
        assert results[0] == "a"
        assert isinstance(results[1], exceptions.InterfaceError)
    finally:
        await con.close()
