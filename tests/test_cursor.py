"""Cursors: iteration with prefetch, Cursor.fetch/fetchrow/forward, transactions, misuse."""

import asyncio

import pytest

import ferropg
from ferropg import exceptions

SERIES = "SELECT g, g * g AS sq, 'r' || g AS label FROM generate_series(1, $1::int) g"


def _expected(n):
    return [(g, g * g, f"r{g}") for g in range(1, n + 1)]


async def test_outside_a_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT generate_series(1, 3)")

        async def iterate(factory):
            async for _ in factory:
                pass

        attempts = [
            lambda: iterate(con.cursor("SELECT 1")),
            lambda: iterate(con.cursor("SELECT 1", prefetch=10)),
            lambda: con.cursor("SELECT 1"),
            lambda: iterate(st.cursor()),
            lambda: st.cursor(),
        ]
        for attempt in attempts:
            with pytest.raises(exceptions.NoActiveSQLTransactionError) as info:
                await attempt()
            # Both what asyncpg raises and what it documents.
            assert isinstance(info.value, exceptions.InterfaceError)
            assert isinstance(info.value, exceptions.PostgresError)
            assert "cursor cannot be created outside of a transaction" in str(info.value)
        assert not con.is_in_transaction()
        assert await con.fetchval("SELECT 'still fine'") == "still fine"

        # A cursor opened in a transaction cannot outlive it.
        async with con.transaction():
            cur = await con.cursor("SELECT generate_series(1, 10)")
            assert await cur.fetchrow() == (1,)
        for call in (lambda: cur.fetch(1), lambda: cur.fetchrow(), lambda: cur.forward(1)):
            with pytest.raises(exceptions.InterfaceError, match="outside of a transaction"):
                await call()
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()


