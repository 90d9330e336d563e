"""Connection.prepare() and PreparedStatement: running, introspection, names, misuse."""

import asyncio

import pytest

import ferropg
from ferropg import exceptions
from ferropg.types import Attribute, Type

ARG_COUNT_HINT = "Check the query against the passed list of arguments."


def _pg(oid, name, kind="scalar"):
    return Type(oid, name, kind, "pg_catalog")


async def test_fetch_methods_and_status(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare(
            "SELECT g AS n, repeat('x', g) AS s FROM generate_series(1, $1::int) g"
        )
        assert st.get_statusmsg() is None  # nothing ran yet

        rows = await st.fetch(4)
        assert [(r["n"], r["s"]) for r in rows] == [
            (1, "x"),
            (2, "xx"),
            (3, "xxx"),
            (4, "xxxx"),
        ]
        assert st.get_statusmsg() == "SELECT 4"
        assert await st.fetch(0) == []
        assert st.get_statusmsg() == "SELECT 0"

        # fetchval/fetchrow stop after one row: the portal is suspended, no status.
        assert await st.fetchval(3) == 1
        assert st.get_statusmsg() is None
        assert await st.fetchval(3, column=1) == "x"
        row = await st.fetchrow(2)
        assert tuple(row) == (1, "x") and row["s"] == "x"
        assert st.get_statusmsg() is None
        assert await st.fetchrow(0) is None
        assert await st.fetchval(0) is None

        # The same statement runs again and again with different arguments.
        for i in range(1, 6):
            assert len(await st.fetch(i)) == i
        assert st.get_statusmsg() == "SELECT 5"
    finally:
        await con.close()


async def test_status_of_commands(dsn):
    con = await ferropg.connect(dsn)
    try:

        async def status(query, *args):
            st = await con.prepare(query)
            assert await st.fetch(*args) == []
            return st.get_statusmsg()

        assert await status("CREATE TEMP TABLE prep_status (a int)") == "CREATE TABLE"
        assert await status("INSERT INTO prep_status SELECT generate_series(1, 3)") == (
            "INSERT 0 3"
        )
        assert await status("UPDATE prep_status SET a = a * 10 WHERE a > $1", 1) == "UPDATE 2"
        assert await status("DELETE FROM prep_status WHERE a = $1", 30) == "DELETE 1"
        assert await status("DROP TABLE prep_status") == "DROP TABLE"
        # A command run with fetchval has no row to give.
        st = await con.prepare("SELECT set_config('application_name', $1, false)")
        assert await st.fetchval("prep-test") == "prep-test"
        st = await con.prepare("SET application_name = 'other'")
        assert await st.fetchval() is None
        assert await con.fetchval("SHOW application_name") == "other"
    finally:
        await con.close()


async def test_parameters_and_attributes(dsn):
    con = await ferropg.connect(dsn)
    try:
        query = (
            "SELECT $1::int4 AS i, $2::text AS t, $3::bool AS b, $4::int8 + 1 AS big, "
            "$5::numeric AS n, $6::float8 AS f"
        )
        st = await con.prepare(query)
        assert st.get_query() == query
        assert st.get_parameters() == (
            _pg(23, "int4"),
            _pg(25, "text"),
            _pg(16, "bool"),
            _pg(20, "int8"),
            _pg(1700, "numeric"),
            _pg(701, "float8"),
        )
        attrs = st.get_attributes()
        assert all(isinstance(a, Attribute) for a in attrs)
        assert [a.name for a in attrs] == ["i", "t", "b", "big", "n", "f"]
        assert [a.type.oid for a in attrs] == [23, 25, 16, 20, 1700, 701]
        assert attrs[1].type == _pg(25, "text")
        row = await st.fetchrow(7, "seven", True, 41, 2.5, 0.5)
        assert tuple(row)[:4] == (7, "seven", True, 42)
        assert str(row["n"]) == "2.5" and row["f"] == 0.5

        # Parameter types the server infers from context.
        st = await con.prepare("SELECT $1 = 'abc'::text AS eq, length($2) AS len")
        assert [p.name for p in st.get_parameters()] == ["text", "text"]
        assert [(a.name, a.type.name) for a in st.get_attributes()] == [
            ("eq", "bool"),
            ("len", "int4"),
        ]

        # No parameters; a command has no result columns.
        st = await con.prepare("SELECT 1")
        assert st.get_parameters() == ()
        st = await con.prepare("CREATE TEMP TABLE prep_attr (a int)")
        assert st.get_attributes() == ()
        assert st.get_parameters() == ()
    finally:
        await con.close()


async def test_parameter_type_names_beyond_the_common_scalars(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int4[], $2::text[], $3::money, $4::numeric[]")
        assert st.get_parameters() == (
            _pg(1007, "int4[]", "array"),
            _pg(1009, "text[]", "array"),
            _pg(790, "money"),
            _pg(1231, "numeric[]", "array"),
        )
    finally:
        await con.close()


async def test_prepared_executemany_and_fetchmany(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE prep_many (k int PRIMARY KEY, v text)")
        ins = await con.prepare("INSERT INTO prep_many VALUES ($1, $2)")
        assert await ins.executemany([(1, "one"), (2, "two")]) is None
        assert await ins.executemany([]) is None
        assert await ins.fetchmany([(3, "three")]) == []

        ret = await con.prepare("INSERT INTO prep_many VALUES ($1, $2) RETURNING k * 100, upper(v)")
        rows = await ret.fetchmany([(4, "four"), (5, "five")])
        assert [tuple(r) for r in rows] == [(400, "FOUR"), (500, "FIVE")]
        assert await ret.fetchmany(()) == []

        # Atomic: a failure in the middle leaves none of the rows behind.
        with pytest.raises(exceptions.UniqueViolationError):
            await ins.executemany([(6, "six"), (1, "again"), (7, "seven")])
        got = await con.fetch("SELECT k FROM prep_many ORDER BY k")
        assert [r[0] for r in got] == [1, 2, 3, 4, 5]

        sel = await con.prepare("SELECT v FROM prep_many WHERE k = $1")
        rows = await sel.fetchmany([(2,), (99,), (5,)])
        assert [r[0] for r in rows] == ["two", "five"]
        # The statement is still good for single runs afterwards.
        assert await sel.fetchval(3) == "three"
    finally:
        await con.close()


async def test_explain(dsn):
    con = await ferropg.connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE prep_explain (a int)")
        st = await con.prepare("SELECT a FROM prep_explain WHERE a > $1")
        plan = await st.explain(5)
        assert isinstance(plan, list) and len(plan) == 1
        top = plan[0]["Plan"]
        assert top["Relation Name"] == "prep_explain"
        assert "Actual Total Time" not in top
        assert "prep_explain.a > 5" in top["Filter"].replace("(", "").replace(")", "")

        ins = await con.prepare("INSERT INTO prep_explain SELECT generate_series(1, $1::int)")
        plan = await ins.explain(10, analyze=True)
        assert plan[0]["Plan"]["Operation"] == "Insert"
        assert "Actual Total Time" in plan[0]["Plan"]
        # ANALYZE ran the insert, and rolled it back.
        assert await con.fetchval("SELECT count(*) FROM prep_explain") == 0
        assert not con.is_in_transaction()

        # Inside a transaction, only the EXPLAIN's own effects are undone.
        async with con.transaction():
            await con.execute("INSERT INTO prep_explain VALUES (100)")
            await ins.explain(3, analyze=True)
            assert await con.fetchval("SELECT count(*) FROM prep_explain") == 1
        assert await con.fetchval("SELECT count(*) FROM prep_explain") == 1

        # The statement itself is unaffected by explaining it.
        assert await ins.fetch(2) == []
        assert await con.fetchval("SELECT count(*) FROM prep_explain") == 3
        with pytest.raises(exceptions.InterfaceError):
            await st.explain()  # one argument missing
    finally:
        await con.close()


async def test_named_statements(dsn):
    con = await ferropg.connect(dsn)
    try:
        auto1 = await con.prepare("SELECT 1")
        auto2 = await con.prepare("SELECT 1")
        assert auto1.get_name() and auto2.get_name()
        assert auto1.get_name() != auto2.get_name()
        # prepare() does not go through the statement cache.
        assert len(con._stmt_cache) == 0

        named = await con.prepare("SELECT $1::int * 3", name="ferro_triple")
        assert named.get_name() == "ferro_triple"
        assert await named.fetchval(4) == 12
        # The server knows it under that name.
        assert await con.fetchval("EXECUTE ferro_triple(5)") == 15
        names = {r[0] for r in await con.fetch("SELECT name FROM pg_prepared_statements")}
        assert {"ferro_triple", auto1.get_name(), auto2.get_name()} <= names

        with pytest.raises(exceptions.DuplicatePreparedStatementError) as info:
            await con.prepare("SELECT 2", name="ferro_triple")
        assert 'prepared statement "ferro_triple" already exists' in str(info.value)
        assert info.value.sqlstate == "42P05"
        assert "pgbouncer" in info.value.hint
        # Neither the connection nor the first statement suffered.
        assert await named.fetchval(2) == 6
        assert await con.fetchval("SELECT 'ok'") == "ok"
    finally:
        await con.close()


async def test_wrong_argument_count(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int + $2::int")
        with pytest.raises(exceptions.InterfaceError) as info:
            await st.fetchval(1)
        assert "the server expects 2 arguments for this query, 1 was passed" in str(info.value)
        with pytest.raises(exceptions.InterfaceError, match="expects 2 arguments.*3 were"):
            await st.fetch(1, 2, 3)
        with pytest.raises(exceptions.InterfaceError, match="expects 2 arguments.*0 were"):
            await st.fetchrow()
        one = await con.prepare("SELECT $1::text")
        with pytest.raises(exceptions.InterfaceError, match="expects 1 argument for"):
            await one.fetchval()
        none = await con.prepare("SELECT 0")
        with pytest.raises(exceptions.InterfaceError, match="expects 0 arguments.*1 was"):
            await none.fetchval(1)
        # Nothing was sent: everything still works.
        assert await st.fetchval(20, 22) == 42
    finally:
        await con.close()


async def test_wrong_argument_count_has_asyncpg_hint(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int")
        with pytest.raises(exceptions.InterfaceError) as info:
            await st.fetchval(1, 2)
        assert info.value.hint == ARG_COUNT_HINT
        with pytest.raises(exceptions.InterfaceError) as info:
            await con.fetchval("SELECT $1::int, $2::int")
        assert info.value.hint == ARG_COUNT_HINT
    finally:
        await con.close()


async def test_bad_argument_values(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int4 + 1, $2::text")
        with pytest.raises(exceptions.DataError) as info:
            await st.fetchrow("one", "x")
        assert isinstance(info.value, exceptions.PostgresError)
        assert str(info.value).startswith("invalid input for query argument $1: 'one' (")
        with pytest.raises(exceptions.DataError, match=r"query argument \$2: 5 \("):
            await st.fetchrow(1, 5)
        with pytest.raises(exceptions.DataError, match=r"argument \$1"):
            await st.fetchrow(2**40, "x")  # out of int4 range
        assert tuple(await st.fetchrow(1, None)) == (2, None)
    finally:
        await con.close()


async def test_server_errors(dsn):
    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.PostgresSyntaxError):
            await con.prepare("SELEC 1")
        with pytest.raises(exceptions.UndefinedColumnError, match='column "nope" does not exist'):
            await con.prepare("SELECT nope")
        with pytest.raises(exceptions.UndefinedTableError):
            await con.prepare("SELECT * FROM prep_no_such_table")
        assert await con.fetchval("SELECT 1") == 1

        st = await con.prepare("SELECT 100 / $1::int")
        with pytest.raises(exceptions.DivisionByZeroError):
            await st.fetchval(0)
        assert await st.fetchval(4) == 25
        with pytest.raises(exceptions.DivisionByZeroError):
            await st.fetch(0)
        assert [tuple(r) for r in await st.fetch(50)] == [(2,)]
    finally:
        await con.close()


async def test_empty_query(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("")
        assert await st.fetch() == []
        assert await st.fetchrow() is None
        assert await st.fetchval() is None
        assert st.get_attributes() == () and st.get_parameters() == ()
    finally:
        await con.close()


async def test_closed_statement(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int")
        assert await st.fetchval(1) == 1
        st._state.mark_closed()
        assert st._state.closed
        calls = [
            lambda: st.fetch(1),
            lambda: st.fetchrow(1),
            lambda: st.fetchval(1),
            lambda: st.executemany([(1,)]),
            lambda: st.fetchmany([(1,)]),
            lambda: st.explain(1),
        ]
        for call in calls:
            with pytest.raises(exceptions.InterfaceError, match="is closed"):
                await call()
        async with con.transaction():
            with pytest.raises(exceptions.InterfaceError, match="is closed"):
                async for _ in st.cursor(1):
                    pass
        # A fresh statement for the same query is fine.
        again = await con.prepare("SELECT $1::int")
        assert again._state is not st._state
        assert await again.fetchval(2) == 2
    finally:
        await con.close()


async def test_statement_after_connection_closed(dsn):
    con = await ferropg.connect(dsn)
    st = await con.prepare("SELECT $1::int")
    cached = await con._prepare("SELECT 2", use_cache=True)
    assert await st.fetchval(1) == 1
    await con.close()
    for stmt, args in ((st, (1,)), (cached, ())):
        for meth in ("fetch", "fetchrow", "fetchval"):
            with pytest.raises(exceptions.InterfaceError, match="is closed"):
                await getattr(stmt, meth)(*args)
    with pytest.raises(exceptions.InterfaceError, match="is closed"):
        await st.executemany([(1,)])
    with pytest.raises(exceptions.InterfaceError, match="connection is closed"):
        await con.prepare("SELECT 1")

    # Lost rather than closed: the same.
    con = await ferropg.connect(dsn)
    st = await con.prepare("SELECT 3")
    con.terminate()
    with pytest.raises(exceptions.InterfaceError):
        await st.fetchval()


async def test_statement_during_another_operation(dsn):
    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT $1::int * 2")
        slow = asyncio.ensure_future(con.fetchval("SELECT pg_sleep(0.2)::text || 'done'"))
        await asyncio.sleep(0.05)
        for call in (
            st.fetchval(1),
            st.fetch(1),
            st.executemany([(1,)]),
            con.prepare("SELECT 1"),
        ):
            with pytest.raises(exceptions.InterfaceError, match="another operation is in progress"):
                await call
        assert await slow == "done"
        assert await st.fetchval(21) == 42
    finally:
        await con.close()


async def test_record_class(dsn):
    class Point(ferropg.Record):
        pass

    con = await ferropg.connect(dsn)
    try:
        st = await con.prepare("SELECT 1 AS x, 2 AS y", record_class=Point)
        row = await st.fetchrow()
        assert type(row) is Point
        assert row["y"] == 2
        assert all(type(r) is Point for r in await st.fetch())
        plain = await con.prepare("SELECT 1 AS x")
        assert type(await plain.fetchrow()) is ferropg.Record
        with pytest.raises(exceptions.InterfaceError, match="record_class"):
            await con.prepare("SELECT 1", record_class=dict)
    finally:
        await con.close()
