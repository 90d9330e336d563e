"""create_pool() and Pool: acquire/release, proxies, reset on release, hooks, limits,
the min_size floor, timeouts and cancellation, closing; on both loops."""

import asyncio
import gc
import inspect
import io
import logging
import warnings
import weakref

import pytest

import ferropg
from ferropg import exceptions
from ferropg import pool as pg_pool

RELEASED = r"cannot call Connection\.{}\(\): connection has been released back to the pool"


async def wait_until(predicate, timeout=5.0):
    """Polls ``predicate()`` until it is true; fails after ``timeout`` seconds."""

    async def poll():
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def collect_loop_errors():
    """Routes the running loop's exception handler into a list, which it returns."""
    errors = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    return errors


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_size": 0}, "max_size is expected to be greater than zero"),
        ({"min_size": -1}, "min_size is expected to be greater or equal to zero"),
        ({"min_size": 3, "max_size": 2}, "min_size is greater than max_size"),
        ({"init_size": -1, "min_size": 0}, "init_size is expected to be greater or equal to zero"),
        ({"init_size": 5, "max_size": 3, "min_size": 1}, "init_size is greater than max_size"),
        ({"init_size": 1, "min_size": 2, "max_size": 5}, "init_size is smaller than min_size"),
        ({"max_queries": 0}, "max_queries is expected to be greater than zero"),
        (
            {"max_inactive_connection_lifetime": -1},
            "max_inactive_connection_lifetime is expected to be greater or equal to zero",
        ),
    ],
)
def test_create_pool_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ferropg.create_pool("postgresql://nowhere", **kwargs)


def test_create_pool_rejects_bad_classes_and_hooks():
    with pytest.raises(TypeError, match="connection_class is expected to be a subclass"):
        ferropg.create_pool(connection_class=dict)
    with pytest.raises(TypeError, match="connection_class is expected to be a subclass"):
        ferropg.create_pool(connection_class="Connection")
    with pytest.raises(TypeError, match="record_class is expected to be a subclass"):
        ferropg.create_pool(record_class=tuple)
    for hook in ("connect", "setup", "init", "reset"):
        with pytest.raises(TypeError, match=f"{hook} is expected to be a callable"):
            ferropg.create_pool(**{hook: 42})


def test_create_pool_defaults_and_getters():
    pool = ferropg.create_pool("postgresql://nowhere")
    assert isinstance(pool, ferropg.Pool)
    assert (pool.get_init_size(), pool.get_min_size(), pool.get_max_size()) == (10, 10, 10)
    assert pool.get_size() == 0 and pool.get_idle_size() == 0
    assert not pool.is_closing()
    pool = ferropg.create_pool(init_size=3, min_size=1, max_size=4)
    assert (pool.get_init_size(), pool.get_min_size(), pool.get_max_size()) == (3, 1, 4)
    sig = inspect.signature(ferropg.create_pool)
    assert list(sig.parameters)[:2] == ["dsn", "init_size"]
    assert sig.parameters["max_inactive_connection_lifetime"].default == 300.0
    assert sig.parameters["max_queries"].default == 50000


# ------------------------------------------------------------- acquire/release


async def test_acquire_release_and_sizes(dsn):
    pool = await ferropg.create_pool(dsn, init_size=2, min_size=1, max_size=3)
    try:
        assert pool.get_size() == 2 and pool.get_idle_size() == 2
        # Awaiting an initialised pool again is harmless.
        assert await pool is pool

        con = await pool.acquire()
        assert isinstance(con, pg_pool.PoolConnectionProxy)
        assert pool.get_idle_size() == 1
        assert await con.fetchval("SELECT 1 + 1") == 2
        assert repr(con._con) in repr(con)
        pid = con.get_server_pid()

        async with pool.acquire() as con2, pool.acquire() as con3:
            assert pool.get_size() == 3 and pool.get_idle_size() == 0
            assert len({pid, con2.get_server_pid(), con3.get_server_pid()}) == 3
        assert pool.get_idle_size() == 2

        await pool.release(con)
        assert "[released]" in repr(con)
        assert con._con is None
        # Releasing twice is a no-op.
        await pool.release(con)
        assert pool._queue.qsize() == 3

        with pytest.raises(exceptions.InterfaceError, match=RELEASED.format("fetchval")):
            con.fetchval("SELECT 1")  # raised at call time, no await needed
        with pytest.raises(exceptions.InterfaceError, match=RELEASED.format("terminate")):
            con.terminate()
        with pytest.raises(AttributeError, match="released back to the pool"):
            con._protocol  # noqa: B018

        # The most recently released live connection comes out first.
        async with pool.acquire() as again:
            assert again.get_server_pid() == pid
    finally:
        await pool.close()
    assert pool.is_closing()


