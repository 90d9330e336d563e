"""connect(), execute/fetch/fetchrow/fetchval/close, errors and recovery, on both loops."""

import asyncio
import gc

import pytest

import ferropg
from ferropg import exceptions


async def test_execute_script_returns_last_status(dsn):
    con = await ferropg.connect(dsn)
    try:
        status = await con.execute(
            "CREATE TEMP TABLE t(a int); INSERT INTO t VALUES (1), (2); DELETE FROM t WHERE a = 1"
        )
        assert status == "DELETE 1"
        assert await con.execute("INSERT INTO t VALUES ($1)", 5) == "INSERT 0 1"
        assert await con.execute("") == ""
        assert [tuple(r) for r in await con.fetch("SELECT a FROM t ORDER BY a")] == [(2,), (5,)]
    finally:
        await con.close()


async def test_fetch_variants(dsn):
    con = await ferropg.connect(dsn)
    try:
        rows = await con.fetch("SELECT g, g * 2 AS dbl FROM generate_series(1, $1::int) g", 3)
        assert [r["dbl"] for r in rows] == [2, 4, 6]
        assert await con.fetch("SELECT 1 WHERE false") == []
        row = await con.fetchrow("SELECT 1 AS a, 'two' AS b")
        assert row["b"] == "two" and row[0] == 1
        assert await con.fetchrow("SELECT 1 WHERE false") is None
        assert await con.fetchval("SELECT 1, 2", column=1) == 2
        assert await con.fetchval("SELECT 1 AS x", column="x") == 1
        assert await con.fetchval("SELECT 1 WHERE false") is None
        # fetchrow takes the first row of many.
        assert (await con.fetchrow("SELECT * FROM generate_series(7, 100)"))[0] == 7
        # The same statement again comes from the statement cache.
        for i in range(3):
            assert await con.fetchval("SELECT $1::int + 1", i) == i + 1
    finally:
        await con.close()


async def test_server_error_fields(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE u(id int CONSTRAINT u_pk PRIMARY KEY)")
        await con.execute("INSERT INTO u VALUES (1)")
        with pytest.raises(exceptions.UniqueViolationError) as info:
            await con.execute("INSERT INTO u VALUES ($1)", 1)
        e = info.value
        assert isinstance(e, exceptions.IntegrityConstraintViolationError)
        assert isinstance(e, exceptions.PostgresError)
        assert e.sqlstate == "23505"
        assert e.constraint_name == "u_pk"
        assert e.table_name == "u"
        assert e.schema_name.startswith("pg_temp")
        assert e.detail == "Key (id)=(1) already exists."
        assert e.severity == "ERROR"
        assert e.server_source_function
        assert "DETAIL:  Key (id)=(1)" in str(e)

        with pytest.raises(exceptions.PostgresSyntaxError) as info:
            await con.execute("SELEC 1")
        assert info.value.position == "1"

        with pytest.raises(exceptions.RaiseError) as info:
            await con.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'boom' USING DETAIL = 'd', HINT = 'h'; END $$"
            )
        assert info.value.message == "boom"
        assert info.value.hint == "h"
        assert str(info.value) == "boom\nDETAIL:  d\nHINT:  h"
    finally:
        await con.close()


async def test_recovery_after_errors(dsn):
    con = await ferropg.connect(dsn)
    try:
        for query in ("SELECT 1/0", "SELECT * FROM no_such_table", "SELECT $1::int + 'x'"):
            with pytest.raises(exceptions.PostgresError):
                await con.fetch(query, *(() if "$1" not in query else (1,)))
            assert await con.fetchval("SELECT 'ok'") == "ok"
        # An error inside a transaction leaves it failed until ROLLBACK.
        await con.execute("BEGIN")
        with pytest.raises(exceptions.DivisionByZeroError):
            await con.execute("SELECT 1/0")
        assert con.is_in_transaction()
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await con.fetchval("SELECT 1")
        await con.execute("ROLLBACK")
        assert not con.is_in_transaction()
        # An error in the middle of a script stops the script.
        with pytest.raises(exceptions.DivisionByZeroError):
            await con.execute("CREATE TEMP TABLE s(a int); SELECT 1/0; INSERT INTO s VALUES (1)")
        assert await con.fetchval("SELECT 3") == 3
        # A COPY FROM STDIN outside the copy API is refused without wedging the connection.
        await con.execute("CREATE TEMP TABLE c(a int)")
        with pytest.raises(exceptions.PostgresError):
            await con.execute("COPY c FROM STDIN")
        with pytest.raises(exceptions.PostgresError):
            await con.fetch("COPY c FROM STDIN", *())
        assert await con.fetchval("SELECT 4") == 4
    finally:
        await con.close()


async def test_concurrent_operations_are_refused(dsn):
    con = await ferropg.connect(dsn)
    try:
        first = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.2), 1"))
        await asyncio.sleep(0.05)
        with pytest.raises(exceptions.InterfaceError, match="another operation is in progress"):
            await con.fetchval("SELECT 2")
        assert await first is None  # pg_sleep returns void
        assert await con.fetchval("SELECT 3") == 3
        # Sequential queries reuse the cached statement.
        results = [await con.fetchval("SELECT $1::int * 10", i) for i in range(20)]
        assert results == [i * 10 for i in range(20)]
    finally:
        await con.close()


