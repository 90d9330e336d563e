"""executemany() and fetchmany(): streaming input, atomicity, errors from either side."""

import asyncio

import pytest

import ferropg
from ferropg import exceptions

INSERT = "INSERT INTO many_t VALUES ($1, $2)"
BIG = 32 * 1024  # one argument of this size fills a good part of a write batch


async def _fresh(con):
    await con.execute(
        "DROP TABLE IF EXISTS many_t; CREATE TABLE many_t (k text PRIMARY KEY, v int)"
    )


async def _count(con):
    return await con.fetchval("SELECT count(*) FROM many_t")


async def _drop(con):
    await con.execute("DROP TABLE IF EXISTS many_t")


async def test_executemany_inserts(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        assert await con.executemany(INSERT, [("a", 1), ("b", 2), ["c", 3]]) is None
        assert await con.executemany(INSERT, (("d", 4),)) is None
        assert await con.executemany(INSERT, ((f"g{i}", i) for i in range(3))) is None
        rows = await con.fetch("SELECT k, v FROM many_t ORDER BY k")
        assert [tuple(r) for r in rows] == [
            ("a", 1),
            ("b", 2),
            ("c", 3),
            ("d", 4),
            ("g0", 0),
            ("g1", 1),
            ("g2", 2),
        ]
        # Empty inputs run nothing and are fine.
        assert await con.executemany(INSERT, []) is None
        assert await con.executemany(INSERT, ()) is None
        assert await con.executemany(INSERT, iter([])) is None
        assert await con.fetchmany(INSERT + " RETURNING k", []) == []
        assert await _count(con) == 7
        # Updates and NULLs.
        await con.executemany("UPDATE many_t SET v = $2 WHERE k = $1", [("a", None), ("b", 20)])
        assert await con.fetchval("SELECT v FROM many_t WHERE k = 'a'") is None
        assert await con.fetchval("SELECT v FROM many_t WHERE k = 'b'") == 20
    finally:
        await _drop(con)
        await con.close()


async def test_fetchmany(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        rows = await con.fetchmany(
            "INSERT INTO many_t VALUES ($1, $2) RETURNING v * 10 AS tens, upper(k) AS k",
            [("x", 1), ("y", 2), ("z", 3)],
        )
        assert [(r["tens"], r["k"]) for r in rows] == [(10, "X"), (20, "Y"), (30, "Z")]
        # Without RETURNING: no rows, but the rows went in.
        assert await con.fetchmany(INSERT, [("w", 4)]) == []
        assert await _count(con) == 4
        # A SELECT per element: zero, one or many rows each, all in order.
        rows = await con.fetchmany(
            "SELECT k FROM many_t WHERE v <= $1 ORDER BY v", [(0,), (1,), (3,)]
        )
        assert [r[0] for r in rows] == ["x", "x", "y", "z"]
    finally:
        await _drop(con)
        await con.close()


async def test_fetchmany_record_class(dsn):
    class Item(ferropg.Record):
        pass

    con = await ferropg.connect(dsn)
    try:
        rows = await con.fetchmany("SELECT $1::int AS n", [(1,), (2,)], record_class=Item)
        assert [r["n"] for r in rows] == [1, 2]
        assert all(type(r) is Item for r in rows)
    finally:
        await con.close()


async def test_atomic_on_server_error(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        await con.execute("INSERT INTO many_t VALUES ('existing', 0)")
        with pytest.raises(exceptions.UniqueViolationError) as info:
            await con.executemany(INSERT, [("n1", 1), ("n2", 2), ("existing", 3), ("n4", 4)])
        assert "existing" in info.value.detail
        assert [r[0] for r in await con.fetch("SELECT k FROM many_t")] == ["existing"]

        await con.execute("ALTER TABLE many_t ADD CHECK (v < 100)")
        with pytest.raises(exceptions.CheckViolationError):
            await con.fetchmany(INSERT + " RETURNING k", [("r1", 1), ("r2", 200)])
        assert await _count(con) == 1
        assert not con.is_in_transaction()
        assert await con.fetchval("SELECT 'usable'") == "usable"
    finally:
        await _drop(con)
        await con.close()


async def test_server_error_in_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        tr = con.transaction()
        await tr.start()
        await con.execute("INSERT INTO many_t VALUES ('before', 0)")
        with pytest.raises(exceptions.UniqueViolationError):
            await con.executemany(INSERT, [("dup", 1), ("dup", 2)])
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await _count(con)
        await tr.rollback()
        assert await _count(con) == 0
    finally:
        await _drop(con)
        await con.close()


async def test_input_consumed_lazily_and_stops_early(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        pulled = 0
        total = 1000

        def rows():
            nonlocal pulled
            for i in range(total):
                pulled += 1
                # The second row fails; the rest are big, so that sending them all
                # would take many write batches.
                yield ("same", i) if i < 2 else ("b" * BIG + str(i), i)

        with pytest.raises(exceptions.UniqueViolationError):
            await con.executemany(INSERT, rows())
        assert 2 <= pulled < total // 2
        assert await _count(con) == 0
    finally:
        await _drop(con)
        await con.close()


class _Boom(Exception):
    pass


def _failing_rows(good, size=BIG):
    for i in range(good):
        yield ("c" * size + str(i), i)
    raise _Boom("no more rows")


async def test_iterator_exception_outside_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        for good in (0, 3, 15):  # before anything is sent, within the first batch, later
            with pytest.raises(_Boom, match="no more rows") as info:
                await con.executemany(INSERT, _failing_rows(good))
            assert type(info.value) is _Boom
            assert await _count(con) == 0, good
            assert not con.is_in_transaction()

        def bad_values():
            yield ("ok", 1)
            yield ("ok2", 1 // 0)

        with pytest.raises(ZeroDivisionError):
            await con.fetchmany(INSERT + " RETURNING k", bad_values())
        assert await _count(con) == 0
        assert await con.executemany(INSERT, [("after", 1)]) is None
        assert await _count(con) == 1
    finally:
        await _drop(con)
        await con.close()


async def test_iterator_exception_in_transaction(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        tr = con.transaction()
        await tr.start()
        with pytest.raises(_Boom):
            await con.executemany(INSERT, _failing_rows(15))
        # As in asyncpg, the batches sent before the failure ran and stay in the
        # transaction, which is not failed; the rest never went out.
        kept = await _count(con)
        assert 0 < kept < 15
        got = sorted(r[0] for r in await con.fetch("SELECT v FROM many_t"))
        assert got == list(range(kept))
        await con.execute("INSERT INTO many_t VALUES ('more', 99)")
        await tr.rollback()
        assert await _count(con) == 0

        # A failure before anything was sent leaves the transaction as it was.
        async with con.transaction():
            await con.execute("INSERT INTO many_t VALUES ('first', 0)")
            with pytest.raises(_Boom):
                await con.executemany(INSERT, _failing_rows(0))
            assert await _count(con) == 1
        assert await _count(con) == 1
    finally:
        await _drop(con)
        await con.close()


async def test_server_error_beats_later_client_error(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)

        def rows():
            yield ("twice", 0)
            yield ("twice", 1)
            for i in range(12):
                yield ("d" * BIG + str(i), i)
            raise _Boom("late")

        # The duplicate went out in an early batch; the server's error explains the
        # failure better than the iterator's later one.
        with pytest.raises(exceptions.UniqueViolationError):
            await con.executemany(INSERT, rows())
        assert await _count(con) == 0
    finally:
        await _drop(con)
        await con.close()


async def test_bad_elements(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        with pytest.raises(exceptions.DataError) as info:
            await con.executemany(INSERT, [("a", 1), ("b", 2), {"k": "c", "v": 3}])
        assert str(info.value) == (
            "invalid input in executemany() argument sequence element #2: "
            "expected a sequence, got dict"
        )
        assert isinstance(info.value, exceptions.PostgresError)
        with pytest.raises(exceptions.DataError, match=r"element #1: expected a sequence, got int"):
            await con.executemany(INSERT, [("a", 1), 5])
        with pytest.raises(
            exceptions.DataError, match=r"element #0: expected a sequence, got NoneType"
        ):
            await con.fetchmany(INSERT, [None])

        with pytest.raises(exceptions.DataError) as info:
            await con.executemany(INSERT, [("a", 1), ("b", 2), ("c", 3), ("d", "four")])
        assert str(info.value).startswith(
            "invalid input for query argument $2 in element #3 of executemany() sequence: 'four' ("
        )
        with pytest.raises(exceptions.DataError, match=r"argument \$1 in element #0 of"):
            await con.executemany(INSERT, [(1, 1)])

        with pytest.raises(exceptions.InterfaceError, match="expects 2 arguments.*1 was passed"):
            await con.executemany(INSERT, [("a", 1), ("b",)])
        with pytest.raises(TypeError):
            await con.executemany(INSERT, 5)
        assert await _count(con) == 0
        assert await con.fetchval("SELECT 'usable'") == "usable"
    finally:
        await _drop(con)
        await con.close()


async def test_ten_thousand_rows(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        n = 10_000
        await con.executemany(INSERT, ((f"k{i}", i) for i in range(n)))
        assert await _count(con) == n
        assert await con.fetchval("SELECT sum(v) FROM many_t") == n * (n - 1) // 2
        rows = await con.fetchmany(
            "UPDATE many_t SET v = v + 1 WHERE k = $1 RETURNING v",
            [(f"k{i}",) for i in range(n)],
        )
        assert [r[0] for r in rows] == list(range(1, n + 1))
    finally:
        await _drop(con)
        await con.close()


async def test_without_statement_cache(dsn):
    con = await ferropg.connect(dsn, statement_cache_size=0)
    try:
        await _fresh(con)
        await con.executemany(INSERT, [(f"u{i}", i) for i in range(50)])
        rows = await con.fetchmany("SELECT v FROM many_t WHERE k = $1", [("u3",), ("u40",)])
        assert [r[0] for r in rows] == [3, 40]
        with pytest.raises(exceptions.UniqueViolationError):
            await con.executemany(INSERT, [("new", 1), ("u1", 1)])
        assert await _count(con) == 50
    finally:
        await _drop(con)
        await con.close()


async def test_executemany_while_busy(dsn):
    con = await ferropg.connect(dsn)
    try:
        await _fresh(con)
        slow = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.2)::text || 'z'"))
        await asyncio.sleep(0.05)
        with pytest.raises(exceptions.InterfaceError, match="another operation is in progress"):
            await con.executemany(INSERT, [("a", 1)])
        with pytest.raises(exceptions.InterfaceError, match="another operation is in progress"):
            await con.fetchmany(INSERT, [("a", 1)])
        assert await slow == "z"
        assert await _count(con) == 0
    finally:
        await _drop(con)
        await con.close()
