"""ferropg behind a real pgbouncer in transaction mode (``tests/pgbouncer.py``).

pgbouncer runs with ``pool_mode = transaction`` and two server connections, so the client
connections of a test share those two: each transaction (each Sync group outside a
transaction block) may run on either server connection.  With no setting at all (the
statement cache on) and with ``statement_cache_size=0``, what asyncpg users run through
pgbouncer works: queries with and without arguments, ``executemany``, transactions and
savepoints, COPY both ways, cursors in transactions, type introspection, ferropg's own
pool in front of pgbouncer, and many connections at once. The first statement found
missing switches a connection (and its pool) to pooler mode; the tests at the end check
that switch, and what it must not be mistaken for.

The fixture itself is checked too: pooling mode and size as configured, client connections
really sharing the two server backends, and ``restart()`` dropping the clients'
connections and accepting new ones on the same port.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import ferropg
from ferropg import exceptions

#: The two ways a user meets pgbouncer: with no setting at all (the statement cache on:
#: ferropg notices the pooler and binds statements unnamed), and with asyncpg's advice
#: for it, ``statement_cache_size=0``.
SETTINGS = {"defaults": {}, "no-cache": {"statement_cache_size": 0}}


@pytest.fixture(params=list(SETTINGS))
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    return SETTINGS[request.param]


async def _connect(bouncer: Any, settings: dict[str, Any], **kwargs: Any) -> ferropg.Connection:
    return await ferropg.connect(**bouncer.connect_kwargs(**kwargs), **settings)


@pytest.fixture
def table(connect_kwargs: dict[str, Any]) -> Iterator[str]:
    """A fresh table ``(a int primary key, b text)`` made on a direct connection (a temporary
    table would live in one server session of pgbouncer's), dropped afterwards."""
    name = f"bouncer_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        con = await ferropg.connect(**connect_kwargs)
        try:
            await con.execute(sql)
        finally:
            await con.close()

    asyncio.run(run(f"CREATE TABLE {name} (a int PRIMARY KEY, b text)"))
    try:
        yield name
    finally:
        asyncio.run(run(f"DROP TABLE IF EXISTS {name}"))


async def _rows(con: ferropg.Connection, table: str) -> list[tuple]:
    return [tuple(r) for r in await con.fetch(f"SELECT a, b FROM {table} ORDER BY a")]


# ----------------------------------------------------------------- the fixture


def test_pgbouncer_runs_in_transaction_mode_with_two_server_connections(pgbouncer):
    config = {row["key"]: row["value"] for row in pgbouncer.admin("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    assert config["default_pool_size"] == "2"
    assert pgbouncer.version() >= (1, 0)


async def test_connect_over_tcp_and_unix_socket(pgbouncer, settings):
    for kwargs in (pgbouncer.connect_kwargs(), pgbouncer.unix_connect_kwargs()):
        con = await ferropg.connect(**kwargs, **settings)
        try:
            assert await con.fetchval("SELECT $1::int + 1", 41) == 42
            assert await con.fetchval("SELECT current_user") == "postgres"
        finally:
            await con.close()


async def test_many_clients_share_two_server_backends(pgbouncer, settings):
    """Eight clients at once, each in transactions that overlap: pgbouncer runs them on
    its two server connections, and every answer is the right one."""
    clients = [await _connect(pgbouncer, settings) for _ in range(8)]
    seen: set[int] = set()
    try:

        async def work(i: int, con: ferropg.Connection) -> None:
            for k in range(15):
                async with con.transaction():
                    pid = await con.fetchval("SELECT pg_backend_pid()")
                    assert await con.fetchval("SELECT $1::int * $2::int", i, k) == i * k
                    # Still the same backend: pgbouncer keeps it for the whole transaction.
                    assert await con.fetchval("SELECT pg_backend_pid()") == pid
                    seen.add(pid)
                    await asyncio.sleep(0)

        await asyncio.wait_for(asyncio.gather(*(work(i, c) for i, c in enumerate(clients))), 60)
    finally:
        for con in clients:
            await con.close()
    servers = set(pgbouncer.server_pids())
    assert 1 <= len(seen) <= 2
    assert seen <= servers
    assert len(servers) <= 2


# ------------------------------------------------------------- queries and such


async def test_fetch_family_with_and_without_arguments(pgbouncer, settings):
    con = await _connect(pgbouncer, settings)
    try:
        for i in range(10):  # consecutive round trips may land on either server
            assert await con.fetchval("SELECT $1::int", i) == i
            row = await con.fetchrow("SELECT $1::text AS t, $2::int8 AS n", "x", i)
            assert (row["t"], row["n"]) == ("x", i)
            assert [r[0] for r in await con.fetch("SELECT generate_series(1, 3)")] == [1, 2, 3]
            assert await con.fetchval("SELECT 'no args'") == "no args"
        assert await con.execute("SELECT 1; SELECT 2") == "SELECT 1"
    finally:
        await con.close()


async def test_execute_executemany_and_fetchmany(pgbouncer, table, settings):
    con = await _connect(pgbouncer, settings)
    try:
        assert await con.execute(f"INSERT INTO {table} VALUES ($1, $2)", 1, "one") == "INSERT 0 1"
        await con.executemany(
            f"INSERT INTO {table} VALUES ($1, $2)", [(i, f"n{i}") for i in range(2, 50)]
        )
        rows = await con.fetchmany(f"SELECT b FROM {table} WHERE a = $1", [(1,), (49,)])
        assert [r[0] for r in rows] == ["one", "n49"]
        assert await con.fetchval(f"SELECT count(*) FROM {table}") == 49
        # executemany is atomic: a failing row leaves nothing behind.
        with pytest.raises(exceptions.UniqueViolationError):
            await con.executemany(
                f"INSERT INTO {table} VALUES ($1, $2)", [(100, "a"), (101, "b"), (1, "dup")]
            )
        assert await con.fetchval(f"SELECT count(*) FROM {table}") == 49
    finally:
        await con.close()


async def test_transactions_commit_roll_back_and_nest(pgbouncer, table, settings):
    con = await _connect(pgbouncer, settings)
    other = await _connect(pgbouncer, settings)
    try:
        async with con.transaction():
            await con.execute(f"INSERT INTO {table} VALUES ($1, $2)", 1, "kept")
            try:
                async with con.transaction():  # a savepoint
                    await con.execute(f"INSERT INTO {table} VALUES ($1, $2)", 2, "undone")
                    raise RuntimeError("roll the savepoint back")
            except RuntimeError:
                pass
            assert await con.fetchval(f"SELECT count(*) FROM {table}") == 1
        with pytest.raises(ZeroDivisionError):
            async with con.transaction():
                await con.execute(f"INSERT INTO {table} VALUES ($1, $2)", 3, "gone")
                raise ZeroDivisionError
        # Seen from another client (another server session, or the same one later).
        assert await _rows(other, table) == [(1, "kept")]
        tx = con.transaction(isolation="repeatable_read", readonly=True)
        await tx.start()
        assert await con.fetchval("SHOW transaction_isolation") == "repeatable read"
        with pytest.raises(exceptions.ReadOnlySQLTransactionError):
            await con.execute(f"INSERT INTO {table} VALUES (9, 'ro')")
        await tx.rollback()
        assert not con.is_in_transaction()
    finally:
        await con.close()
        await other.close()


async def test_copy_in_and_out(pgbouncer, table, settings):
    con = await _connect(pgbouncer, settings)
    try:
        assert await con.copy_records_to_table(table, records=[(1, "a"), (2, None)]) == "COPY 2"
        assert await con.copy_to_table(table, source=io.BytesIO(b"3\tc\n4\t\\N\n")) == "COPY 2"
        out = io.BytesIO()
        assert await con.copy_from_table(table, output=out, columns=["a"]) == "COPY 4"
        assert sorted(out.getvalue().split()) == [b"1", b"2", b"3", b"4"]
        out = io.BytesIO()
        status = await con.copy_from_query(
            f"SELECT b FROM {table} WHERE a > $1 AND b IS NOT NULL ORDER BY a", 1, output=out
        )
        assert status == "COPY 1"
        assert out.getvalue() == b"c\n"
        async with con.transaction():
            await con.copy_records_to_table(table, records=[(5, "in tx")])
            assert await con.fetchval(f"SELECT b FROM {table} WHERE a = 5") == "in tx"
    finally:
        await con.close()


async def test_cursors_in_a_transaction(pgbouncer, settings):
    con = await _connect(pgbouncer, settings)
    try:
        async with con.transaction():
            got = [r[0] async for r in con.cursor("SELECT generate_series(1, $1)", 25, prefetch=4)]
            assert got == list(range(1, 26))
            cur = await con.cursor("SELECT generate_series(1, 10)")
            assert [r[0] for r in await cur.fetch(3)] == [1, 2, 3]
            assert await cur.forward(4) == 4
            assert (await cur.fetchrow())[0] == 8
    finally:
        await con.close()


async def test_prepared_statement_object(pgbouncer, settings):
    con = await _connect(pgbouncer, settings)
    try:
        stmt = await con.prepare("SELECT $1::int * 2")
        for i in range(6):  # used again in later round trips, wherever they land
            assert await stmt.fetchval(i) == i * 2
        assert [a.name for a in stmt.get_attributes()] == ["?column?"]
    finally:
        await con.close()


async def test_types_that_need_introspection(pgbouncer, connect_kwargs, settings):
    suffix = uuid.uuid4().hex[:10]
    direct = await ferropg.connect(**connect_kwargs)
    await direct.execute(
        f"CREATE TYPE mood_{suffix} AS ENUM ('sad', 'ok'); "
        f"CREATE TYPE pair_{suffix} AS (x int, y text)"
    )
    try:
        con = await _connect(pgbouncer, settings)
        try:
            assert await con.fetchval(f"SELECT ARRAY['ok', 'sad']::mood_{suffix}[]") == [
                "ok",
                "sad",
            ]
            rec = await con.fetchval(f"SELECT ROW(1, 'q')::pair_{suffix}")
            assert (rec["x"], rec["y"]) == (1, "q")
            assert await con.fetchval(f"SELECT $1::mood_{suffix}", "ok") == "ok"
        finally:
            await con.close()
    finally:
        await direct.execute(f"DROP TYPE mood_{suffix}; DROP TYPE pair_{suffix}")
        await direct.close()


async def test_ferropg_pool_in_front_of_pgbouncer(pgbouncer, table, settings):
    """Ten tasks on a pool of five client connections, over two server connections."""
    pool = await ferropg.create_pool(
        **pgbouncer.connect_kwargs(), min_size=5, max_size=5, **settings
    )
    try:

        async def work(i: int) -> None:
            for k in range(10):
                async with pool.acquire() as con:
                    async with con.transaction():
                        await con.execute(f"INSERT INTO {table} VALUES ($1, $2)", i * 100 + k, "p")
                    assert await con.fetchval("SELECT $1::int", k) == k

        await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(10))), 60)
        async with pool.acquire() as con:
            assert await con.fetchval(f"SELECT count(*) FROM {table}") == 100
    finally:
        await pool.close()
    assert len(pgbouncer.server_pids()) <= 2