async def test_iteration_with_prefetch(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            for prefetch in (1, 2, 5, 7, 20, 21, 1000):
                got = [tuple(r) async for r in con.cursor(SERIES, 20, prefetch=prefetch)]
                assert got == _expected(20), prefetch
            # Default prefetch, over more rows than one batch.
            got = [r["g"] async for r in con.cursor(SERIES, 130)]
            assert got == list(range(1, 131))
            # An empty result.
            assert [r async for r in con.cursor(SERIES, 0, prefetch=3)] == []
            assert [r async for r in con.cursor("SELECT 1 WHERE false")] == []
            # Other queries may run between the rows.
            seen = []
            async for r in con.cursor(SERIES, 5, prefetch=2):
                seen.append(await con.fetchval("SELECT $1::int * 10", r["g"]))
            assert seen == [10, 20, 30, 40, 50]
    finally:
        await con.close()


async def test_prefetch_validation(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            for bad in (0, -1, -50):
                with pytest.raises(exceptions.InterfaceError, match="must be greater than zero"):
                    async for _ in con.cursor("SELECT 1", prefetch=bad):
                        pass
            with pytest.raises(exceptions.InterfaceError, match="prefetch argument can only"):
                await con.cursor("SELECT 1", prefetch=5)
            st = await con.prepare("SELECT 1")
            with pytest.raises(exceptions.InterfaceError, match="prefetch argument can only"):
                await st.cursor(prefetch=1)
            assert await con.fetchval("SELECT 1") == 1
    finally:
        await con.close()


async def test_cursor_fetch_fetchrow_forward(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            cur = await con.cursor("SELECT generate_series(0, $1::int)", 30)
            assert type(cur).__name__ == "Cursor"
            assert [r[0] for r in await cur.fetch(3)] == [0, 1, 2]
            assert await cur.fetchrow() == (3,)
            assert await cur.forward(4) == 4  # skips 4..7
            assert await cur.fetchrow() == (8,)
            assert [r[0] for r in await cur.fetch(1)] == [9]
            assert await cur.forward(1) == 1
            assert [r[0] for r in await cur.fetch(5)] == [11, 12, 13, 14, 15]
            # forward past the end reports how far it got.
            assert await cur.forward(100) == 15
            assert await cur.fetchrow() is None
            assert await cur.fetch(10) == []

            cur = await con.cursor("SELECT generate_series(1, 5)")
            assert [r[0] for r in await cur.fetch(50)] == [1, 2, 3, 4, 5]
            assert await cur.fetchrow() is None
            assert await cur.fetch(1) == []

            cur = await con.cursor("SELECT generate_series(1, 2)")
            assert await cur.fetchrow() == (1,)
            assert await cur.fetchrow() == (2,)
            assert await cur.fetchrow() is None
            assert await cur.fetchrow() is None
            assert "exhausted" in repr(cur)
    finally:
        await con.close()


async def test_cursor_bad_counts(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            cur = await con.cursor("SELECT generate_series(1, 10)")
            for n in (0, -1):
                with pytest.raises(exceptions.InterfaceError, match="greater than zero"):
                    await cur.fetch(n)
                with pytest.raises(exceptions.InterfaceError, match="greater than zero"):
                    await cur.forward(n)
            # Nothing moved, and the transaction is intact.
            assert await cur.fetchrow() == (1,)
            assert await con.fetchval("SELECT 'not failed'") == "not failed"
    finally:
        await con.close()


async def test_forward_after_the_end(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            cur = await con.cursor("SELECT generate_series(1, 3)")
            assert len(await cur.fetch(10)) == 3
            assert await cur.forward(5) == 0
            assert await con.fetchval("SELECT 'tx ok'") == "tx ok"

            cur = await con.cursor("SELECT generate_series(1, 2)")
            assert await cur.fetchrow() == (1,)
            assert await cur.fetchrow() == (2,)
            assert await cur.fetchrow() is None
            assert await cur.forward(1) == 0
    finally:
        await con.close()


async def test_portal_closed_after_iteration(dsn):
    con = await ferropg.connect(dsn)
    try:
        for prefetch in (1, 2, 50):
            async with con.transaction():
                await con.execute(
                    "CREATE TABLE cursor_portal (a int); INSERT INTO cursor_portal VALUES (1), (2)"
                )
                rows = [
                    r[0] async for r in con.cursor("SELECT a FROM cursor_portal", prefetch=prefetch)
                ]
                assert rows == [1, 2]
                # An open portal would keep the table in use.
                await con.execute("DROP TABLE cursor_portal")
            assert await con.fetchval("SELECT to_regclass('cursor_portal')") is None
    finally:
        await con.execute("DROP TABLE IF EXISTS cursor_portal")
        await con.close()


async def test_cursor_over_prepared_statement(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare(
            "SELECT g AS id, g % 2 = 0 AS even, CASE WHEN g % 3 = 0 THEN NULL ELSE g::text END AS t,"
            " g::numeric / 4 AS q FROM generate_series(1, $1::int) g"
        )
        async with con.transaction():
            rows = [r async for r in st.cursor(6, prefetch=4)]
            assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
            assert [r["even"] for r in rows] == [False, True, False, True, False, True]
            assert [r["t"] for r in rows] == ["1", "2", None, "4", "5", None]
            assert [str(r["q"]) for r in rows[:2]] == [
                "0.25000000000000000000",
                "0.50000000000000000000",
            ]
            assert rows == await st.fetch(6)

            # Two cursors over one statement, in separate portals, read independently.
            a = await st.cursor(10)
            b = await st.cursor(3)
            assert [r["id"] for r in await a.fetch(2)] == [1, 2]
            assert [r["id"] for r in await b.fetch(2)] == [1, 2]
            assert (await a.fetchrow())["id"] == 3
            assert [r["id"] for r in await b.fetch(5)] == [3]
            assert await b.fetchrow() is None
            assert await a.forward(6) == 6
            assert [r["id"] for r in await a.fetch(5)] == [10]
            # The statement itself still works while cursors exist.
            assert await st.fetchval(1) == 1
    finally:
        await con.close()


async def test_cursor_arguments(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            cur = await con.cursor(SERIES, 4)
            assert [tuple(r) for r in await cur.fetch(10)] == _expected(4)
            with pytest.raises(exceptions.InterfaceError, match="expects 1 argument"):
                await con.cursor(SERIES)
            with pytest.raises(exceptions.InterfaceError, match="expects 1 argument"):
                async for _ in con.cursor(SERIES, 1, 2):
                    pass
            with pytest.raises(exceptions.DataError, match=r"query argument \$1"):
                await con.cursor(SERIES, "four")
            # Bad arguments are caught before anything is sent: the transaction is fine.
            assert await con.fetchval("SELECT 1") == 1
    finally:
        await con.close()


async def test_cursor_server_error(dsn):
    con = await ferropg.connect(dsn)
    try:
        tr = con.transaction()
        await tr.start()
        got = []
        with pytest.raises(exceptions.DivisionByZeroError):
            async for r in con.cursor(
                "SELECT 10 / (3 - g) FROM generate_series(1, 5) g", prefetch=1
            ):
                got.append(r[0])
        assert got == [5, 10]
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await con.fetchval("SELECT 1")
        await tr.rollback()

        async with con.transaction():
            with pytest.raises(exceptions.UndefinedTableError):
                await con.cursor("SELECT * FROM cursor_no_such_table")
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()


async def test_cursor_on_closed_statement(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT generate_series(1, 3)")
        factory = st.cursor()
        st._state.mark_closed()
        async with con.transaction():
            with pytest.raises(exceptions.InterfaceError, match="statement is closed"):
                async for _ in factory:
                    pass
            with pytest.raises(exceptions.InterfaceError, match="statement is closed"):
                await st.cursor()
            assert await con.fetchval("SELECT 1") == 1
    finally:
        await con.close()


async def test_cursor_while_busy(dsn):
    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            cur = await con.cursor("SELECT generate_series(1, 10)")
            slow = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.2)::text || 'slept'"))
            await asyncio.sleep(0.05)
            for call in (
                lambda: cur.fetch(2),
                lambda: cur.fetchrow(),
                lambda: con.cursor("SELECT 1"),
            ):
                with pytest.raises(exceptions.InterfaceError, match="another operation"):
                    await call()
            assert await slow == "slept"
            assert [r[0] for r in await cur.fetch(2)] == [1, 2]
    finally:
        await con.close()


async def test_cursor_record_class(dsn):
    class Row(ferropg.Record):
        pass

    con = await ferropg.connect(dsn)
    try:
        async with con.transaction():
            rows = [r async for r in con.cursor("SELECT 1 AS a", record_class=Row)]
            assert [type(r) for r in rows] == [Row]
            cur = await con.cursor("SELECT 2 AS a", record_class=Row)
            assert type(await cur.fetchrow()) is Row
    finally:
        await con.close()