async def test_acquire_context_misuse_and_pool_states(dsn):
    pool = ferropg.create_pool(dsn, min_size=1, max_size=1)
    with pytest.raises(exceptions.InterfaceError, match="pool is not initialized"):
        await pool.acquire()
    with pytest.raises(exceptions.InterfaceError, match="pool is not initialized"):
        await pool.close()

    first = asyncio.ensure_future(pool)
    await asyncio.sleep(0)
    with pytest.raises(exceptions.InterfaceError, match="being initialized, but not yet ready"):
        await pool.fetchval("SELECT 1")
    with pytest.raises(exceptions.InterfaceError, match="being initialized in another task"):
        await pool
    assert await first is pool

    ctx = pool.acquire()
    async with ctx as con:
        with pytest.raises(exceptions.InterfaceError, match="a connection is already acquired"):
            async with ctx:
                pass
        assert await con.fetchval("SELECT 7") == 7
    with pytest.raises(exceptions.InterfaceError, match="a connection is already acquired"):
        async with ctx:
            pass

    await pool.close()
    with pytest.raises(exceptions.InterfaceError, match="pool is closed"):
        await pool.acquire()
    await pool.close()  # closing twice is harmless
    pool.terminate()


async def test_release_rejects_foreign_connections(dsn):
    async with (
        ferropg.create_pool(dsn, min_size=1, max_size=1) as p1,
        ferropg.create_pool(dsn, min_size=1, max_size=1) as p2,
    ):
        con = await p1.acquire()
        with pytest.raises(exceptions.InterfaceError, match="is not a member of this pool"):
            await p1.release(con._con)
        with pytest.raises(exceptions.InterfaceError, match="is not a member of this pool"):
            await p2.release(con)
        with pytest.raises(exceptions.InterfaceError, match="is not a member of this pool"):
            await p1.release("con")
        await p1.release(con)


async def test_proxy_forwards_connection_methods(dsn):
    class MyConnection(ferropg.Connection):
        async def fetchval(self, query, *args, **kwargs):
            return ("mine", await super().fetchval(query, *args, **kwargs))

        def extra(self):
            return "extra"

    async with ferropg.create_pool(
        dsn, min_size=1, max_size=1, connection_class=MyConnection
    ) as pool:
        async with pool.acquire() as con:
            assert type(con._con) is MyConnection
            # The subclass's override runs; names, docs and signatures are Connection's.
            assert await con.fetchval("SELECT 5") == ("mine", 5)
            assert con.execute.__name__ == "execute"
            assert con.execute.__doc__ == ferropg.Connection.execute.__doc__
            assert str(inspect.signature(con.execute)) == str(inspect.signature(con._con.execute))
            assert con.extra() == "extra"  # through __getattr__
            assert con.is_closed() is False
            assert con._holder is pool._holders[0]
            assert pool._holders[0]._con is con._con


async def test_listener_callbacks_receive_the_proxy(dsn):
    async with ferropg.create_pool(dsn, min_size=2, max_size=2) as pool:
        got = asyncio.get_running_loop().create_future()

        def listener(*args):
            got.set_result(args)

        async with pool.acquire() as con1, pool.acquire() as con2:
            await con1.add_listener("pool_chan", listener)
            await con2.execute("NOTIFY pool_chan, 'hi'")
            args = await asyncio.wait_for(got, 5)
            assert args == (con1, con2.get_server_pid(), "pool_chan", "hi")
            assert args[0] is con1
            await con1.remove_listener("pool_chan", listener)
            assert con1._con._listeners == {}


# ------------------------------------------------------------ pool shortcuts