async def test_argument_count_mismatch(dsn):
    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.InterfaceError) as info:
            await con.fetchval("SELECT $1::int, $2::int", 1)
        assert info.value.args[0] == ("the server expects 2 arguments for this query, 1 was passed")
        assert info.value.hint == "Check the query against the passed list of arguments."
        with pytest.raises(exceptions.InterfaceError) as info:
            await con.fetchval("SELECT 1", 1, 2)
        assert "expects 0 arguments for this query, 2 were passed" in str(info.value)
        assert await con.fetchval("SELECT 5") == 5
    finally:
        await con.close()


async def test_closed_connection(dsn):
    con = await ferropg.connect(dsn)
    await con.close()
    assert con.is_closed()
    for call in (con.fetch("SELECT 1"), con.execute("SELECT 1"), con.fetchval("SELECT $1", 1)):
        with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
            await call
    await con.close()  # closing twice is fine

    con = await ferropg.connect(dsn)
    con.terminate()
    await asyncio.sleep(0.05)
    assert con.is_closed()
    with pytest.raises(exceptions.InterfaceError):
        await con.fetch("SELECT 1")


async def test_connection_lost_mid_operation(dsn):
    con = await ferropg.connect(dsn)
    killer = await ferropg.connect(dsn)
    try:
        pid = con.get_server_pid()
        sleeping = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.2)
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        with pytest.raises(exceptions.ConnectionDoesNotExistError):
            await asyncio.wait_for(sleeping, 10)
        assert con.is_closed()
        with pytest.raises(exceptions.InterfaceError):
            await con.fetchval("SELECT 1")
    finally:
        await killer.close()


async def test_settings_and_version(dsn):
    con = await ferropg.connect(dsn, server_settings={"application_name": "ferropg-test"})
    try:
        assert con.get_settings().client_encoding == "UTF8"
        assert con.get_settings().application_name == "ferropg-test"
        ver = con.get_server_version()
        num = int(await con.fetchval("SHOW server_version_num"))
        assert ver.major == num // 10000
        assert ver.micro == num % 100
        assert con.get_server_pid() == await con.fetchval("SELECT pg_backend_pid()")
    finally:
        await con.close()


async def test_connect_keywords_and_unix_socket(cluster, dsn):
    if cluster is None:
        pytest.skip("needs the temporary cluster (PGDSN points elsewhere)")

    kw = cluster.connection_kwargs()
    con = await ferropg.connect(**kw)
    assert await con.fetchval("SELECT current_user") == kw["user"]
    await con.close()
    con = await ferropg.connect(host=cluster.socket_dir, port=cluster.port, user=kw["user"])
    assert await con.fetchval("SELECT inet_server_addr()") is None  # a Unix socket
    await con.close()
    con = await ferropg.connect(
        f"host={cluster.socket_dir} port={cluster.port} user={kw['user']} dbname=postgres"
    )
    assert await con.fetchval("SELECT current_database()") == "postgres"
    await con.close()


async def test_connect_failures(dsn):
    with pytest.raises(OSError):
        await ferropg.connect(host="127.0.0.1", port=1, user="postgres")
    with pytest.raises(exceptions.InvalidCatalogNameError):
        await ferropg.connect(dsn, database="no_such_database")
    with pytest.raises(asyncio.TimeoutError):
        await ferropg.connect(dsn, timeout=0)


async def test_unclosed_connection_warns_and_ends_its_session(dsn):
    admin = await ferropg.connect(dsn)
    try:
        con = await ferropg.connect(dsn)
        pid = con.get_server_pid()
        with pytest.warns(ResourceWarning, match="unclosed connection"):
            del con
            gc.collect()
        for _ in range(50):
            alive = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
            )
            if not alive:
                break
            await asyncio.sleep(0.05)
        assert alive == 0
    finally:
        await admin.close()


async def test_unclosed_connection_in_debug_mode_says_where_it_was_made(dsn):
    async def connect_here():
        return await ferropg.connect(dsn)

    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    try:
        con = await connect_here()
        with pytest.warns(ResourceWarning) as caught:
            del con
            gc.collect()
    finally:
        loop.set_debug(False)
    message = str(caught[0].message)
    assert " created at:\n" in message
    assert "in connect_here" in message


async def test_closed_connection_refuses_a_transaction(dsn):
    con = await ferropg.connect(dsn)
    await con.close()
    with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
        con.transaction()


@pytest.mark.parametrize(
    "arg", ["statement_cache_size", "max_cached_statement_lifetime", "max_cacheable_statement_size"]
)
@pytest.mark.parametrize("value", [None, -1, True, "3"])
async def test_cache_options_are_checked_before_connecting(arg, value):
    # Port 1: nothing listens there, so reaching the network would be another error.
    with pytest.raises(ValueError, match="greater or equal to 0"):
        await ferropg.connect(host="127.0.0.1", port=1, **{arg: value})
