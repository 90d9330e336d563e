"""Fault injection: the backend is killed, by ``pg_terminate_backend`` and by SIGKILL,
in every phase of the work a client does, on a cluster of the module's own (a SIGKILL
makes the server restart every session).

After each kill the caller must see an exception that retry code catches
(:data:`RETRYABLE`), promptly (never a hang until some timeout), the server must hold
the committed rows and none of the uncommitted ones, and a pool must recover without
growing past its maximum.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable

import pytest
from faultproxy import FaultProxy

import ferropg
from ferropg import exceptions

#: What retry code written for ferropg (or asyncpg) catches when a connection breaks.
RETRYABLE = (exceptions.PostgresConnectionError, exceptions.InterfaceError, OSError)
#: A caller must hear of the kill well within this; the operations' own timeouts are
#: longer, so a call that only returns on its timeout fails the test.
PROMPT = 8.0
OP_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def own_cluster(pg_cluster):
    if os.environ.get("PGDSN"):
        pytest.skip("$PGDSN is set: not managing PostgreSQL servers")
    with pg_cluster.TempCluster(server_settings={"restart_after_crash": "on"}) as c:
        # A role that must authenticate with a password: its backends wait for the
        # client during startup, where the startup test kills them.
        c.sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE victim LOGIN PASSWORD 'pw'")
        c.reset_hba()
        c.add_hba_entry(type="local", auth_method="trust")
        c.add_hba_entry(
            type="host", user="victim", address="127.0.0.1/32", auth_method="scram-sha-256"
        )
        c.add_hba_entry(type="host", address="127.0.0.1/32", auth_method="trust")
        c.reload()
        yield c


@pytest.fixture
def proxy(own_cluster):
    """A :class:`FaultProxy` in front of the module's cluster."""
    kw = own_cluster.connection_kwargs()
    with FaultProxy((kw["host"], kw["port"])) as proxy:
        yield proxy