# ----------------------------------------------------------------- restarts


async def test_restart_drops_clients_and_serves_new_ones_on_the_same_port(pgbouncer_factory):
    bouncer = pgbouncer_factory(default_pool_size=1)
    port = bouncer.port
    con = await _connect(bouncer, {})
    try:
        assert await con.fetchval("SELECT 1") == 1
        bouncer.restart()
        assert bouncer.port == port and bouncer.starts == 2
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await asyncio.wait_for(con.fetchval("SELECT 1"), 10)
        assert con.is_closed()
    finally:
        await con.close()
    con = await _connect(bouncer, {})
    try:
        assert await con.fetchval("SELECT $1::int", 7) == 7
    finally:
        await con.close()
    bouncer.restart(hard=True)
    con = await _connect(bouncer, {})
    try:
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()


# ----------------------------------------------------------------- pooler mode


async def test_the_startup_probe_tells_a_pooler_from_a_server(pgbouncer, connect_kwargs):
    behind = await _connect(pgbouncer, {})
    direct = await ferropg.connect(**connect_kwargs)
    try:
        for con in (behind, direct):
            await con.fetchval("SELECT 1")  # the probe goes with the first request
        assert behind._protocol.pooler_suspected
        assert not direct._protocol.pooler_suspected
        # A suspicion alone switches nothing (pgbouncer 1.21 may keep prepared
        # statements itself): only a statement really missing does.
        assert not direct._protocol.pooler_mode
    finally:
        await behind.close()
        await direct.close()


