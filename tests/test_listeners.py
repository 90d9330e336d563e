"""Notification listeners, log listeners and termination listeners of a Connection."""

import asyncio

import pytest

import ferropg
from ferropg import exceptions


async def _listening(con):
    return [r[0] for r in await con.fetch("SELECT c FROM pg_listening_channels() c ORDER BY c")]


class _Errors:
    """Collects what reaches the loop's exception handler."""

    def __init__(self):
        self.contexts = []

    def install(self):
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, ctx: self.contexts.append(ctx)
        )
        return self


# ------------------------------------------------------------------- notifications


async def test_notifications_plain_and_async(dsn):
    con = await ferropg.connect(dsn)
    other = await ferropg.connect(dsn)
    try:
        q1, q2, q3 = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()

        def listener1(*args):
            q1.put_nowait(args)

        def listener2(*args):
            q2.put_nowait(args)

        async def listener3(*args):
            await asyncio.sleep(0)
            q3.put_nowait(args)

        await con.add_listener("test", listener1)
        await con.add_listener("test", listener2)
        await con.add_listener("test", listener3)
        assert await _listening(con) == ["test"]
        assert len(con._listeners["test"]) == 3

        await con.execute("NOTIFY test, 'aaaa'")
        own = (con, con.get_server_pid(), "test", "aaaa")
        for q in (q1, q2, q3):
            assert await asyncio.wait_for(q.get(), 5) == own

        # From another backend: that backend's pid, and an empty payload.
        await other.execute("NOTIFY test")
        remote = (con, other.get_server_pid(), "test", "")
        for q in (q1, q2, q3):
            assert await asyncio.wait_for(q.get(), 5) == remote
        assert other.get_server_pid() != con.get_server_pid()

        await con.remove_listener("test", listener2)
        await con.remove_listener("test", listener3)
        # Removing what is not there is a no-op.
        await con.remove_listener("test", listener3)
        await con.remove_listener("nope", listener1)
        assert await _listening(con) == ["test"]
        await other.execute("SELECT pg_notify('test', 'bbbb')")
        assert await asyncio.wait_for(q1.get(), 5) == (
            con,
            other.get_server_pid(),
            "test",
            "bbbb",
        )
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q2.get(), 0.1)
        assert q3.empty()

        # The last callback gone: UNLISTEN, and nothing arrives any more.
        await con.remove_listener("test", listener1)
        assert con._listeners == {}
        assert await _listening(con) == []
        await other.execute("NOTIFY test, 'cccc'")
        await con.execute("SELECT 1")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q1.get(), 0.1)
    finally:
        await con.close()
        await other.close()


async def test_listener_sees_notification_before_the_query_returns(dsn):
    con = await ferropg.connect(dsn)
    try:
        seen = []
        await con.add_listener("order", lambda c, pid, ch, payload: seen.append(payload))
        for i in range(5):
            await con.execute(f"NOTIFY \"order\", '{i}'")
            assert seen == [str(j) for j in range(i + 1)]
    finally:
        await con.close()


@pytest.mark.parametrize("channel", ['12+"34', "Mixed Case", "select", 'a"; DROP TABLE x; --'])
async def test_channel_names_are_quoted(dsn, channel):
    con = await ferropg.connect(dsn)
    other = await ferropg.connect(dsn)
    try:
        q = asyncio.Queue()
        await con.add_listener(channel, lambda *args: q.put_nowait(args))
        assert await _listening(con) == [channel]
        await other.execute("SELECT pg_notify($1, 'hello')", channel)
        assert await asyncio.wait_for(q.get(), 5) == (
            con,
            other.get_server_pid(),
            channel,
            "hello",
        )
    finally:
        await con.close()
        await other.close()


async def test_listener_errors_reach_the_loop_handler(dsn):
    errors = _Errors().install()
    con = await ferropg.connect(dsn)
    try:
        got = []

        def bad(*args):
            raise ValueError("sync boom")

        async def bad_async(*args):
            raise KeyError("async boom")

        await con.add_listener("err", bad)
        await con.add_listener("err", bad_async)
        await con.add_listener("err", lambda *args: got.append(args[3]))
        await con.execute("NOTIFY err, 'x'")
        for _ in range(20):
            if len(errors.contexts) >= 2:
                break
            await asyncio.sleep(0.01)
        # Every callback ran; the connection is unharmed.
        assert got == ["x"]
        kinds = sorted(type(c["exception"]).__name__ for c in errors.contexts)
        assert kinds == ["KeyError", "ValueError"]
        assert all(c["connection"] is con for c in errors.contexts)
        assert all("listener" in c["message"] for c in errors.contexts)
        assert await con.fetchval("SELECT 7") == 7

        with pytest.raises(exceptions.InterfaceError, match="expected a callable"):
            await con.add_listener("err", 42)
        assert "err" in con._listeners and len(con._listeners["err"]) == 3
    finally:
        await con.close()
    with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
        await con.add_listener("late", print)
    # Removing from a closed connection is silently nothing.
    await con.remove_listener("err", bad)


# -------------------------------------------------------------------- log listeners