async def test_pool_query_shortcuts(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        assert await pool.execute("SELECT 1") == "SELECT 1"
        await pool.execute(
            "DROP TABLE IF EXISTS pool_short; CREATE TABLE pool_short(a int, b text)"
        )
        try:
            assert await pool.execute("INSERT INTO pool_short VALUES ($1, $2)", 1, "x") == (
                "INSERT 0 1"
            )
            assert (
                await pool.executemany(
                    "INSERT INTO pool_short VALUES ($1, $2)", [(2, "y"), (3, "z")]
                )
                is None
            )
            rows = await pool.fetch("SELECT a, b FROM pool_short ORDER BY a")
            assert [tuple(r) for r in rows] == [(1, "x"), (2, "y"), (3, "z")]
            assert tuple(await pool.fetchrow("SELECT * FROM pool_short WHERE a = $1", 2)) == (
                2,
                "y",
            )
            assert await pool.fetchrow("SELECT * FROM pool_short WHERE a = 0") is None
            assert await pool.fetchval("SELECT b FROM pool_short WHERE a = $1", 3) == "z"
            assert await pool.fetchval("SELECT a, b FROM pool_short WHERE a = 1", column=1) == "x"
            many = await pool.fetchmany("SELECT $1::int * 2", [(1,), (2,)])
            assert [r[0] for r in many] == [2, 4]

            buf = io.BytesIO()
            assert await pool.copy_from_table("pool_short", output=buf, columns=["a"]) == "COPY 3"
            assert buf.getvalue() == b"1\n2\n3\n"
            buf = io.BytesIO()
            assert (
                await pool.copy_from_query("SELECT b FROM pool_short WHERE a > $1", 1, output=buf)
                == "COPY 2"
            )
            assert buf.getvalue() == b"y\nz\n"
            assert await pool.copy_to_table("pool_short", source=io.BytesIO(b"4\tw\n")) == "COPY 1"
            assert (
                await pool.copy_records_to_table(
                    "pool_short", records=[(5, "v")], columns=["a", "b"]
                )
                == "COPY 1"
            )
            assert await pool.fetchval("SELECT count(*) FROM pool_short") == 5

            with pytest.raises(exceptions.UndefinedTableError):
                await pool.fetch("SELECT * FROM no_such_pool_table")
            # An error does not leak the connection.
            assert pool.get_idle_size() == 1
            assert await pool.fetchval("SELECT 1", timeout=5) == 1
        finally:
            await pool.execute("DROP TABLE pool_short")


# ----------------------------------------------------------- reset on release


async def test_release_resets_the_session(dsn):
    errors = collect_loop_errors()
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        async with pool.acquire() as con:
            raw = con._con
            await con.execute("SET application_name = 'dirty'")
            await con.fetchval("SELECT pg_advisory_lock(4242)")
            tr = con.transaction()
            await tr.start()
            assert raw._top_xact is tr
            await con.execute("CREATE TEMP TABLE pool_reset_t(a int)")

        # The unmanaged transaction was rolled back and reported.
        messages = [e["message"] for e in errors]
        assert any("Resetting connection with an active transaction" in m for m in messages)
        assert raw._top_xact is None
        # Transactions made before the release are dead.
        with pytest.raises(exceptions.InterfaceError, match="released back to the pool"):
            await tr.commit()

        async with pool.acquire() as con:
            assert con._con is raw  # the same connection, cleaned
            assert not con.is_in_transaction()
            assert await con.fetchval("SHOW application_name") != "dirty"
            assert await con.fetchval("SELECT to_regclass('pool_reset_t')") is None
            async with _other(dsn) as other:
                assert await other.fetchval("SELECT pg_try_advisory_lock(4242)") is True

        # A transaction managed by `async with` is rolled back silently.
        errors.clear()
        with pytest.raises(RuntimeError):
            async with pool.acquire() as con:
                async with con.transaction():
                    await con.execute("SELECT 1")
                    raise RuntimeError
        assert errors == []
        async with pool.acquire() as con:
            assert not con.is_in_transaction()


class _other:
    """``async with _other(dsn) as con``: a plain connection closed at the end."""

    def __init__(self, dsn):
        self._dsn = dsn

    async def __aenter__(self):
        self._con = await ferropg.connect(self._dsn)
        return self._con

    async def __aexit__(self, *exc):
        await self._con.close()


async def test_dangling_listeners_warn_and_are_removed(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        with pytest.warns(
            exceptions.InterfaceWarning,
            match="is being released to the pool but has 2 active notification listeners",
        ):
            async with pool.acquire() as con:
                raw = con._con
                await con.add_listener("pool_a", lambda *a: None)
                await con.add_listener("pool_b", lambda *a: None)
        assert raw._listeners == {}
        with pytest.warns(
            exceptions.InterfaceWarning,
            match="is being released to the pool but has 1 active log listener",
        ):
            async with pool.acquire() as con:
                con.add_log_listener(lambda *a: None)
        assert raw._log_listeners == {}
        # No listener, no warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            async with pool.acquire() as con:
                await con.fetchval("SELECT 1")


async def test_user_reset_hook(dsn):
    calls = []

    async def reset(con):
        calls.append((type(con), con.is_in_transaction()))
        await con.execute("RESET application_name")

    errors = collect_loop_errors()
    async with ferropg.create_pool(dsn, min_size=1, max_size=1, reset=reset) as pool:
        con = await pool.acquire()
        raw = con._con
        default = await con.fetchval("SHOW application_name")
        await con.execute("SET application_name = 'x'")
        await con.add_listener("pool_r", lambda *a: None)
        await con.execute("BEGIN")  # an unmanaged transaction
        with pytest.warns(exceptions.InterfaceWarning, match="1 active notification listener"):
            await pool.release(con)
        # The hook got the raw connection after the rollback; listeners were dropped.
        assert calls == [(ferropg.Connection, False)]
        assert raw._listeners == {}
        assert any("active transaction" in e["message"] for e in errors)
        assert await pool.fetchval("SHOW application_name") == default
        assert len(calls) == 2


async def test_failed_reset_terminates_the_connection(dsn):
    async def reset(con):
        raise ZeroDivisionError

    async with ferropg.create_pool(dsn, min_size=0, init_size=1, max_size=1, reset=reset) as pool:
        con = await pool.acquire()
        raw = con._con
        with pytest.raises(ZeroDivisionError):
            await pool.release(con)
        assert raw.is_closed()
        assert pool._holders[0]._con is None
        assert pool._holders[0]._in_use is None
        assert pool._queue.qsize() == 1
        con = await pool.acquire(timeout=5)
        assert con._con is not raw
        with pytest.raises(ZeroDivisionError):
            await pool.release(con)


# ----------------------------------------------------------------------- hooks


async def test_connect_init_setup_hooks(dsn):
    log = []

    async def connect(*args, **kwargs):
        log.append(("connect", kwargs["loop"] is asyncio.get_running_loop()))
        return await ferropg.connect(*args, **kwargs)

    async def init(con):
        assert type(con) is ferropg.Connection
        log.append("init")
        await con.execute("SET application_name = 'from_init'")

    async def setup(proxy):
        assert isinstance(proxy, pg_pool.PoolConnectionProxy)
        log.append("setup")

    async with ferropg.create_pool(
        dsn, init_size=1, min_size=0, max_size=2, connect=connect, init=init, setup=setup
    ) as pool:
        assert log == [("connect", True), "init"]
        async with pool.acquire() as con:
            # init's session setting survives the acquire; RESET ALL on release undoes
            # it (a pool user wants settings in server_settings or setup instead).
            assert await con.fetchval("SHOW application_name") == "from_init"
        async with pool.acquire() as c1, pool.acquire() as c2:
            assert c1._con is not c2._con
        assert log.count("init") == 2 and log.count(("connect", True)) == 2
        assert log.count("setup") == 3


async def test_connect_hook_must_return_a_connection(dsn):
    async def bad_connect(*args, **kwargs):
        return 1

    pool = ferropg.create_pool(dsn, min_size=1, max_size=1, connect=bad_connect)
    with pytest.raises(
        exceptions.InterfaceError,
        match="expected pool connect callback to return an instance of "
        "'ferropg.connection.Connection', got 'int'",
    ):
        await pool
    # A failed initialisation leaves the pool closed.
    assert pool.is_closing()
    with pytest.raises(exceptions.InterfaceError, match="pool is closed"):
        await pool.acquire()


async def test_failing_setup_and_init_close_the_connection(dsn):
    class Boom(Exception):
        pass

    seen = []

    async def setup(proxy):
        seen.append(proxy)
        if len(seen) == 1:
            raise Boom

    async with ferropg.create_pool(dsn, min_size=1, max_size=1, setup=setup) as pool:
        with pytest.raises(Boom):
            await pool.acquire()
        assert seen[0].is_closed()
        assert pool._queue.qsize() == 1
        async with pool.acquire() as con:
            assert con is seen[1]
            assert await con.fetchval("SELECT 1") == 1

    inits = []

    async def init(con):
        inits.append(con)
        if len(inits) == 1:
            raise Boom

    async with ferropg.create_pool(dsn, init_size=0, min_size=0, max_size=1, init=init) as pool:
        assert pool.get_size() == 0
        with pytest.raises(Boom):
            await pool.acquire()
        assert inits[0].is_closed()
        async with pool.acquire() as con:
            assert con._con is inits[1]


async def test_init_failure_terminates_opened_connections(dsn):
    opened = []
    calls = []

    async def connect(*args, **kwargs):
        calls.append(None)
        if len(calls) == 3:
            # After the other connections are made, so that none is cut off mid-way.
            await asyncio.sleep(0.2)
            raise OSError("no more")
        con = await ferropg.connect(*args, **kwargs)
        opened.append(con)
        return con

    pool = ferropg.create_pool(dsn, min_size=3, max_size=3, connect=connect)
    with pytest.raises(OSError, match="no more"):
        await pool
    assert len(opened) == 2
    await wait_until(lambda: all(c.is_closed() for c in opened))
    assert pool.is_closing() and pool.get_size() == 0


# ---------------------------------------------------------------------- limits


async def test_max_queries_replaces_connections(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1, max_queries=2) as pool:
        async with pool.acquire() as con:
            first = con._con
            await con.fetchval("SELECT 1")
        async with pool.acquire() as con:
            assert con._con is first  # only one query counted at its release
            await con.fetchval("SELECT 1")
        assert first.is_closed()
        async with pool.acquire(timeout=5) as con:
            assert con._con is not first
            assert await con.fetchval("SELECT 2") == 2


async def test_expire_connections_and_set_connect_args(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        # In use: replaced when released.
        con = await pool.acquire()
        old = con._con
        pool.set_connect_args(dsn, server_settings={"application_name": "pool_args_1"})
        await pool.expire_connections()
        await pool.release(con)
        assert old.is_closed()
        async with pool.acquire() as con:
            assert con.get_settings().application_name == "pool_args_1"
            second = con._con

        # Idle: replaced on the next acquire.
        pool.set_connect_args(dsn, server_settings={"application_name": "pool_args_2"})
        await pool.expire_connections()
        async with pool.acquire() as con:
            assert con._con is not second
            assert con.get_settings().application_name == "pool_args_2"
        await wait_until(second.is_closed)


async def test_inactive_connections_above_the_floor_close(dsn):
    async with ferropg.create_pool(
        dsn, init_size=3, min_size=1, max_size=3, max_inactive_connection_lifetime=0.1
    ) as pool:
        cons = [await pool.acquire() for _ in range(3)]
        for c in cons:
            await pool.release(c)
        assert pool.get_size() == 3
        await wait_until(lambda: pool.get_size() == 1)
        await asyncio.sleep(0.2)
        assert pool.get_size() == 1  # the floor stays
        kept = next(h._con for h in pool._holders if h.is_connected())
        async with pool.acquire() as con:
            assert con._con is kept

    async with ferropg.create_pool(
        dsn, init_size=2, min_size=0, max_size=2, max_inactive_connection_lifetime=0.1
    ) as pool:
        # Never-acquired connections time out too; a query longer than the
        # lifetime does not count as inactivity.
        async with pool.acquire() as con:
            busy = con._con
            await con.execute("SELECT pg_sleep(0.2)")
        assert not busy.is_closed()
        await wait_until(lambda: pool.get_size() == 0)
        assert all(h._con is None for h in pool._holders)
        assert await pool.fetchval("SELECT 3") == 3


async def test_live_connections_are_handed_out_first(dsn):
    async with ferropg.create_pool(dsn, init_size=2, min_size=0, max_size=2) as pool:
        live = await pool.acquire()
        doomed = await pool.acquire()
        live_raw = live._con
        await pool.release(live)
        await doomed.close()  # its holder is now on top of the queue, empty
        assert pool._queue.qsize() == 2 and pool.get_size() == 1
        async with pool.acquire() as con:
            assert con._con is live_raw
            assert pool.get_size() == 1  # nothing new was opened
        # With no live connection left, an empty holder connects.
        async with pool.acquire() as a, pool.acquire() as b:
            assert {a._con, b._con} >= {live_raw} and pool.get_size() == 2


async def test_zero_lifetime_keeps_connections(dsn):
    async with ferropg.create_pool(
        dsn, init_size=2, min_size=0, max_size=2, max_inactive_connection_lifetime=0
    ) as pool:
        assert all(h._inactive_callback is None for h in pool._holders)
        await pool.fetchval("SELECT 1")
        assert pool.get_size() == 2


# ------------------------------------------------------------------- the floor


async def test_floor_is_restored_after_losses(dsn):
    async with ferropg.create_pool(
        dsn, init_size=2, min_size=2, max_size=3, max_inactive_connection_lifetime=0
    ) as pool:
        old = [h._con for h in pool._holders if h._con is not None]
        assert len(old) == 2
        # Terminated through the raw connection: the pool notices and reconnects.
        old[0].terminate()
        # Killed by the server while idle.
        async with _other(dsn) as other:
            await other.execute("SELECT pg_terminate_backend($1)", old[1].get_server_pid())
        await wait_until(lambda: old[1].is_closed())
        await wait_until(
            lambda: (
                pool.get_size() == 2
                and all(h._con not in old for h in pool._holders if h.is_connected())
            )
        )
        assert await pool.fetchval("SELECT 42") == 42
        assert pool._maintenance_task is None

        # Closed through the proxy while in use: the holder is free at once.
        async with pool.acquire() as con:
            await con.close()
            assert con._con is None
            assert pool.get_idle_size() == 1
        await wait_until(lambda: pool.get_size() == 2)


async def test_server_closing_an_acquired_connection(dsn):
    async with ferropg.create_pool(dsn, min_size=0, init_size=1, max_size=1) as pool:
        con = await pool.acquire()
        terminated = asyncio.Event()
        con.add_termination_listener(lambda c: terminated.set())
        async with _other(dsn) as other:
            await other.execute("SELECT pg_terminate_backend($1)", con.get_server_pid())
        await asyncio.wait_for(terminated.wait(), 5)
        await wait_until(lambda: pool._holders[0]._con is None)
        # The holder went back to the pool; releasing the dead proxy is harmless.
        await pool.release(con)
        assert pool._queue.qsize() == 1
        async with pool.acquire(timeout=5) as con:
            assert await con.fetchval("SELECT 1") == 1


async def test_floor_reconnect_retries_with_backoff(dsn, monkeypatch, caplog):
    state = {"offline": False, "attempts": 0}
    delays = []
    real_sleep = asyncio.sleep

    async def connect(*args, **kwargs):
        if state["offline"]:
            state["attempts"] += 1
            if state["attempts"] >= 8:
                state["offline"] = False
            raise OSError("server temporarily unavailable")
        return await ferropg.connect(*args, **kwargs)

    async with ferropg.create_pool(dsn, min_size=1, max_size=1, connect=connect) as pool:

        async def recording_sleep(delay, *args):
            # Only the floor task's back-off is recorded (and shortened).
            if asyncio.current_task() is pool._maintenance_task:
                delays.append(delay)
                assert pool.get_size() == 0 and pool._queue.qsize() == 1
                delay = 0.001
            return await real_sleep(delay, *args)

        monkeypatch.setattr(asyncio, "sleep", recording_sleep)
        state["offline"] = True
        with caplog.at_level(logging.WARNING, logger="ferropg.pool"):
            pool._holders[0]._con.terminate()
            await wait_until(lambda: pool.get_size() == 1)
        assert state["attempts"] == 8
        assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
        records = [r for r in caplog.records if r.name == "ferropg.pool"]
        assert len(records) == 8
        assert all(
            r.getMessage() == "Failed to restore the pool connection floor; retrying"
            and isinstance(r.exc_info[1], OSError)
            for r in records
        )
        await wait_until(lambda: pool._maintenance_task is None)
        assert await pool.fetchval("SELECT 42") == 42


async def test_shutdown_cancels_the_floor_task(dsn):
    async def check(action):
        started = asyncio.Event()
        cancelled = asyncio.Event()
        pool = None

        async def connect(*args, **kwargs):
            if pool is not None:
                started.set()
                try:
                    await asyncio.Future()
                finally:
                    cancelled.set()
            return await ferropg.connect(*args, **kwargs)

        pool = await ferropg.create_pool(dsn, min_size=1, max_size=1, connect=connect)
        pool._holders[0]._con.terminate()
        await asyncio.wait_for(started.wait(), 5)
        # The floor task holds the only holder: acquirers wait.
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.05)
        if action == "close":
            await pool.close()
        else:
            pool.terminate()
        await asyncio.wait_for(cancelled.wait(), 5)
        assert pool.is_closing() and pool.get_size() == 0
        await wait_until(lambda: pool._maintenance_task is None)
        assert pool._queue.qsize() == 1

    await check("close")
    await check("terminate")


# -------------------------------------------------------- timeouts and cancels


async def test_acquire_timeout_and_cancellation(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        con = await pool.acquire()
        raw = con._con
        with pytest.raises(asyncio.TimeoutError):
            await pool.acquire(timeout=0.05)
        waiter = asyncio.ensure_future(pool.acquire(timeout=10))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await pool.release(con)
        assert pool._queue.qsize() == 1
        async with pool.acquire(timeout=1) as again:
            assert again._con is raw

        # A waiter gets the connection as soon as it is released.
        con = await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire(timeout=5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await pool.release(con)
        got = await waiter
        assert await got.fetchval("SELECT 1") == 1
        await pool.release(got)


class SlowResetConnection(ferropg.Connection):
    async def reset(self, *, timeout=None):
        await asyncio.sleep(0.1)
        return await super().reset(timeout=timeout)


async def test_cancelled_task_still_releases(dsn):
    async with ferropg.create_pool(
        dsn, min_size=1, max_size=1, connection_class=SlowResetConnection
    ) as pool:

        async def worker():
            async with pool.acquire():
                pass

        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.05)  # inside the slow reset
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool._queue.qsize() == 0
        await wait_until(lambda: pool._queue.qsize() == 1)
        assert pool._holders[0].is_connected()

        # A release timeout shorter than the reset terminates the connection.
        con = await pool.acquire()
        raw = con._con
        with pytest.raises(asyncio.TimeoutError):
            await pool.release(con, timeout=0.02)
        assert raw.is_closed()
        holder = pool._holders[0]
        assert holder._in_use is None and holder._con is not raw
        assert await pool.fetchval("SELECT 1") == 1
        assert holder._con is not raw


async def test_release_after_a_timed_out_query(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        con = await pool.acquire()
        raw = con._con
        with pytest.raises(asyncio.TimeoutError):
            await con.execute("SELECT pg_sleep(10)", timeout=0.05)
        await asyncio.wait_for(pool.release(con), 5)
        async with pool.acquire() as con:
            # The same connection, usable after the server cancelled the query.
            assert con._con is raw
            assert await con.fetchval("SELECT 1") == 1

        # A task cancelled in the middle of a query.
        async def worker():
            async with pool.acquire() as c:
                await c.execute("SELECT pg_sleep(10)")

        task = asyncio.ensure_future(worker())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: pool._queue.qsize() == 1)
        assert await pool.fetchval("SELECT 2") == 2


# ----------------------------------------------------------------------- closing


async def test_close_waits_for_releases(dsn):
    pool = await ferropg.create_pool(dsn, min_size=1, max_size=1)
    released = []

    async def worker(entered):
        async with pool.acquire() as con:
            entered.set_result(None)
            await asyncio.sleep(0.1)
            await con.fetchval("SELECT 1")
        released.append(True)

    entered = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(worker(entered))
    await entered
    closing = asyncio.ensure_future(pool.close())
    await asyncio.sleep(0)
    assert pool.is_closing()
    with pytest.raises(exceptions.InterfaceError, match="pool is closing"):
        await pool.acquire()
    assert released == []
    await closing
    assert released == [True]
    await task
    assert pool.is_closing() and pool.get_size() == 0

    # A close that times out terminates the pool.
    pool = await ferropg.create_pool(dsn, min_size=1, max_size=1)
    con = await pool.acquire()
    raw = con._con
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(pool.close(), 0.05)
    assert raw.is_closed()
    assert con._con is None  # the proxy is dead
    assert pool.is_closing()


async def test_terminate_and_garbage_collection(dsn):
    pool = await ferropg.create_pool(
        dsn, init_size=2, min_size=1, max_size=2, max_inactive_connection_lifetime=10
    )
    cons = [h._con for h in pool._holders if h._con is not None]
    proxy = await pool.acquire()
    pool.terminate()
    assert pool.is_closing()
    assert all(c.is_closed() for c in cons)
    assert all(h._con is None and h._inactive_callback is None for h in pool._holders)
    assert proxy._con is None
    pool.terminate()  # again: no-op
    await pool.close()  # after terminate: no-op

    ref = weakref.ref(pool)
    del pool, proxy, cons
    await asyncio.sleep(0.01)
    gc.collect()
    assert ref() is None
