"""COPY through the connection API, as asyncpg documents it.

* out: ``copy_from_table`` and ``copy_from_query`` to a path, a file object or an async
  callable, in text, csv and binary, with columns, a ``WHERE`` in the query and COPY's
  options (header, delimiter, null, quote, escape, force_quote, encoding);
* in: ``copy_to_table`` from a path, a file object, bytes-like objects and an async
  iterable of chunks, and ``copy_records_to_table`` from records or an async iterable of
  them, with columns and ``where=``;
* errors: a bad row, a missing table or column, a failing source or sink, a timeout:
  each raises its own class and leaves the connection usable and the table untouched;
* hostile table, column and schema names round-trip;
* COPY inside a transaction that is rolled back leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime
import decimal
import io
import uuid
from collections.abc import AsyncIterator

import pytest

import ferropg
from ferropg import exceptions

#: Text-format lines of ``ROWS`` as the server writes them.
ROWS = [
    (1, "plain", True),
    (2, "tab\there, new\nline, back\\slash", False),
    (3, None, None),
    (4, 'quote " and comma ,', True),
]
TEXT = (
    b"1\tplain\tt\n"
    b"2\ttab\\there, new\\nline, back\\\\slash\tf\n"
    b"3\t\\N\t\\N\n"
    b'4\tquote " and comma ,\tt\n'
)
#: Seconds within which a COPY the server refuses must raise its error.
PROMPT = 2.0
#: The signature every binary COPY stream starts with, and the trailer it ends with.
BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
BINARY_TRAILER = b"\xff\xff"


@contextlib.asynccontextmanager
async def _connection(dsn: str) -> AsyncIterator[ferropg.Connection]:
    """A connection with the temporary table ``t(a int, b text, c bool)`` holding ROWS."""
    con = await ferropg.connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE t (a int PRIMARY KEY, b text, c bool)")
        await con.executemany("INSERT INTO t VALUES ($1, $2, $3)", ROWS)
        yield con
    finally:
        await con.close()


async def _rows(con: ferropg.Connection, table: str = "t") -> list[tuple]:
    return [tuple(r) for r in await con.fetch(f"SELECT * FROM {table} ORDER BY 1")]


async def _still_usable(con: ferropg.Connection) -> None:
    """The connection answers, outside any transaction, after an error."""
    assert not con.is_closed()
    assert not con.is_in_transaction()
    assert await con.fetchval("SELECT 'still here'") == "still here"


# ------------------------------------------------------------------------ COPY out


async def test_copy_from_table_to_a_file_object(dsn):
    async with _connection(dsn) as con:
        out = io.BytesIO()
        assert await con.copy_from_table("t", output=out) == "COPY 4"
        assert out.getvalue() == TEXT
        # An empty table writes nothing and says so.
        await con.execute("CREATE TEMP TABLE empty (x int)")
        out = io.BytesIO()
        assert await con.copy_from_table("empty", output=out) == "COPY 0"
        assert out.getvalue() == b""


async def test_copy_from_table_to_a_path(dsn, tmp_path):
    async with _connection(dsn) as con:
        as_str = tmp_path / "as_str.tsv"
        assert await con.copy_from_table("t", output=str(as_str)) == "COPY 4"
        assert as_str.read_bytes() == TEXT
        # A path-like object too; an existing file is overwritten, not appended to.
        as_path = tmp_path / "as_path.tsv"
        as_path.write_bytes(b"old contents that must go\n" * 10)
        assert await con.copy_from_table("t", output=as_path, columns=["a"]) == "COPY 4"
        assert as_path.read_bytes() == b"1\n2\n3\n4\n"


async def test_copy_from_table_to_an_async_callable(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE big (i int, s text)")
        await con.execute(
            "INSERT INTO big SELECT g, repeat('x', g % 50) FROM generate_series(1, 50000) g"
        )
        chunks: list[bytes] = []

        async def sink(data):
            chunks.append(data)
            # A slow consumer: the rows must still all arrive, in order.
            await asyncio.sleep(0)

        assert await con.copy_from_table("big", output=sink) == "COPY 50000"
        assert all(type(c) is bytes for c in chunks)
        assert len(chunks) > 1
        expected = b"".join(b"%d\t%s\n" % (g, b"x" * (g % 50)) for g in range(1, 50001))
        assert b"".join(chunks) == expected


async def test_copy_from_table_columns_and_csv_options(dsn):
    async with _connection(dsn) as con:
        out = io.BytesIO()
        status = await con.copy_from_table(
            "t", output=out, columns=["c", "a"], format="csv", header=True
        )
        assert status == "COPY 4"
        assert out.getvalue() == b"c,a\nt,1\nf,2\n,3\nt,4\n"

        # delimiter, null and quote.
        out = io.BytesIO()
        await con.copy_from_table(
            "t", output=out, format="csv", delimiter=";", null="<null>", quote="'"
        )
        assert out.getvalue().startswith(b"1;plain;t\n2;'tab\there, new\nline")
        parsed = list(
            csv.reader(io.StringIO(out.getvalue().decode()), delimiter=";", quotechar="'")
        )
        assert parsed == [
            ["1", "plain", "t"],
            ["2", "tab\there, new\nline, back\\slash", "f"],
            ["3", "<null>", "<null>"],
            ["4", 'quote " and comma ,', "t"],
        ]

        # force_quote=True quotes every non-NULL value; a list quotes those columns.
        out = io.BytesIO()
        await con.copy_from_table(
            "t", output=out, columns=["a", "b"], format="csv", force_quote=True
        )
        lines = out.getvalue().split(b"\n")
        assert lines[0] == b'"1","plain"'
        assert lines[-2] == b'"4","quote "" and comma ,"'
        assert b'"3",\n' in out.getvalue()  # NULL stays unquoted
        out = io.BytesIO()
        await con.copy_from_table(
            "t", output=out, columns=["a", "b"], format="csv", force_quote=["b"]
        )
        assert out.getvalue().split(b"\n")[0] == b'1,"plain"'

        # escape: the character written before a quote inside a quoted value.
        out = io.BytesIO()
        await con.copy_from_query(
            "SELECT 'say \"hi\"'::text", output=out, format="csv", escape="\\"
        )
        assert out.getvalue() == b'"say \\"hi\\""\n'

        # Text format with its own delimiter and NULL marker.
        out = io.BytesIO()
        await con.copy_from_table("t", output=out, columns=["a", "b"], delimiter="|", null="NULL")
        assert out.getvalue().split(b"\n")[2] == b"3|NULL"


async def test_copy_from_table_header_false_and_encoding(dsn):
    async with _connection(dsn) as con:
        out = io.BytesIO()
        await con.copy_from_table("t", output=out, columns=["a"], format="csv", header=False)
        assert out.getvalue() == b"1\n2\n3\n4\n"

        await con.execute("CREATE TEMP TABLE latin (s text)")
        await con.execute("INSERT INTO latin VALUES ('café')")
        out = io.BytesIO()
        await con.copy_from_table("latin", output=out, encoding="LATIN1")
        assert out.getvalue() == "café\n".encode("latin-1")
        out = io.BytesIO()
        await con.copy_from_table("latin", output=out)
        assert out.getvalue() == "café\n".encode()


async def test_copy_from_query_with_arguments_and_where(dsn, tmp_path):
    async with _connection(dsn) as con:
        out = io.BytesIO()
        status = await con.copy_from_query(
            "SELECT a, b FROM t WHERE a > $1 AND c ORDER BY a", 1, output=out
        )
        assert status == "COPY 1"
        assert out.getvalue() == b'4\tquote " and comma ,\n'

        # Arguments of several types, a NULL and a string that needs quoting.
        out = io.BytesIO()
        await con.copy_from_query(
            "SELECT $1::int + 1, $2::text, $3::text IS NULL, $4::numeric, $5::date",
            41,
            "it's \\ here",
            None,
            decimal.Decimal("1.50"),
            datetime.date(2024, 2, 29),
            output=out,
            format="csv",
        )
        assert next(csv.reader(io.StringIO(out.getvalue().decode()))) == [
            "42",
            "it's \\ here",
            "t",
            "1.50",
            "2024-02-29",
        ]

        path = tmp_path / "query.csv"
        status = await con.copy_from_query(
            "SELECT a, b FROM t WHERE b IS NOT NULL ORDER BY a DESC",
            output=path,
            format="csv",
            header=True,
        )
        assert status == "COPY 3"
        with open(path, newline="") as f:
            assert list(csv.reader(f)) == [
                ["a", "b"],
                ["4", 'quote " and comma ,'],
                ["2", "tab\there, new\nline, back\\slash"],
                ["1", "plain"],
            ]


async def test_copy_from_query_checks_the_number_of_arguments(dsn):
    """As in asyncpg: the arguments are counted against the query's parameters."""
    async with _connection(dsn) as con:
        with pytest.raises(exceptions.InterfaceError, match="expects 1 argument"):
            await con.copy_from_query("SELECT $1::int", 1, 2, output=io.BytesIO())
        await _still_usable(con)