class Server:
    """The module's cluster, seen from one test: connections, kills, recovery."""

    def __init__(self, cluster) -> None:
        self.kwargs = cluster.connection_kwargs()
        self.kwargs["ssl"] = False
        self.admin: ferropg.Connection | None = None

    async def connect(self, **kwargs) -> ferropg.Connection:
        return await ferropg.connect(**self.kwargs, **kwargs)

    async def ready(self) -> None:
        """Waits until the server takes connections (after a crash restart)."""
        if self.admin is not None:
            # The admin connection is replaced by a fresh one: end the old one's session.
            self.admin.terminate()
            self.admin = None
        deadline = time.monotonic() + 60
        while True:
            try:
                self.admin = await self.connect()
                return
            except (OSError, exceptions.PostgresError, exceptions.InterfaceError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def sql(self, query: str, *args):
        """Runs ``query`` on the admin connection, reconnecting after a crash."""
        if self.admin is None or self.admin.is_closed():
            await self.ready()
        return await self.admin.fetch(query, *args)

    async def wait_for_state(self, pid: int, predicate: str, timeout: float = 10) -> None:
        """Waits until the backend ``pid`` matches the SQL ``predicate`` over
        pg_stat_activity (``state``, ``wait_event_type``, ``query``...)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = await self.sql(
                f"SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND {predicate}", pid
            )
            if rows:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"backend {pid} never reached {predicate}")

    async def kill(self, method: str, pid: int) -> None:
        if method == "terminate":
            await self.sql("SELECT pg_terminate_backend($1)", pid)
        else:
            os.kill(pid, signal.SIGKILL)
            # The server then ends every session and restarts: wait until it has ended
            # the admin's, so that no later step meets a server about to do so.
            deadline = time.monotonic() + 30
            while self.admin is not None:
                try:
                    await self.admin.fetchval("SELECT 1")
                except RETRYABLE:
                    self.admin.terminate()
                    self.admin = None
                    break
                assert time.monotonic() < deadline, "the server never restarted"
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self.admin is not None:
            await self.admin.close()


async def _expect_break(call: Awaitable, what: str) -> BaseException:
    started = time.monotonic()
    try:
        await asyncio.wait_for(call, PROMPT)
    except TimeoutError:
        raise AssertionError(f"{what}: no answer {PROMPT}s after the kill") from None
    except RETRYABLE as e:
        assert not isinstance(e, (exceptions.InternalClientError,)), f"{what}: {e!r}"
        assert time.monotonic() - started < PROMPT
        return e
    raise AssertionError(f"{what}: the call succeeded although its backend was killed")


async def _killed_during(
    server: Server,
    method: str,
    con: ferropg.Connection,
    call: Awaitable,
    predicate: str,
    what: str,
) -> BaseException:
    """Starts ``call`` on ``con``, kills its backend once it matches ``predicate``,
    and returns the exception the caller got."""
    pid = con.get_server_pid()
    task = asyncio.ensure_future(call)
    try:
        await server.wait_for_state(pid, predicate)
    except BaseException:
        task.cancel()
        raise
    await server.kill(method, pid)
    err = await _expect_break(task, what)
    assert con.is_closed(), what
    return err


# ----------------------------------------------------------------------------- phases
# Each phase gets a fresh table ``t`` (x int) holding one committed row, 1, and a
# connection; it returns the exception its killed call raised.

Phase = Callable[[Server, str, ferropg.Connection], Awaitable[BaseException]]


async def phase_prepare(server, method, con):
    # Parse waits for the lock another session holds on the table.
    admin = await server.connect()
    try:
        await admin.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        return await _killed_during(
            server,
            method,
            con,
            con.prepare("SELECT * FROM t"),
            "wait_event_type = 'Lock'",
            "prepare",
        )
    finally:
        admin.terminate()


async def phase_bind(server, method, con):
    # A prepared statement's Bind takes the table's lock again: it waits there.
    stmt = await con.prepare("SELECT * FROM t")
    admin = await server.connect()
    try:
        await admin.execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        return await _killed_during(
            server, method, con, stmt.fetch(timeout=OP_TIMEOUT), "wait_event_type = 'Lock'", "bind"
        )
    finally:
        admin.terminate()


async def phase_rows(server, method, con):
    query = "SELECT g FROM generate_series(1, 200000000) g"
    return await _killed_during(
        server, method, con, con.fetch(query, timeout=OP_TIMEOUT), "state = 'active'", "fetch"
    )


async def phase_transaction(server, method, con):
    async def work():
        async with con.transaction():
            await con.execute("INSERT INTO t VALUES (2)")
            await con.execute("SELECT pg_sleep(30)")

    return await _killed_during(
        server, method, con, work(), "query LIKE '%pg_sleep(30)%'", "transaction"
    )


async def phase_copy_in(server, method, con):
    async def rows():
        n = 100
        while True:
            yield (n,)
            n += 1
            await asyncio.sleep(0.001)

    call = con.copy_records_to_table("t", records=rows(), timeout=OP_TIMEOUT)
    return await _killed_during(server, method, con, call, "query LIKE 'COPY%'", "copy in")


async def phase_copy_out(server, method, con):
    async def slow_sink(data):
        await asyncio.sleep(0.001)

    call = con.copy_from_query(
        "SELECT g FROM generate_series(1, 200000000) g", output=slow_sink, timeout=OP_TIMEOUT
    )
    return await _killed_during(server, method, con, call, "query LIKE 'COPY%'", "copy out")


async def phase_executemany(server, method, con):
    def rows():
        n = 100
        while True:
            yield (n,)
            n += 1

    call = con.executemany("INSERT INTO t VALUES ($1)", rows(), timeout=OP_TIMEOUT)
    return await _killed_during(server, method, con, call, "query LIKE 'INSERT%'", "executemany")


async def phase_cursor(server, method, con):
    async def work():
        async with con.transaction():
            await con.execute("INSERT INTO t VALUES (3)")
            cur = await con.cursor("SELECT g, pg_sleep(0.5) FROM generate_series(1, 100) g")
            await cur.fetch(50)

    return await _killed_during(
        server, method, con, work(), "query LIKE '%pg_sleep(0.5)%'", "cursor"
    )


PHASES: dict[str, Phase] = {
    "prepare": phase_prepare,
    "bind": phase_bind,
    "rows": phase_rows,
    "transaction": phase_transaction,
    "copy-in": phase_copy_in,
    "copy-out": phase_copy_out,
    "executemany": phase_executemany,
    "cursor": phase_cursor,
}
METHODS = ("terminate", "sigkill")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("phase", sorted(PHASES))
async def test_backend_killed_mid_operation(own_cluster, phase, method):
    server = Server(own_cluster)
    await server.ready()
    try:
        await server.sql("DROP TABLE IF EXISTS t")
        await server.sql("CREATE TABLE t (x int)")
        await server.sql("INSERT INTO t VALUES (1)")
        con = await server.connect()
        bystander = await server.connect()
        try:
            await PHASES[phase](server, method, con)
            # Any further use says the connection is gone, at once.
            with pytest.raises(exceptions.InterfaceError, match="closed"):
                await asyncio.wait_for(con.fetchval("SELECT 1"), PROMPT)
        finally:
            con.terminate()
        await server.ready()
        # A SIGKILL makes the server end every session; a terminate ends just one.
        if method == "sigkill":
            with pytest.raises(RETRYABLE):
                await asyncio.wait_for(bystander.fetchval("SELECT 1"), PROMPT)
        else:
            assert await bystander.fetchval("SELECT 1") == 1
        bystander.terminate()
        # The committed row is there; nothing the killed work wrote is.
        rows = await server.sql("SELECT x FROM t ORDER BY x")
        assert [r["x"] for r in rows] == [1]
    finally:
        await server.close()


def _authenticating_backend(user: str) -> int | None:
    """The PID of a backend of ``user`` still authenticating (from its process title)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if title.startswith(f"postgres: {user} ") and "authentication" in title:
            return int(entry)
    return None


@pytest.mark.parametrize("method", METHODS)
async def test_backend_killed_during_startup(own_cluster, proxy, method):
    """The backend dies while it authenticates the client (a proxy slows the
    exchange down): connect() fails promptly with an error retry code catches."""
    server = Server(own_cluster)
    await server.ready()
    try:
        proxy.set_mode("delay", delay=0.3)
        kwargs = dict(server.kwargs, host=proxy.address[0], port=proxy.address[1])
        kwargs.update(user="victim", password="pw")
        task = asyncio.ensure_future(ferropg.connect(**kwargs, timeout=OP_TIMEOUT))
        deadline = time.monotonic() + 10
        while (pid := _authenticating_backend("victim")) is None:
            assert time.monotonic() < deadline, "the backend never started"
            await asyncio.sleep(0.01)
        await server.kill(method, pid)
        await _expect_break_startup(task)
        proxy.set_mode("pass")
        await server.ready()
        assert await server.admin.fetchval("SELECT 1") == 1
    finally:
        proxy.set_mode("pass")
        await server.close()


async def _expect_break_startup(task: Awaitable) -> BaseException:
    try:
        conn = await asyncio.wait_for(task, PROMPT + 2)
    except TimeoutError:
        raise AssertionError("connect(): no answer after the kill") from None
    except (*RETRYABLE, exceptions.AdminShutdownError) as e:
        assert not isinstance(e, exceptions.InternalClientError), repr(e)
        return e
    await conn.close()
    raise AssertionError("connect() succeeded although its backend was killed")


@pytest.mark.parametrize("method", METHODS)
async def test_pool_recovers_from_kills_in_use_and_during_reset(own_cluster, method):
    """A pooled connection killed while in use, and one killed before its release
    (its reset then meets a dead backend): the caller hears it, the pool replaces the
    connection and never holds more than ``max_size``."""

    server = Server(own_cluster)
    await server.ready()
    pool = await ferropg.create_pool(**server.kwargs, min_size=2, max_size=2)
    try:
        # In use.
        async with pool.acquire() as con:
            pid = con.get_server_pid()
            task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30)"))
            await server.wait_for_state(pid, "query LIKE '%pg_sleep(30)%'")
            await server.kill(method, pid)
            await _expect_break(task, "pooled query")
        await server.ready()
        # During the reset: the backend is gone when release() resets it.
        con = await pool.acquire()
        pid = con.get_server_pid()
        await con.execute("LISTEN fault_channel")
        await server.kill(method, pid)
        await server.ready()
        try:
            await asyncio.wait_for(pool.release(con), PROMPT)
        except RETRYABLE:
            pass
        for _ in range(6):
            assert await asyncio.wait_for(pool.fetchval("SELECT 1"), PROMPT) == 1
        assert pool.get_size() <= 2
        # Every connection the pool hands out now works.
        cons = [await pool.acquire() for _ in range(2)]
        assert [await c.fetchval("SELECT 2") for c in cons] == [2, 2]
        for c in cons:
            await pool.release(c)
    finally:
        await asyncio.wait_for(pool.close(), 30)
        await server.close()