async def test_log_listener_notice_and_warning(dsn):
    con = await ferropg.connect(dsn, server_settings={"client_min_messages": "notice"})
    try:
        q1, q2 = asyncio.Queue(), asyncio.Queue()

        def listener(c, message):
            q1.put_nowait((c, type(message), message))

        async def async_listener(c, message):
            q2.put_nowait((c, type(message), message))

        con.add_log_listener(listener)
        con.add_log_listener(async_listener)
        await con.execute("DO $$ BEGIN RAISE NOTICE 'catch me!'; END; $$ LANGUAGE plpgsql")
        await con.execute(
            "DO $$ BEGIN RAISE WARNING 'careful' USING DETAIL = 'd', HINT = 'h'; END; $$"
        )
        for q in (q1, q2):
            c, cls, notice = await asyncio.wait_for(q.get(), 5)
            assert c is con
            assert cls is exceptions.PostgresLogMessage
            assert notice.severity == "NOTICE" and notice.sqlstate == "00000"
            assert notice.message == "catch me!"
            assert notice.server_source_function == "exec_stmt_raise"
            assert "inline_code_block" in notice.context
            c, cls, warning = await asyncio.wait_for(q.get(), 5)
            assert cls is exceptions.PostgresWarning
            assert isinstance(warning, exceptions.PostgresLogMessage)
            assert warning.severity == "WARNING" and warning.sqlstate == "01000"
            assert (warning.message, warning.detail, warning.hint) == ("careful", "d", "h")

        # A warning SQLSTATE with its own class, and one without.
        await con.execute("DO $$ BEGIN RAISE WARNING 'w' USING ERRCODE = '01004'; END $$")
        _, cls, msg = await asyncio.wait_for(q1.get(), 5)
        assert cls is exceptions.StringDataRightTruncation and msg.sqlstate == "01004"
        await con.execute("DO $$ BEGIN RAISE WARNING 'w' USING ERRCODE = '99999'; END $$")
        _, cls, msg = await asyncio.wait_for(q1.get(), 5)
        assert isinstance(msg, exceptions.PostgresWarning) and msg.sqlstate == "99999"
        while not q2.empty():
            q2.get_nowait()

        con.remove_log_listener(listener)
        con.remove_log_listener(async_listener)
        con.remove_log_listener(async_listener)  # not there: no-op
        assert len(con._log_listeners) == 0
        await con.execute("DO $$ BEGIN RAISE NOTICE 'unheard'; END $$")
        await asyncio.sleep(0.05)
        assert q1.empty() and q2.empty()
    finally:
        await con.close()


async def test_log_listener_runs_before_the_query_returns(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute(
            "CREATE FUNCTION pg_temp.noisy(i int) RETURNS int LANGUAGE plpgsql AS $$"
            " BEGIN RAISE NOTICE '1_%', i; PERFORM pg_sleep(0.02);"
            " RAISE NOTICE '2_%', i; RETURN i; END $$"
        )
        cur = None
        seen = []
        con.add_log_listener(lambda c, m: seen.append((cur, m.message)))
        for cur in range(5):
            await con.execute("SELECT pg_temp.noisy($1)", cur)
        assert seen == [(i, f"{n}_{i}") for i in range(5) for n in (1, 2)]
    finally:
        await con.close()


async def test_log_listener_errors_and_closed_connection(dsn):
    errors = _Errors().install()
    con = await ferropg.connect(dsn)
    try:
        heard = []

        def bad(c, m):
            raise RuntimeError("listener failed")

        con.add_log_listener(bad)
        con.add_log_listener(lambda c, m: heard.append(m.message))
        await con.execute("DO $$ BEGIN RAISE NOTICE 'n'; END $$")
        assert heard == ["n"]
        assert [type(c["exception"]) for c in errors.contexts] == [RuntimeError]
        assert "log listener" in errors.contexts[0]["message"]
        assert await con.fetchval("SELECT 1") == 1
        with pytest.raises(exceptions.InterfaceError, match="expected a callable"):
            con.add_log_listener("not callable")
    finally:
        await con.close()
    with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
        con.add_log_listener(print)


# ------------------------------------------------------------ termination listeners


async def test_termination_listener_on_terminate(dsn):
    con = await ferropg.connect(dsn)
    calls = []

    def cb(c):
        calls.append(("sync", c))

    async def acb(c):
        calls.append(("async", c))

    def removed(c):
        calls.append(("removed", c))

    con.add_termination_listener(cb)
    con.add_termination_listener(acb)
    con.add_termination_listener(removed)
    con.remove_termination_listener(removed)
    con.terminate()
    # Scheduled, not called inline.
    assert calls == []
    await asyncio.sleep(0.05)
    assert sorted(calls, key=lambda x: x[0]) == [("async", con), ("sync", con)]
    assert con.is_closed()
    # Once only, whatever else happens to the connection afterwards.
    con.terminate()
    await con.close()
    await asyncio.sleep(0.05)
    assert len(calls) == 2


async def test_termination_listener_on_close(dsn):
    con = await ferropg.connect(dsn)
    called = []
    con.add_termination_listener(called.append)
    await con.close()
    await asyncio.sleep(0)
    assert called == [con]


async def test_termination_listener_when_the_server_kills_the_backend(dsn):
    con = await ferropg.connect(dsn)
    killer = await ferropg.connect(dsn)
    try:
        gone = asyncio.Event()
        seen = []

        async def on_gone(c):
            seen.append(c)
            gone.set()

        con.add_termination_listener(on_gone)
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", con.get_server_pid())
        # Nothing is in flight on con: the loss is noticed from the socket alone.
        await asyncio.wait_for(gone.wait(), 5)
        assert seen == [con]
        assert con.is_closed()
        with pytest.raises(exceptions.InterfaceError):
            await con.fetchval("SELECT 1")
    finally:
        await killer.close()
        con.terminate()