async def test_binary_copy_round_trips(dsn):
    async with _connection(dsn) as con:
        out = io.BytesIO()
        assert await con.copy_from_table("t", output=out, format="binary") == "COPY 4"
        data = out.getvalue()
        assert data.startswith(BINARY_SIGNATURE)
        assert data.endswith(BINARY_TRAILER)

        await con.execute("CREATE TEMP TABLE t2 (a int, b text, c bool)")
        assert await con.copy_to_table("t2", source=data, format="binary") == "COPY 4"
        assert await _rows(con, "t2") == ROWS

        # A query's binary output holds the same values.
        out = io.BytesIO()
        await con.copy_from_query("SELECT * FROM t ORDER BY a", output=out, format="binary")
        assert out.getvalue() == data


# ------------------------------------------------------------------------- COPY in


async def test_copy_to_table_from_a_file_object_and_a_path(dsn, tmp_path):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE t2 (a int, b text, c bool)")
        assert await con.copy_to_table("t2", source=io.BytesIO(TEXT)) == "COPY 4"
        assert await _rows(con, "t2") == ROWS

        path = tmp_path / "in.tsv"
        path.write_bytes(b"5\tfrom a path\tt\n6\t\\N\tf\n")
        assert await con.copy_to_table("t2", source=path) == "COPY 2"
        # The path as a string, columns in another order.
        reordered = tmp_path / "reordered.tsv"
        reordered.write_bytes(b"f\tcolumns in another order\t7\n")
        status = await con.copy_to_table("t2", source=str(reordered), columns=["c", "b", "a"])
        assert status == "COPY 1"
        # A file we opened.
        opened = tmp_path / "opened.tsv"
        opened.write_bytes(b"8\tfrom a file\tt\n")
        with open(opened, "rb") as f:
            assert await con.copy_to_table("t2", source=f) == "COPY 1"
        assert (await _rows(con, "t2"))[4:] == [
            (5, "from a path", True),
            (6, None, False),
            (7, "columns in another order", False),
            (8, "from a file", True),
        ]


