"""The per-connection statement cache: size and lifetime limits, LRU eviction, closing
evicted statements, the unnamed statement when caching is off, and the
InvalidCachedStatementError retry."""

import asyncio
import gc

import pytest

import ferropg
from ferropg import exceptions


async def _server_statements(con):
    """The names of the statements the server holds for this session.

    The listing query itself goes through the statement cache: use it only where the
    cache has room to spare, or does not keep it.
    """
    return {r[0] for r in await con.fetch("SELECT name FROM pg_prepared_statements")}


async def _on_server(con, name):
    """Whether the session has a (parameterless) prepared statement ``name``; asked
    over the simple query protocol, which leaves the statement cache alone."""
    try:
        await con.execute(f'EXECUTE "{name}"')
    except exceptions.InvalidSQLStatementNameError:
        return False
    return True


def _cached_queries(con):
    return [s.query for s in con._stmt_cache.iter_statements()]


async def test_cache_settings(dsn):
    con = await ferropg.connect(dsn)
    try:
        cache = con._stmt_cache
        assert cache.get_max_size() == 100
        assert cache.get_max_lifetime() == 300
        assert len(cache) == 0
        cache.set_max_size(7)
        cache.set_max_lifetime(12.5)
        assert cache.get_max_size() == 7
        assert cache.get_max_lifetime() == 12.5
    finally:
        await con.close()

    con = await ferropg.connect(dsn, statement_cache_size=5, max_cached_statement_lifetime=42)
    try:
        assert con._stmt_cache.get_max_size() == 5
        assert con._stmt_cache.get_max_lifetime() == 42
        for i in range(3):
            assert await con.fetchval(f"SELECT {i} AS cache_settings") == i
        assert len(con._stmt_cache) == 3
        states = list(con._stmt_cache.iter_statements())
        assert not any(s.closed for s in states)
        # The same query again is a hit: nothing new is cached.
        assert await con.fetchval("SELECT 1 AS cache_settings") == 1
        assert len(con._stmt_cache) == 3
    finally:
        await con.close()


async def test_lru_eviction(dsn):
    con = await ferropg.connect(dsn, statement_cache_size=3)
    try:
        for name in ("a", "b", "c"):
            assert await con.fetchval(f"SELECT '{name}'::text") == name
        assert _cached_queries(con) == [
            "SELECT 'a'::text",
            "SELECT 'b'::text",
            "SELECT 'c'::text",
        ]
        states = {s.query: s for s in con._stmt_cache.iter_statements()}

        # A hit makes the statement the most recently used one.
        assert await con.fetchval("SELECT 'a'::text") == "a"
        assert _cached_queries(con)[-1] == "SELECT 'a'::text"

        # A fourth query pushes out the least recently used ('b').
        assert await con.fetchval("SELECT 'd'::text") == "d"
        assert _cached_queries(con) == [
            "SELECT 'c'::text",
            "SELECT 'a'::text",
            "SELECT 'd'::text",
        ]
        evicted = states["SELECT 'b'::text"]
        assert evicted.closed
        # ...and it is closed on the server by the next request.
        assert await con.fetchval("SELECT 'c'::text") == "c"
        assert con._stmts_to_close == set()
        assert not await _on_server(con, evicted.name)
        assert await _on_server(con, states["SELECT 'a'::text"].name)

        # It runs again when asked: prepared anew, under a new name.
        assert await con.fetchval("SELECT 'b'::text") == "b"
        again = [s for s in con._stmt_cache.iter_statements() if s.query == "SELECT 'b'::text"]
        assert len(again) == 1 and again[0] is not evicted and again[0].name != evicted.name

        # Shrinking the limit evicts from the old end.
        con._stmt_cache.set_max_size(1)
        assert len(con._stmt_cache) == 1
        assert _cached_queries(con) == ["SELECT 'b'::text"]
        await con.fetchval("SELECT 'b'::text")
        assert not await _on_server(con, states["SELECT 'a'::text"].name)
        # Growing it again keeps what is there.
        con._stmt_cache.set_max_size(10)
        assert _cached_queries(con)[0] == "SELECT 'b'::text"
    finally:
        await con.close()


async def test_cache_hits_share_one_state(dsn):
    con = await ferropg.connect(dsn)
    try:
        first = await con._prepare("SELECT 10 + $1::int", use_cache=True)
        second = await con._prepare("SELECT 10 + $1::int", use_cache=True)
        assert second._state is first._state
        assert await con.fetchval("SELECT 10 + $1::int", 5) == 15
        assert list(con._stmt_cache.iter_statements()) == [first._state]
        # Without the cache, prepare() makes a statement of its own.
        own = await con.prepare("SELECT 10 + $1::int")
        assert own._state is not first._state
        assert await own.fetchval(1) == 11
        assert len(con._stmt_cache) == 1
    finally:
        await con.close()


