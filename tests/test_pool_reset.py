"""What a pool's release undoes: each test dirties a session in one way and checks
that the next checkout (the same connection: the pool holds one) sees it clean.

Every test runs twice: with the default reset, which releases advisory locks (so a
round trip at release carries the whole reset), and with ``reset_advisory_locks=False``,
where a session left idle costs no round trip at release and the rest of its reset goes
ahead of the next user's first request."""

import asyncio

import pytest

import ferropg
import ferropg.sync

#: The last statement a default release runs: prepared, after the rest of the reset.
UNLOCK = "SELECT pg_advisory_unlock_all()"

pytestmark = pytest.mark.parametrize("advisory", [True, False], ids=["default", "no-advisory"])


async def one_connection_pool(dsn, advisory):
    return await ferropg.create_pool(dsn, min_size=1, max_size=1, reset_advisory_locks=advisory)


async def backend_query(dsn, pid):
    """The last statement the server saw from backend ``pid``."""
    con = await ferropg.connect(dsn)
    try:
        return await con.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
    finally:
        await con.close()


async def test_a_transaction_left_open_is_rolled_back(dsn, advisory):
    errors = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            await con.execute("CREATE TEMP TABLE IF NOT EXISTS kept (x int)")
        async with pool.acquire() as con:
            await con.execute("BEGIN")
            await con.execute("CREATE TABLE reset_left_open (x int)")
        async with pool.acquire() as con:
            assert not con.is_in_transaction()
            assert await con.fetchval("SELECT to_regclass('reset_left_open')") is None
    assert any("active transaction" in e["message"] for e in errors), errors


async def test_an_aborted_transaction_at_the_first_release_is_rolled_back(dsn, advisory):
    """The first release of a connection, in a transaction the server aborted: the reset
    must not send anything the aborted transaction refuses before its ROLLBACK."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, ctx: None)
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            await con.execute("BEGIN")
            with pytest.raises(ferropg.exceptions.DivisionByZeroError):
                await con.fetchval("SELECT 1 / $1::int", 0)
        async with pool.acquire() as con:
            assert not con.is_in_transaction()
            assert await con.fetchval("SELECT $1::int", 5) == 5


async def test_settings_are_reset_however_they_were_changed(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            defaults = await con.fetchrow(
                "SELECT current_setting('work_mem') AS w, current_setting('statement_timeout')"
                " AS s, current_setting('application_name') AS a"
            )
            await con.execute("SET work_mem = '7MB'")
            await con.fetchval("SELECT set_config('statement_timeout', '12345', false)")
            await con.execute(
                "DO $$ BEGIN PERFORM set_config('application_name', 'x', false); END $$"
            )
            assert con.get_settings().application_name == "x"
        async with pool.acquire() as con:
            now = await con.fetchrow(
                "SELECT current_setting('work_mem') AS w, current_setting('statement_timeout')"
                " AS s, current_setting('application_name') AS a"
            )
            assert tuple(now) == tuple(defaults)


async def test_advisory_locks_are_released_at_release_unless_opted_out(dsn, advisory):
    other = await ferropg.connect(dsn)
    try:
        async with await one_connection_pool(dsn, advisory) as pool:
            async with pool.acquire() as con:
                await con.fetchval("SELECT pg_advisory_lock(4201)")
                # Taken inside a function: nothing in the protocol shows it.
                await con.execute("DO $$ BEGIN PERFORM pg_advisory_lock(4202); END $$")
            # Released already, before any next checkout.
            free = await other.fetchval(
                "SELECT pg_try_advisory_lock(4201) AND pg_try_advisory_lock(4202)"
            )
            assert free is advisory
            await other.execute("SELECT pg_advisory_unlock_all()")
    finally:
        await other.close()


async def test_listens_are_undone_even_from_inside_a_function(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            await con.execute("LISTEN reset_seen")
            await con.execute("DO $$ BEGIN EXECUTE 'LISTEN reset_unseen'; END $$")
            assert (
                len(await con.fetchval("SELECT array_agg(c) FROM pg_listening_channels() c")) == 2
            )
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0


async def test_a_listen_seen_is_undone_at_release_itself(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            pid = con.get_server_pid()
            await con.execute("LISTEN reset_now")
            raw = con._con
        # The release sent the UNLISTEN before handing the connection back: nothing
        # of the reset waits for the next request. The whole reset went in that one
        # request, UNLISTEN first: the session's last statement is the unlock, or
        # without it the last utility statement.
        assert not raw._protocol.has_deferred()
        seen = await backend_query(dsn, pid)
        assert seen == (UNLOCK if advisory else "DISCARD TEMP;")


async def test_holdable_cursors_are_closed(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            await con.execute("DECLARE kept_cursor CURSOR WITH HOLD FOR SELECT 1")
            await con.execute(
                "DO $$ BEGIN EXECUTE 'DECLARE unseen CURSOR WITH HOLD FOR SELECT 2'; END $$"
            )
        async with pool.acquire() as con:
            # (The query's own unnamed portal is listed too.)
            assert await con.fetchval("SELECT count(*) FROM pg_cursors WHERE name <> ''") == 0


async def test_temporary_tables_go(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            await con.execute("CREATE TEMP TABLE reset_temp (x int)")
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT to_regclass('pg_temp.reset_temp')") is None
            # And the name is free again.
            await con.execute("CREATE TEMP TABLE reset_temp (x int)")


async def test_what_a_release_sends(dsn, advisory):
    async with await one_connection_pool(dsn, advisory) as pool:
        async with pool.acquire() as con:
            pid = con.get_server_pid()
            raw = con._con
            await con.fetchval("SELECT 'marker ' || $1::text", "a")
        seen = await backend_query(dsn, pid)
        if advisory:
            assert seen == UNLOCK, seen
        else:
            # Nothing at release: the reset waits for the next request.
            assert seen.startswith("SELECT 'marker '"), seen
            assert raw._protocol.has_deferred()
        async with pool.acquire() as con:
            assert await con.fetchval("SELECT current_setting('work_mem')")
            assert not raw._protocol.has_deferred()
        # A checkout that ran nothing: its settings need no reset, and the last user's
        # deferred one still waits. Advisory locks, which nothing shows, are released
        # at every release (whose round trip also finds a link gone dark, as
        # asyncpg's does); opted out, nothing is sent at all.
        seen = await backend_query(dsn, pid)
        assert raw._protocol.has_deferred() is not advisory
        async with pool.acquire():
            pass
        assert raw._protocol.has_deferred() is not advisory
        now = await backend_query(dsn, pid)
        assert now == (UNLOCK if advisory else seen)


async def test_a_user_reset_of_the_connection_is_whole_at_once(dsn, advisory):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("SET work_mem = '7MB'")
        await con.reset()
        assert not con._protocol.has_deferred()
        assert await con.fetchval("SELECT current_setting('work_mem')") != "7MB"
    finally:
        await con.close()


def test_the_blocking_pool_resets_the_same_way(dsn, advisory):
    with ferropg.sync.create_pool(
        dsn, min_size=1, max_size=1, reset_advisory_locks=advisory
    ) as pool:
        with pool.acquire() as con:
            default = con.fetchval("SELECT current_setting('work_mem')")
            con.execute("SET work_mem = '7MB'")
            con.execute("CREATE TEMP TABLE sync_temp (x int)")
        with pool.acquire() as con:
            assert con.fetchval("SELECT current_setting('work_mem')") == default
            assert con.fetchval("SELECT to_regclass('pg_temp.sync_temp')") is None