async def test_copy_to_table_columns_and_options(dsn, tmp_path):
    async with _connection(dsn) as con:
        await con.execute(
            "CREATE TEMP TABLE dst (id int, name text, note text DEFAULT 'default', flag bool)"
        )
        path = tmp_path / "in.csv"
        path.write_bytes(b"name|id\n'a|b'|1\n<none>|2\n'it''s'|3\n")
        status = await con.copy_to_table(
            "dst",
            source=path,
            columns=["name", "id"],
            format="csv",
            header=True,
            delimiter="|",
            null="<none>",
            quote="'",
        )
        assert status == "COPY 3"
        assert await _rows(con, "dst") == [
            (1, "a|b", "default", None),
            (2, None, "default", None),
            (3, "it's", "default", None),
        ]

        # force_not_null: an empty unquoted field is an empty string, not NULL;
        # force_null: a quoted empty field is NULL.
        await con.execute("TRUNCATE dst")
        await con.copy_to_table(
            "dst",
            source=b'1,,""\n',
            columns=["id", "name", "note"],
            format="csv",
            force_not_null=["name"],
            force_null=["note"],
        )
        assert await _rows(con, "dst") == [(1, "", None, None)]

        # encoding: the data is LATIN1, the server converts it.
        await con.execute("TRUNCATE dst")
        await con.copy_to_table(
            "dst", source="7\tcafé\n".encode("latin-1"), columns=["id", "name"], encoding="LATIN1"
        )
        assert await con.fetchval("SELECT name FROM dst WHERE id = 7") == "café"


async def test_copy_to_table_ignores_force_quote_like_asyncpg(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int)")
        status = await asyncio.wait_for(
            con.copy_to_table("n", source=b"1\n", format="csv", force_quote=True), PROMPT
        )
        assert status == "COPY 1"
        assert await con.fetchval("SELECT i FROM n") == 1