async def test_a_statement_cached_outside_a_transaction_runs_inside_one(pgbouncer):
    """A statement prepared in one server session is used inside transactions that
    pgbouncer runs in either: never an aborted transaction."""
    con = await _connect(pgbouncer, {})
    try:
        assert await con.fetchval("SELECT $1::int + 1", 1) == 2
        for i in range(10):
            async with con.transaction():
                assert await con.fetchval("SELECT $1::int + 1", i) == i + 1
    finally:
        await con.close()


async def test_the_first_missing_statement_switches_the_whole_pool(pgbouncer):
    pool = await ferropg.create_pool(**pgbouncer.connect_kwargs(), min_size=3, max_size=3)
    try:
        cons = [await pool.acquire() for _ in range(3)]
        for con in cons:
            await con.fetchval("SELECT $1::int * 3", 1)  # named and cached on each
        # Used again until one lands in the other server session: retried there.
        for i in range(20):
            for con in cons:
                assert await con.fetchval("SELECT $1::int * 3", i) == i * 3
        assert all(con._con._protocol.pooler_mode for con in cons)
        for con in cons:
            await pool.release(con)
        # Connections the pool opens later start in pooler mode.
        await pool.expire_connections()
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT 41 + $1::int", 1) == 42
            assert con._con._protocol.pooler_mode
            with pytest.raises(exceptions.InterfaceError, match="pooler"):
                await con.add_listener("chan", lambda *a: None)
    finally:
        await pool.close()