# ------------------------------------------------------------------- broken links


def _via(proxy: FaultProxy, cluster) -> dict:
    kwargs = cluster.connection_kwargs()
    kwargs.update(host=proxy.address[0], port=proxy.address[1], ssl=False)
    return kwargs


@pytest.mark.parametrize("cut", ["reset", "half-close"])
async def test_a_cut_link_fails_the_call_at_once(own_cluster, proxy, cut):
    con = await ferropg.connect(**_via(proxy, own_cluster))
    try:
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.3)
        proxy.reset() if cut == "reset" else proxy.half_close()
        await _expect_break(task, cut)
        assert con.is_closed()
    finally:
        con.terminate()


@pytest.mark.parametrize("mode", ["bytewise", "delay"])
async def test_slow_and_split_replies_decode_the_same(own_cluster, proxy, mode):
    proxy.set_mode(mode, delay=0.01)
    con = await ferropg.connect(**_via(proxy, own_cluster))
    try:
        rows = await con.fetch("SELECT g, repeat('x', g) FROM generate_series(1, 200) g")
        assert [(r[0], len(r[1])) for r in rows] == [(g, g) for g in range(1, 201)]
    finally:
        await con.close()


async def test_a_blackholed_link_cannot_hold_a_call_past_its_timeout(own_cluster, proxy):
    """The call returns at its timeout; the next one, whose budget runs out while the
    first one's cancellation cannot complete, closes the connection rather than wait."""
    con = await ferropg.connect(**_via(proxy, own_cluster))
    try:
        proxy.set_mode("blackhole")
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(con.fetchval("SELECT 1", timeout=0.5), PROMPT)
            assert time.monotonic() - started < 1.0
        assert con.is_closed()
    finally:
        proxy.set_mode("pass")
        con.terminate()
    con = await ferropg.connect(**_via(proxy, own_cluster))
    assert await con.fetchval("SELECT 2") == 2
    await con.close()


async def test_an_unanswered_cancel_request_closes_the_connection(own_cluster, proxy, monkeypatch):
    """On a black-holed link a cancel request is never answered: past its limit the
    connection is closed (the server might still act on it), not left waiting."""
    from ferropg import connection as connection_module

    monkeypatch.setattr(connection_module, "_CANCEL_LIMIT", 0.5)
    con = await ferropg.connect(**_via(proxy, own_cluster))
    try:
        proxy.set_mode("blackhole")
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval("SELECT 1", timeout=0.3)
        deadline = time.monotonic() + PROMPT
        while not con.is_closed():
            assert time.monotonic() < deadline, "still open"
            await asyncio.sleep(0.05)
    finally:
        proxy.set_mode("pass")
        con.terminate()