async def test_copy_to_table_from_bytes_like_objects(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int)")
        assert await con.copy_to_table("n", source=b"1\n2\n") == "COPY 2"
        assert await con.copy_to_table("n", source=bytearray(b"3\n")) == "COPY 1"
        assert await con.copy_to_table("n", source=memoryview(b"4\n5\n")) == "COPY 2"
        assert await con.copy_to_table("n", source=b"") == "COPY 0"
        assert [r[0] for r in await con.fetch("SELECT i FROM n ORDER BY i")] == [1, 2, 3, 4, 5]


async def test_copy_to_table_from_an_async_iterable_of_chunks(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE big (i int, s text)")
        payload = b"".join(b"%d\t%s\n" % (g, b"y" * (g % 70)) for g in range(20000))
        sizes = [1, 2, 3, 7, 4096, 65536, 100_000]

        async def chunks():
            # Chunks split rows (and the row separator) anywhere.
            pos, k = 0, 0
            while pos < len(payload):
                size = sizes[k % len(sizes)]
                yield payload[pos : pos + size]
                pos, k = pos + size, k + 1
                await asyncio.sleep(0)

        assert await con.copy_to_table("big", source=chunks()) == "COPY 20000"
        assert await con.fetchval("SELECT count(*) FROM big") == 20000
        assert await con.fetchval("SELECT sum(length(s)) FROM big") == sum(
            g % 70 for g in range(20000)
        )
        out = io.BytesIO()
        await con.copy_from_query("SELECT * FROM big ORDER BY i", output=out)
        assert out.getvalue() == payload


async def test_copy_to_table_where(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int, s text)")
        status = await con.copy_to_table(
            "n", source=b"1\tone\n2\ttwo\n3\tthree\n4\tfour\n", where="i % 2 = 0 OR s = 'one'"
        )
        assert status == "COPY 3"
        assert await _rows(con, "n") == [(1, "one"), (2, "two"), (4, "four")]


async def test_copy_records_to_table(dsn):
    async with _connection(dsn) as con:
        await con.execute(
            "CREATE TEMP TABLE r (i int, s text, d date, n numeric, f float8, b bytea,"
            " u uuid, arr int[], j jsonb, k int DEFAULT 99)"
        )
        u = uuid.uuid4()
        records = [
            (
                1,
                "one",
                datetime.date(2020, 1, 2),
                decimal.Decimal("1.25"),
                0.5,
                b"\x00\xff",
                u,
                [1, None, 3],
                '{"a": [1, 2]}',
                10,
            ),
            (2, None, None, None, None, None, None, None, None, None),
        ]
        assert await con.copy_records_to_table("r", records=records) == "COPY 2"
        assert await _rows(con, "r") == [
            (
                1,
                "one",
                datetime.date(2020, 1, 2),
                decimal.Decimal("1.25"),
                0.5,
                b"\x00\xff",
                u,
                [1, None, 3],
                '{"a": [1, 2]}',
                10,
            ),
            (2, None, None, None, None, None, None, None, None, None),
        ]

        # A subset of the columns, in another order: the others take their defaults.
        status = await con.copy_records_to_table(
            "r", records=[("three", 3), ("four", 4)], columns=["s", "i"]
        )
        assert status == "COPY 2"
        assert [
            tuple(x) for x in await con.fetch("SELECT i, s, k FROM r WHERE i > 2 ORDER BY i")
        ] == [
            (3, "three", 99),
            (4, "four", 99),
        ]

        # Any iterable of sequences: a generator of lists.
        status = await con.copy_records_to_table(
            "r", records=([i, str(i)] for i in range(5, 8)), columns=["i", "s"]
        )
        assert status == "COPY 3"
        assert await con.fetchval("SELECT count(*) FROM r") == 7

        # No records at all.
        assert await con.copy_records_to_table("r", records=[]) == "COPY 0"


async def test_copy_records_to_table_from_an_async_iterable(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE r (i int, s text)")
        # More than one batch of records, and a value large enough to fill chunks.
        n = 2500

        async def records():
            for i in range(n):
                yield (i, "z" * (i % 300))
                if i % 500 == 0:
                    await asyncio.sleep(0)

        assert await con.copy_records_to_table("r", records=records()) == f"COPY {n}"
        assert await con.fetchval("SELECT count(*) FROM r") == n
        assert await con.fetchval("SELECT sum(i), sum(length(s)) FROM r", column=0) == sum(range(n))
        assert await con.fetchval("SELECT sum(length(s)) FROM r") == sum(i % 300 for i in range(n))

        async def nothing():
            return
            yield

        assert await con.copy_records_to_table("r", records=nothing()) == "COPY 0"


async def test_copy_records_to_table_where_and_columns(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE r (i int, s text, flag bool DEFAULT true)")
        status = await con.copy_records_to_table(
            "r",
            records=[(i, f"s{i}") for i in range(10)],
            columns=["i", "s"],
            where="i >= 7 OR s = 's0'",
        )
        assert status == "COPY 4"
        assert await _rows(con, "r") == [
            (0, "s0", True),
            (7, "s7", True),
            (8, "s8", True),
            (9, "s9", True),
        ]


# -------------------------------------------------------------------------- errors


async def test_a_bad_row_raises_its_server_error_and_nothing_is_copied(dsn):
    async with _connection(dsn) as con:
        cases = [
            # Not an integer.
            (b"10\tok\tt\nx\tbad\tt\n", exceptions.InvalidTextRepresentationError),
            # A column missing, a column too many.
            (b"1\tok\n", exceptions.BadCopyFileFormatError),
            (b"1\tok\tt\textra\n", exceptions.BadCopyFileFormatError),
            # A value out of range.
            (b"99999999999\tbig\tt\n", exceptions.NumericValueOutOfRangeError),
            # The primary key.
            (b"1\tduplicate\tt\n", exceptions.UniqueViolationError),
        ]
        for data, error in cases:
            with pytest.raises(error) as info:
                await con.copy_to_table("t", source=data)
            assert info.value.sqlstate == error.sqlstate
            assert await _rows(con) == ROWS
            await _still_usable(con)
        # The data errors are DataError's.
        assert issubclass(exceptions.InvalidTextRepresentationError, exceptions.DataError)
        assert issubclass(exceptions.BadCopyFileFormatError, exceptions.DataError)

        # Not a binary COPY stream at all.
        with pytest.raises(exceptions.BadCopyFileFormatError, match="signature"):
            await con.copy_to_table("t", source=b"not binary at all", format="binary")
        await _still_usable(con)

        # NOT NULL.
        await con.execute("CREATE TEMP TABLE nn (i int NOT NULL)")
        with pytest.raises(exceptions.NotNullViolationError):
            await con.copy_to_table("nn", source=b"1\n\\N\n")
        with pytest.raises(exceptions.NotNullViolationError):
            await con.copy_records_to_table("nn", records=[(1,), (None,)])
        assert await con.fetchval("SELECT count(*) FROM nn") == 0
        await _still_usable(con)


async def test_a_bad_record_raises_data_error_and_nothing_is_copied(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE r (i int, s text)")
        bad_records = [
            [(1, "ok"), ("not an int", "x")],
            [(1, "ok"), (2**40, "too big for int4")],
            [(1, 2)],
        ]
        for records in bad_records:
            with pytest.raises(
                exceptions.DataError, match="invalid input for copy of column"
            ) as info:
                await con.copy_records_to_table("r", records=records)
            # The encoder's own error is the cause.
            assert isinstance(info.value.__cause__, (TypeError, ValueError, OverflowError))
            assert await con.fetchval("SELECT count(*) FROM r") == 0
            await _still_usable(con)
        # A record of the wrong length.
        with pytest.raises(exceptions.InterfaceError, match="the record has 3 values"):
            await con.copy_records_to_table("r", records=[(1, "a", "extra")])
        await _still_usable(con)

        # The same from an async iterable, the bad record far from the first.
        async def records():
            for i in range(3000):
                yield (i, "x") if i != 2500 else ("bad", "x")

        with pytest.raises(exceptions.DataError, match="invalid input for copy of column 1"):
            await con.copy_records_to_table("r", records=records())
        assert await con.fetchval("SELECT count(*) FROM r") == 0
        await _still_usable(con)


async def test_a_missing_table_or_column(dsn):
    """COPY out, and copy_records_to_table (whose first step is a query on the table);
    for copy_to_table see test_a_copy_in_the_server_refuses_raises_its_error."""
    async with _connection(dsn) as con:
        with pytest.raises(exceptions.UndefinedTableError):
            await con.copy_records_to_table("no_such_table", records=[(1,)])
        await _still_usable(con)
        with pytest.raises(exceptions.UndefinedTableError):
            await con.copy_from_table("no_such_table", output=io.BytesIO())
        await _still_usable(con)
        with pytest.raises(exceptions.UndefinedTableError):
            await con.copy_from_query("SELECT * FROM no_such_table", output=io.BytesIO())
        await _still_usable(con)
        # Its first step is SELECT ... FROM "no_such_schema"."t": no such relation.
        with pytest.raises(exceptions.UndefinedTableError):
            await con.copy_records_to_table("t", schema_name="no_such_schema", records=[(1,)])
        await _still_usable(con)
        for call in (
            lambda: con.copy_records_to_table("t", records=[(1,)], columns=["nope"]),
            lambda: con.copy_from_table("t", output=io.BytesIO(), columns=["nope"]),
        ):
            with pytest.raises(exceptions.UndefinedColumnError):
                await call()
            await _still_usable(con)
        assert await _rows(con) == ROWS


async def test_a_copy_in_the_server_refuses_raises_its_error(dsn):
    """Each refusal raises the server's error promptly; the connection goes on."""
    async with _connection(dsn) as con:
        refusals = [
            (exceptions.UndefinedTableError, con.copy_to_table, {"table_name": "no_such_table"}),
            (exceptions.UndefinedTableError, con.copy_to_table, {"table_name": "T"}),
            (
                exceptions.InvalidSchemaNameError,
                con.copy_to_table,
                {"table_name": "t", "schema_name": "no_such_schema"},
            ),
            (
                exceptions.UndefinedColumnError,
                con.copy_to_table,
                {"table_name": "t", "columns": ["nope"]},
            ),
            (
                exceptions.FeatureNotSupportedError,
                con.copy_to_table,
                {"table_name": "t", "delimiter": "||"},
            ),
            (
                exceptions.InvalidParameterValueError,
                con.copy_to_table,
                {"table_name": "t", "format": "yaml"},
            ),
            (
                exceptions.UndefinedColumnError,
                con.copy_to_table,
                {"table_name": "t", "where": "nope > 1"},
            ),
        ]
        for error, copy, kwargs in refusals:
            with pytest.raises(error):
                await asyncio.wait_for(copy(source=b"1\tx\tt\n", **kwargs), PROMPT)
            await _still_usable(con)
        assert await _rows(con) == ROWS

        # In a failed transaction: both kinds of COPY in (the statement that
        # copy_records_to_table reads the columns from is cached by then).
        await con.copy_records_to_table("t", records=[])
        tr = con.transaction()
        await tr.start()
        with pytest.raises(exceptions.DivisionByZeroError):
            await con.execute("SELECT 1/0")
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await asyncio.wait_for(con.copy_to_table("t", source=b"9\tx\tt\n"), PROMPT)
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await asyncio.wait_for(con.copy_records_to_table("t", records=[(9, "x", True)]), PROMPT)
        await tr.rollback()
        await _still_usable(con)
        assert await _rows(con) == ROWS


async def test_a_failing_source_rolls_the_copy_back(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int)")

        class Boom(Exception):
            pass

        async def source():
            yield b"1\n2\n"
            yield b"3\n"
            raise Boom("source failed")

        with pytest.raises(Boom, match="source failed"):
            await con.copy_to_table("n", source=source())
        assert await con.fetchval("SELECT count(*) FROM n") == 0
        await _still_usable(con)

        async def records():
            yield (1,)
            raise Boom("records failed")

        with pytest.raises(Boom, match="records failed"):
            await con.copy_records_to_table("n", records=records())
        assert await con.fetchval("SELECT count(*) FROM n") == 0
        await _still_usable(con)

        class BadFile:
            def read(self, size=-1):
                raise OSError("disk on fire")

        with pytest.raises(OSError, match="disk on fire"):
            await con.copy_to_table("n", source=BadFile())
        assert await con.fetchval("SELECT count(*) FROM n") == 0
        await _still_usable(con)


async def test_a_failing_sink_stops_the_copy(dsn, tmp_path):
    async with _connection(dsn) as con:
        seen = []

        async def sink(data):
            seen.append(data)
            raise RuntimeError("sink failed")

        with pytest.raises(RuntimeError, match="sink failed"):
            await con.copy_from_query(
                "SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g", output=sink
            )
        assert len(seen) == 1
        await _still_usable(con)

        with pytest.raises(FileNotFoundError):
            await con.copy_from_table("t", output=tmp_path / "missing" / "dir" / "out")
        await _still_usable(con)


async def test_bad_sources_and_outputs_are_type_errors(dsn):
    async with _connection(dsn) as con:
        with pytest.raises(TypeError, match="output"):
            await con.copy_from_table("t", output=42)
        await _still_usable(con)
        with pytest.raises(TypeError):
            await con.copy_to_table("t", source=42)
        await _still_usable(con)
        assert await _rows(con) == ROWS


async def test_copy_timeouts_leave_the_connection_usable(dsn):
    async with _connection(dsn) as con:
        with pytest.raises(TimeoutError):
            await con.copy_from_query("SELECT pg_sleep(10)", output=io.BytesIO(), timeout=0.3)
        await _still_usable(con)

        await con.execute("CREATE TEMP TABLE n (i int)")

        async def stalled():
            yield b"1\n"
            await asyncio.sleep(10)
            yield b"2\n"

        with pytest.raises(TimeoutError):
            await con.copy_to_table("n", source=stalled(), timeout=0.3)
        await _still_usable(con)
        assert await con.fetchval("SELECT count(*) FROM n") == 0


async def test_an_option_value_is_refused_by_the_server_not_pasted(dsn):
    async with _connection(dsn) as con:
        # Two characters are no delimiter; the server says so.
        with pytest.raises(exceptions.FeatureNotSupportedError):
            await con.copy_from_table("t", output=io.BytesIO(), delimiter="||")
        await _still_usable(con)
        with pytest.raises(exceptions.InvalidParameterValueError):
            await con.copy_from_table("t", output=io.BytesIO(), format="yaml")
        await _still_usable(con)


# ------------------------------------------------------------------- hostile names

HOSTILE_NAMES = [
    'we"ird',
    "it's",
    "with space",
    "UPPER",
    "MiXeD cAsE",
    "semi;colon",
    "é€",
    "select",
]


async def test_hostile_table_column_and_schema_names_round_trip(dsn):
    con = await ferropg.connect(dsn)
    schema = f"Sch\"ema '{uuid.uuid4().hex[:8]}"
    qs = ferropg.utils._quote_ident(schema)
    try:
        await con.execute(f"CREATE SCHEMA {qs}")
        for name in HOSTILE_NAMES:
            qt = ferropg.utils._quote_ident(name)
            col1, col2 = f"{name} 1", f'"{name}" 2'
            qc1, qc2 = ferropg.utils._quote_ident(col1), ferropg.utils._quote_ident(col2)
            await con.execute(f"CREATE TABLE {qs}.{qt} ({qc1} int, {qc2} text)")

            status = await con.copy_records_to_table(
                name, schema_name=schema, records=[(1, "a")], columns=[col1, col2]
            )
            assert status == "COPY 1"
            status = await con.copy_to_table(
                name, schema_name=schema, source=b"b\t2\n", columns=[col2, col1]
            )
            assert status == "COPY 1"
            status = await con.copy_records_to_table(
                name, schema_name=schema, records=[(3, "c")], where=f"{qc1} > 2"
            )
            assert status == "COPY 1"
            rows = await con.fetch(f"SELECT * FROM {qs}.{qt} ORDER BY 1")
            assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c")]
            assert list(rows[0].keys()) == [col1, col2]

            out = io.BytesIO()
            status = await con.copy_from_table(
                name, schema_name=schema, output=out, columns=[col2], format="csv", header=True
            )
            assert status == "COPY 3"
            assert list(csv.reader(io.StringIO(out.getvalue().decode()))) == [
                [col2],
                ["a"],
                ["b"],
                ["c"],
            ]
    finally:
        await con.execute(f"DROP SCHEMA IF EXISTS {qs} CASCADE")
        await con.close()


async def test_table_names_are_case_sensitive(dsn):
    async with _connection(dsn) as con:
        await con.execute('CREATE TEMP TABLE "Mixed" (i int); CREATE TEMP TABLE mixed (i int)')
        await con.copy_to_table("Mixed", source=b"1\n")
        await con.copy_records_to_table("mixed", records=[(2,), (3,)])
        assert await con.fetchval('SELECT count(*) FROM "Mixed"') == 1
        assert await con.fetchval("SELECT count(*) FROM mixed") == 2
        out = io.BytesIO()
        await con.copy_from_table("Mixed", output=out)
        assert out.getvalue() == b"1\n"
        with pytest.raises(exceptions.UndefinedTableError):
            await con.copy_records_to_table("MIXED", records=[(1,)])
        await _still_usable(con)


# ---------------------------------------------------------------------- transactions


async def test_copy_in_a_rolled_back_transaction_leaves_nothing(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int)")
        tr = con.transaction()
        await tr.start()
        assert await con.copy_to_table("n", source=b"1\n2\n") == "COPY 2"
        assert await con.copy_records_to_table("n", records=[(3,)]) == "COPY 1"
        # Inside the transaction the rows are there, COPY out sees them.
        out = io.BytesIO()
        assert await con.copy_from_table("n", output=out) == "COPY 3"
        assert out.getvalue() == b"1\n2\n3\n"
        await tr.rollback()
        assert await con.fetchval("SELECT count(*) FROM n") == 0

        # An exception out of an ``async with`` block rolls back too.
        with pytest.raises(ZeroDivisionError):
            async with con.transaction():
                await con.copy_records_to_table("n", records=[(4,), (5,)])
                assert await con.fetchval("SELECT count(*) FROM n") == 2
                raise ZeroDivisionError
        assert await con.fetchval("SELECT count(*) FROM n") == 0
        await _still_usable(con)

        # A committed one keeps its rows.
        async with con.transaction():
            await con.copy_records_to_table("n", records=[(6,)])
        assert await con.fetchval("SELECT array_agg(i) FROM n") == [6]


async def test_a_failed_copy_fails_its_transaction(dsn):
    async with _connection(dsn) as con:
        await con.execute("CREATE TEMP TABLE n (i int)")
        tr = con.transaction()
        await tr.start()
        await con.copy_records_to_table("n", records=[(1,)])
        with pytest.raises(exceptions.InvalidTextRepresentationError):
            await con.copy_to_table("n", source=b"x\n")
        assert con.is_in_transaction()
        with pytest.raises(exceptions.InFailedSQLTransactionError):
            await con.fetchval("SELECT count(*) FROM n")
        await tr.rollback()
        assert await con.fetchval("SELECT count(*) FROM n") == 0
        await _still_usable(con)

        # In a savepoint, the outer transaction survives the failed COPY.
        async with con.transaction():
            await con.copy_records_to_table("n", records=[(1,)])
            with pytest.raises(exceptions.BadCopyFileFormatError):
                async with con.transaction():
                    await con.copy_to_table("n", source=b"2\t3\n")
            await con.copy_records_to_table("n", records=[(4,)])
        assert [r[0] for r in await con.fetch("SELECT i FROM n ORDER BY i")] == [1, 4]


async def test_copy_freeze_in_the_transaction_that_created_the_table(dsn):
    async with _connection(dsn) as con:
        async with con.transaction():
            await con.execute("CREATE TABLE pg_temp.frozen (i int)")
            assert await con.copy_to_table("frozen", source=b"1\n2\n", freeze=True) == "COPY 2"
        assert await con.fetchval("SELECT count(*) FROM frozen") == 2
        # Outside it, FREEZE is refused.
        with pytest.raises(exceptions.ObjectNotInPrerequisiteStateError):
            await con.copy_to_table("frozen", source=b"3\n", freeze=True)
        await _still_usable(con)


async def test_copy_through_a_pool(dsn):
    async with ferropg.create_pool(dsn, min_size=1, max_size=1) as pool:
        async with pool.acquire() as con:
            await con.execute("DROP TABLE IF EXISTS copy_pool_t; CREATE TABLE copy_pool_t (i int)")
        try:
            assert await pool.copy_records_to_table("copy_pool_t", records=[(1,)]) == "COPY 1"
            assert await pool.copy_to_table("copy_pool_t", source=b"2\n") == "COPY 1"
            out = io.BytesIO()
            assert await pool.copy_from_table("copy_pool_t", output=out) == "COPY 2"
            assert out.getvalue() == b"1\n2\n"
        finally:
            await pool.execute("DROP TABLE copy_pool_t")