def _worker_script(port: int, k: int) -> str:
    return f"""
import asyncio, ferropg
async def main():
    con = await ferropg.connect(host="127.0.0.1", port={port}, user="postgres",
                                database="postgres")
    wrong = 0
    for i in range(60):
        if await con.fetchval("SELECT $1::int * {k}", i) != i * {k}:
            wrong += 1
    await con.close()
    print(wrong)
asyncio.run(main())
"""


async def test_clients_in_other_processes_never_run_each_others_statements(pgbouncer):
    """Statement names differ between processes: a client that lands in a server
    session where another process prepared "its" name gets its own statement."""
    import sys

    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _worker_script(pgbouncer.port, k),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for k in (2, 3, 5, 7)
    ]
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert out.decode().split() == ["0"]


async def test_a_result_type_changed_under_a_cached_statement_is_caught(
    pgbouncer, connect_kwargs, table
):
    con = await _connect(pgbouncer, {})
    direct = await ferropg.connect(**connect_kwargs)
    try:
        con._protocol.enter_pooler_mode()
        await direct.execute(f"INSERT INTO {table} VALUES (1, 'x')")
        assert [tuple(r) for r in await con.fetch(f"SELECT * FROM {table}")] == [(1, "x")]
        await direct.execute(f"ALTER TABLE {table} ALTER COLUMN b TYPE int USING 7")
        # Parsed again with the old description: the portal's new one is seen before a
        # row is decoded, and the call is prepared afresh.
        assert [tuple(r) for r in await con.fetch(f"SELECT * FROM {table}")] == [(1, 7)]
    finally:
        await con.close()
        await direct.close()


async def test_statements_the_user_dropped_are_no_sign_of_a_pooler(connect_kwargs):
    con = await ferropg.connect(**connect_kwargs)
    try:
        assert await con.fetchval("SELECT $1::int", 1) == 1
        await con.execute("DEALLOCATE ALL")
        assert await con.fetchval("SELECT $1::int", 2) == 2
        stmt = await con.prepare("SELECT $1::int * 2")
        await con.execute("DISCARD ALL")
        assert await con.fetchval("SELECT $1::int", 3) == 3
        # The user's own prepared statement is gone with DISCARD ALL, as on asyncpg.
        with pytest.raises(exceptions.InvalidSQLStatementNameError):
            await stmt.fetchval(1)
        assert not con._protocol.pooler_mode
    finally:
        await con.close()
    # Nor is a statement of the user's own that goes missing as it runs: the server
    # accepted the Bind of ours first.
    con = await ferropg.connect(**connect_kwargs)
    try:
        with pytest.raises(exceptions.InvalidSQLStatementNameError):
            await con.fetchval("EXECUTE no_such_statement")
        assert not con._protocol.pooler_mode
        assert await con.fetchval("SELECT $1::int", 4) == 4
    finally:
        await con.close()


async def test_a_timeout_through_pgbouncer_cancels_and_pgbouncer_lives_on(pgbouncer, settings):
    con = await _connect(pgbouncer, settings)
    try:
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval("SELECT pg_sleep(5)", timeout=0.3)
        assert await con.fetchval("SELECT $1::int", 5) == 5
        task = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await con.close()
    # Closing right after a cancel must not kill pgbouncer (1.18 exits when a cancel
    # request's client hangs up too early).
    await asyncio.sleep(0.3)
    assert pgbouncer.running
    con = await _connect(pgbouncer, settings)
    assert await con.fetchval("SELECT 1") == 1
    await con.close()