async def test_evicted_statements_held_by_prepared_statements(dsn):
    con = await ferropg.connect(dsn, statement_cache_size=2)
    try:
        held = []
        for i in range(6):
            st = await con._prepare(f"SELECT {i} * 7", use_cache=True)
            assert await st.fetchval() == i * 7
            held.append(st)
        assert len(con._stmt_cache) == 2
        # The four evicted statements are still referenced: nothing to close,
        # and they still run.
        assert con._stmts_to_close == set()
        assert [await st.fetchval() for st in held] == [i * 7 for i in range(6)]
        assert all(not st._state.closed for st in held)
        evicted_names = {st.get_name() for st in held[:4]}
        for name in evicted_names:
            assert await _on_server(con, name)

        # Once garbage-collected, the evicted ones are queued to be closed...
        held.clear()
        del st
        gc.collect()
        to_close = con._stmts_to_close
        assert len(to_close) == 4
        assert all(s.closed for s in to_close)
        assert {s.name for s in to_close} == evicted_names
        # ...while those still cached stay.
        assert len(con._stmt_cache) == 2
        assert not any(s.closed for s in con._stmt_cache.iter_statements())

        # The next prepare closes them on the server.
        assert await con.fetchval("SELECT 'next'") == "next"
        assert con._stmts_to_close == set()
        for name in evicted_names:
            assert not await _on_server(con, name)
    finally:
        await con.close()


