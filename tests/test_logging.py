"""Query loggers: add_query_logger / remove_query_logger / query_logger and LoggedQuery."""

import asyncio

import pytest

import ferropg
from ferropg import exceptions
from ferropg._callbacks import LoggedQuery


async def test_logged_query_fields(dsn):
    con = await ferropg.connect(dsn)
    try:
        records = []
        con.add_query_logger(records.append)
        assert await con.fetchval("SELECT $1::int + $2::int", 1, 2, timeout=10) == 3
        await con.execute("SELECT pg_sleep(0.05)")
        rows = await con.fetch("SELECT generate_series(1, $1::int)", 3)
        assert len(rows) == 3
        # Loggers are scheduled, not called inline.
        assert len(records) <= 3
        await asyncio.sleep(0)
        assert [r.query for r in records] == [
            "SELECT $1::int + $2::int",
            "SELECT pg_sleep(0.05)",
            "SELECT generate_series(1, $1::int)",
        ]
        first, slow, last = records
        assert isinstance(first, LoggedQuery)
        assert first._fields == (
            "query",
            "args",
            "timeout",
            "elapsed",
            "exception",
            "conn_addr",
            "conn_params",
        )
        assert first.args == (1, 2) and first.timeout == 10
        assert slow.args == () and slow.timeout is None
        assert last.args == (3,)
        assert all(r.exception is None for r in records)
        assert slow.elapsed >= 0.05 > first.elapsed >= 0
        assert all(r.conn_addr == con._addr and r.conn_params is con._params for r in records)

        con.remove_query_logger(records.append)
        con.remove_query_logger(records.append)  # not there: no-op
        await con.execute("SELECT 1")
        await asyncio.sleep(0)
        assert len(records) == 3
    finally:
        await con.close()


async def test_failed_query_is_logged_and_still_raises(dsn):
    con = await ferropg.connect(dsn)
    try:
        records = []
        with con.query_logger(records.append):
            with pytest.raises(exceptions.UndefinedColumnError):
                await con.execute("SELECT x")
            with pytest.raises(exceptions.UndefinedColumnError):
                await con.fetch("SELECT x FROM (SELECT $1::int) t", 1)
            with pytest.raises(asyncio.TimeoutError):
                await con.execute("SELECT pg_sleep(5)", timeout=0.05)
        await asyncio.sleep(0)
        assert [type(r.exception) for r in records] == [
            exceptions.UndefinedColumnError,
            exceptions.UndefinedColumnError,
            asyncio.TimeoutError,
        ]
        assert records[1].args == (1,)
        assert records[2].timeout == 0.05
    finally:
        con.terminate()


async def test_query_logger_context_and_async_loggers(dsn):
    con = await ferropg.connect(dsn)
    try:
        q = asyncio.Queue()

        async def async_logger(record):
            await q.put(record.query)

        inner = []
        with con.query_logger(async_logger):
            assert len(con._query_loggers) == 1
            await con.execute("SELECT 1")
            with con.query_logger(inner.append):
                assert len(con._query_loggers) == 2
                await con.execute("SELECT 2")
            assert len(con._query_loggers) == 1
        assert len(con._query_loggers) == 0
        assert await asyncio.wait_for(q.get(), 5) == "SELECT 1"
        assert await asyncio.wait_for(q.get(), 5) == "SELECT 2"
        assert [r.query for r in inner] == ["SELECT 2"]

        # The context removes its logger when the block raises.
        with pytest.raises(exceptions.UndefinedColumnError):
            with con.query_logger(inner.append):
                await con.execute("SELECT x")
        assert len(con._query_loggers) == 0
        await con.execute("SELECT 3")
        await asyncio.sleep(0)
        assert [r.query for r in inner] == ["SELECT 2", "SELECT x"]

        with pytest.raises(exceptions.InterfaceError, match="expected a callable"):
            con.add_query_logger(None)
    finally:
        await con.close()


async def test_logger_errors_do_not_break_queries(dsn):
    contexts = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: contexts.append(ctx))
    con = await ferropg.connect(dsn)
    try:

        def bad(record):
            raise ValueError(record.query)

        con.add_query_logger(bad)
        assert await con.fetchval("SELECT 5") == 5
        await asyncio.sleep(0)
        assert [str(c["exception"]) for c in contexts] == ["SELECT 5"]
        assert "query logger" in contexts[0]["message"]
    finally:
        await con.close()


async def test_no_logger_costs_a_shared_noop(dsn):
    con = await ferropg.connect(dsn)
    try:
        a = con._log_query("SELECT 1", (), None)
        b = con._log_query("SELECT 2", (1,), 5)
        assert a is b
        with a:
            pass
        # Exceptions pass through it untouched.
        with pytest.raises(KeyError):
            with a:
                raise KeyError
        con.add_query_logger(print)
        assert con._log_query("SELECT 1", (), None) is not a
    finally:
        await con.close()
    # Closing drops the loggers with the other registries.
    assert len(con._query_loggers) == 0