async def test_unreferenced_cached_statement_stays(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con._prepare("SELECT 'kept'", use_cache=True)
        name = st.get_name()
        del st
        gc.collect()
        assert len(con._stmt_cache) == 1
        assert con._stmts_to_close == set()
        assert name in await _server_statements(con)
        assert await con.fetchval("SELECT 'kept'") == "kept"

        # A prepare() statement nobody holds any more is closed on the server.
        loose = await con.prepare("SELECT 'loose'")
        loose_name = loose.get_name()
        assert loose_name in await _server_statements(con)
        del loose
        gc.collect()
        assert {s.name for s in con._stmts_to_close} == {loose_name}
        assert await con.fetchval("SELECT 'next'") == "next"
        assert con._stmts_to_close == set()
        assert loose_name not in await _server_statements(con)
    finally:
        await con.close()


async def test_size_zero_via_set_max_size(dsn):
    con = await ferropg.connect(dsn)
    try:
        con._stmt_cache.set_max_size(0)
        st = await con._prepare("SELECT 'nocache'", use_cache=True)
        assert len(con._stmt_cache) == 0
        assert await st.fetchval() == "nocache"
        assert await con.fetchval("SELECT 5") == 5
        assert len(con._stmt_cache) == 0
        del st
        gc.collect()
        assert len(con._stmts_to_close) == 1
        await con.fetchval("SELECT 6")
        assert con._stmts_to_close == set()
    finally:
        await con.close()


async def test_max_cacheable_statement_size(dsn):
    con = await ferropg.connect(dsn, max_cacheable_statement_size=30)
    try:
        short = "SELECT 1"
        long = "SELECT '" + "y" * 40 + "'"
        assert await con.fetchval(short) == 1
        assert len(con._stmt_cache) == 1
        assert await con.fetchval(long) == "y" * 40
        assert await con.fetchval(long) == "y" * 40
        assert _cached_queries(con) == [short]
        await con._prepare(long, use_cache=True)
        assert len(con._stmt_cache) == 1
        # A query of exactly the limit is cached (the size counts characters).
        exact = "SELECT 'ééééééééééééééééééééé'"
        assert len(exact) == 30
        assert await con.fetchval(exact) == "é" * 21
        assert len(con._stmt_cache) == 2
        # Long queries run on the unnamed statement: nothing is left on the server.
        assert not any("y" * 40 in q for q in _cached_queries(con))
        assert len(await _server_statements(con)) == 2
    finally:
        await con.close()

    con = await ferropg.connect(dsn, max_cacheable_statement_size=0)  # no limit
    try:
        huge = "SELECT '" + "z" * 20000 + "'"
        assert await con.fetchval(huge) == "z" * 20000
        assert _cached_queries(con) == [huge]
    finally:
        await con.close()


async def test_cache_disabled_uses_the_unnamed_statement(dsn):
    con = await ferropg.connect(dsn, statement_cache_size=0)
    try:
        assert con._stmt_cache.get_max_size() == 0
        assert await con.fetchval("SELECT 1") == 1
        assert await con.fetchval("SELECT $1::text || '!'", "a") == "a!"
        assert len(con._stmt_cache) == 0

        add = await con.prepare("SELECT $1::int + 1")
        cat = await con.prepare("SELECT $1::text || $2::text AS s, 7 AS n")
        assert add.get_name() == "" and cat.get_name() == ""
        # Both share the server's single unnamed statement, so each execution
        # parses its query again; interleaving them must not mix them up.
        for i in range(3):
            assert await add.fetchval(i) == i + 1
            row = await cat.fetchrow(f"x{i}", "y")
            assert tuple(row) == (f"x{i}y", 7)
            assert await con.fetchval("SELECT 'between'") == "between"
        assert await add.fetch(41) == [(42,)]
        assert [tuple(r) for r in await cat.fetchmany([("p", "q"), ("r", "s")])] == [
            ("pq", 7),
            ("rs", 7),
        ]
        assert await add.fetchval(9) == 10

        # An explicit name is still honoured.
        named = await con.prepare("SELECT 99", name="ferro_nocache_named")
        assert named.get_name() == "ferro_nocache_named"
        assert await _server_statements(con) == {"ferro_nocache_named"}

        # A timeout does not leave the unnamed statement in a bad state.
        with pytest.raises(asyncio.TimeoutError):
            await con.fetchval("SELECT pg_sleep(10)", timeout=0.05)
        assert await add.fetchval(1) == 2
        assert await con.fetchval("SELECT 3") == 3

        # Cursors work (they need a named statement and portal).
        async with con.transaction():
            got = [r[0] async for r in con.cursor("SELECT generate_series(1, 5)", prefetch=2)]
            assert got == [1, 2, 3, 4, 5]
            cur = await add.cursor(5)
            assert await cur.fetchrow() == (6,)
    finally:
        await con.close()


async def test_uncached_cursor_statements_are_closed(dsn):
    for options in ({"statement_cache_size": 0}, {"max_cacheable_statement_size": 12}):
        con = await ferropg.connect(dsn, **options)
        try:
            for i in range(4):
                async with con.transaction():
                    it = [r async for r in con.cursor(f"SELECT {i} AS cursor_leak")]
                    assert it == [(i,)]
                    cur = await con.cursor(f"SELECT {i} + 1 AS cursor_leak")
                    assert await cur.fetchrow() == (i + 1,)
                    del cur
            gc.collect()
            await con.fetchval("SELECT 1")
            # Statements made just for a cursor must not pile up on the server.
            left = {n for n in await _server_statements(con) if n.startswith("__ferropg")}
            cached = {s.name for s in con._stmt_cache.iter_statements()}
            assert left <= cached, options
        finally:
            await con.close()


async def test_lifetime_expiry(dsn):
    con = await ferropg.connect(dsn, max_cached_statement_lifetime=0.25)
    try:
        assert con._stmt_cache.get_max_lifetime() == 0.25
        st = await con._prepare("SELECT 'aging'", use_cache=True)
        state = st._state
        # Hits do not extend the lifetime.
        await asyncio.sleep(0.1)
        assert (await con._prepare("SELECT 'aging'", use_cache=True))._state is state
        await asyncio.sleep(0.2)
        fresh = await con._prepare("SELECT 'aging'", use_cache=True)
        assert fresh._state is not state
        assert list(con._stmt_cache.iter_statements()) == [fresh._state]
        # The expired state still works for whoever holds it.
        assert not state.closed
        assert await st.fetchval() == "aging"
        assert await fresh.fetchval() == "aging"

        # Queries see the expiry too.
        assert await con.fetchval("SELECT 'q'") == "q"
        q_state = [s for s in con._stmt_cache.iter_statements() if s.query == "SELECT 'q'"][0]
        await asyncio.sleep(0.3)
        assert await con.fetchval("SELECT 'q'") == "q"
        q_new = [s for s in con._stmt_cache.iter_statements() if s.query == "SELECT 'q'"][0]
        assert q_new is not q_state
        assert q_state.closed  # nobody held it: closed
        assert q_state.name not in await _server_statements(con)

        # A lifetime of 0 means forever.
        con._stmt_cache.set_max_lifetime(0)
        kept = (await con._prepare("SELECT 'forever'", use_cache=True))._state
        await asyncio.sleep(0.3)
        assert (await con._prepare("SELECT 'forever'", use_cache=True))._state is kept
    finally:
        await con.close()


async def test_close_clears_the_cache(dsn):
    con = await ferropg.connect(dsn)
    for i in range(3):
        await con.fetchval(f"SELECT {i}")
    states = list(con._stmt_cache.iter_statements())
    assert len(states) == 3
    await con.close()
    assert len(con._stmt_cache) == 0
    assert con._stmts_to_close == set()


async def _schema_table(con, name):
    await con.execute(
        f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (a int); INSERT INTO {name} VALUES (1)"
    )


async def test_invalid_cached_statement_retried_outside_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _schema_table(con, "cache_inval")
        assert [tuple(r) for r in await con.fetch("SELECT * FROM cache_inval")] == [(1,)]
        assert await con.fetchrow("SELECT * FROM cache_inval WHERE a = $1", 1) == (1,)
        assert await con.fetchval("SELECT * FROM cache_inval") == 1
        assert await con.execute("SELECT * FROM cache_inval WHERE a = $1", 1) == "SELECT 1"

        await con.execute("ALTER TABLE cache_inval ADD COLUMN b text DEFAULT 'new'")
        rows = await con.fetch("SELECT * FROM cache_inval")
        assert [dict(r) for r in rows] == [{"a": 1, "b": "new"}]

        await con.execute("ALTER TABLE cache_inval ADD COLUMN c int DEFAULT 3")
        row = await con.fetchrow("SELECT * FROM cache_inval WHERE a = $1", 1)
        assert tuple(row) == (1, "new", 3)

        await con.execute("ALTER TABLE cache_inval ADD COLUMN d int DEFAULT 4")
        assert await con.fetchval("SELECT * FROM cache_inval", column=3) == 4

        await con.execute("ALTER TABLE cache_inval ADD COLUMN e int DEFAULT 5")
        assert await con.execute("SELECT * FROM cache_inval WHERE a = $1", 1) == "SELECT 1"
    finally:
        await con.execute("DROP TABLE IF EXISTS cache_inval")
        await con.close()


async def test_invalid_cached_statement_raised_in_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _schema_table(con, "cache_inval_tx")
        assert await con.fetchval("SELECT * FROM cache_inval_tx") == 1
        await con.execute("ALTER TABLE cache_inval_tx ADD COLUMN b int DEFAULT 2")
        with pytest.raises(exceptions.InvalidCachedStatementError) as info:
            async with con.transaction():
                await con.fetch("SELECT * FROM cache_inval_tx")
        e = info.value
        assert isinstance(e, exceptions.FeatureNotSupportedError)
        assert e.sqlstate == "0A000"
        assert "cached statement plan is invalid" in str(e)
        assert not con.is_in_transaction()
        # Outside the transaction the same query works again.
        assert [tuple(r) for r in await con.fetch("SELECT * FROM cache_inval_tx")] == [(1, 2)]
    finally:
        await con.execute("DROP TABLE IF EXISTS cache_inval_tx")
        await con.close()


async def test_invalid_cached_statement_in_transaction_drops_the_cache(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _schema_table(con, "cache_inval_drop")
        assert await con.fetchval("SELECT * FROM cache_inval_drop") == 1
        await con.execute("ALTER TABLE cache_inval_drop ADD COLUMN b int DEFAULT 2")
        with pytest.raises(exceptions.InvalidCachedStatementError):
            async with con.transaction():
                await con.fetch("SELECT * FROM cache_inval_drop")
        # As in asyncpg, the stale statement is gone after the first failure, so
        # the next transaction is not doomed to fail the same way.
        async with con.transaction():
            rows = await con.fetch("SELECT * FROM cache_inval_drop")
        assert [tuple(r) for r in rows] == [(1, 2)]
    finally:
        await con.execute("DROP TABLE IF EXISTS cache_inval_drop")
        await con.close()


async def test_invalid_cached_statement_retried_by_executemany(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _schema_table(con, "cache_inval_many")
        query = "SELECT * FROM cache_inval_many WHERE a = $1"
        assert [tuple(r) for r in await con.fetchmany(query, [(1,)])] == [(1,)]
        await con.execute("ALTER TABLE cache_inval_many ADD COLUMN b int DEFAULT 2")
        rows = await con.fetchmany(query, [(1,), (1,)])
        assert [tuple(r) for r in rows] == [(1, 2), (1, 2)]
        await con.execute("ALTER TABLE cache_inval_many ADD COLUMN c int DEFAULT 3")
        assert await con.executemany(query, [(1,)]) is None
    finally:
        await con.execute("DROP TABLE IF EXISTS cache_inval_many")
        await con.close()


async def test_invalid_cached_statement_not_retried_for_prepared(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _schema_table(con, "cache_inval_prep")
        st = await con.prepare("SELECT * FROM cache_inval_prep")
        assert await st.fetchval() == 1
        await con.execute("ALTER TABLE cache_inval_prep ALTER COLUMN a TYPE text")
        with pytest.raises(exceptions.InvalidCachedStatementError):
            await st.fetchrow()
        with pytest.raises(exceptions.InvalidCachedStatementError):
            await st.fetch()
        # A new statement sees the new type.
        assert await con.fetchval("SELECT * FROM cache_inval_prep") == "1"
    finally:
        await con.execute("DROP TABLE IF EXISTS cache_inval_prep")
        await con.close()
