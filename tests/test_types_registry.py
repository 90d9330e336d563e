"""The per-connection type system against the real server: composites, enums, domains,
arrays of them, user codecs (set_type_codec, reset_type_codec, set_builtin_type_codec),
introspection and its cache, OutdatedSchemaCacheError, and COPY with such types.

Every test creates its own uniquely named objects and drops them at the end.
"""

import contextlib
import json
import struct
import uuid
from decimal import Decimal

import pytest

import ferropg
from ferropg import exceptions
from ferropg.types import Type


def _uid() -> str:
    return "trg_" + uuid.uuid4().hex[:12]


@contextlib.asynccontextmanager
async def _session(dsn, drop="", **kwargs):
    """A connection; ``drop`` (SQL) runs at the end whatever happened, on a fresh
    connection if this one is no longer usable."""
    con = await ferropg.connect(dsn, **kwargs)
    try:
        yield con
    finally:
        try:
            if drop:
                await con.execute(drop)
        except Exception:
            admin = await ferropg.connect(dsn)
            try:
                await admin.execute(drop)
            finally:
                await admin.close()
        finally:
            await con.close()


async def _usable(con):
    """The connection still answers and is not stuck in a transaction."""
    assert await con.fetchval("SELECT 41 + 1") == 42
    assert not con.is_in_transaction()


async def _hstore(con, schema):
    """Installs hstore (into ``schema`` if not there yet); returns the schema it is in.
    Dropping ``schema`` with CASCADE removes the extension if it was installed here."""
    await con.execute(f"CREATE SCHEMA {schema}")
    await con.execute(f"CREATE EXTENSION IF NOT EXISTS hstore SCHEMA {schema}")
    return await con.fetchval(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'hstore'"
    )


# --- composites ---------------------------------------------------------------------


async def test_composite_decodes_to_record(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_o, {n}_i") as con:
        await con.execute(
            f"CREATE TYPE {n}_i AS (x int, y text);CREATE TYPE {n}_o AS (a int, b {n}_i, c int[])"
        )
        r = await con.fetchval(f"SELECT ROW(7, ROW(2, 'q')::{n}_i, ARRAY[9, NULL])::{n}_o")
        assert isinstance(r, ferropg.Record)
        assert r[0] == 7 and r["a"] == 7
        assert r["c"] == [9, None] and r[2] == [9, None]
        assert list(r.keys()) == ["a", "b", "c"]
        inner = r["b"]
        assert isinstance(inner, ferropg.Record)
        assert dict(inner) == {"x": 2, "y": "q"}
        assert r[1][1] == "q"
        assert dict(r) == {"a": 7, "b": inner, "c": [9, None]}
        assert r == (7, (2, "q"), [9, None])

        # NULLs inside, and a NULL composite.
        r = await con.fetchval(f"SELECT ROW(NULL, ROW(NULL, NULL)::{n}_i, NULL)::{n}_o")
        assert dict(r) == {"a": None, "b": (None, None), "c": None}
        assert r["b"]["y"] is None
        assert await con.fetchval(f"SELECT NULL::{n}_o") is None


async def test_composite_statement_types(dsn):
    # asyncpg reports an introspected type by name, schema and kind (test_composites).
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_c, {n}_e") as con:
        await con.execute(f"CREATE TYPE {n}_c AS (x int); CREATE TYPE {n}_e AS ENUM ('a')")
        st = await con.prepare(
            f"SELECT ROW(1)::{n}_c AS c, 'a'::{n}_e AS e, ARRAY[ROW(1)::{n}_c] AS ca,"
            f" $1::{n}_c AS p"
        )
        assert await st.fetchrow((5,)) == ((1,), "a", [(1,)], (5,))
        oids = dict(
            await con.fetch(
                "SELECT typname::text, oid::int8 FROM pg_type WHERE typname = ANY($1)",
                [f"{n}_c", f"{n}_e", f"_{n}_c"],
            )
        )
        composite = Type(oids[f"{n}_c"], f"{n}_c", "composite", "public")
        types = [a.type for a in st.get_attributes()]
        assert types == [
            composite,
            Type(oids[f"{n}_e"], f"{n}_e", "scalar", "public"),
            Type(oids[f"_{n}_c"], f"{n}_c[]", "array", "public"),
            composite,
        ]
        assert st.get_parameters() == (composite,)


async def test_arrays_of_composites(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}_t; DROP TYPE IF EXISTS {n}") as con:
        await con.execute(
            f"CREATE TYPE {n} AS (a text, b int); CREATE TABLE {n}_t (id int, d {n}[])"
        )
        got = await con.fetchval(f"SELECT ARRAY[ROW('x', 1)::{n}, NULL, ROW(NULL, NULL)::{n}]")
        assert got == [("x", 1), None, (None, None)]
        assert isinstance(got[0], ferropg.Record) and got[0]["a"] == "x"
        assert got[1] is None and got[2]["b"] is None

        # Encoded from tuples, dicts, NULLs; a two-dimensional one too.
        value = [("a", 1), None, {"b": 2}]
        await con.execute(f"INSERT INTO {n}_t VALUES (1, $1)", value)
        assert await con.fetchval(f"SELECT d FROM {n}_t") == [("a", 1), None, (None, 2)]
        # The server got real attributes, not a text blob.
        assert await con.fetchval(f"SELECT d[3].b + d[1].b FROM {n}_t") == 3
        assert await con.fetchval(f"SELECT $1::{n}[]", [[("p", 1)], [("q", 2)]]) == [
            [("p", 1)],
            [("q", 2)],
        ]
        assert await con.fetchval(f"SELECT $1::{n}[]", []) == []


async def test_composite_in_table_column_and_table_row_type(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}_t; DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text); CREATE TABLE {n}_t (id int, c {n})")
        await con.execute(f"INSERT INTO {n}_t VALUES (1, $1), (2, $2)", (5, "five"), None)
        rows = await con.fetch(f"SELECT id, c FROM {n}_t ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, (5, "five")), (2, None)]
        assert rows[0]["c"]["y"] == "five"
        assert await con.fetchval(f"SELECT (c).x FROM {n}_t WHERE id = 1") == 5

        # A table's row type is a composite too.
        row = await con.fetchval(f"SELECT t FROM {n}_t t WHERE id = 1")
        assert isinstance(row, ferropg.Record)
        assert row["id"] == 1 and row["c"] == (5, "five")
        assert dict(row["c"]) == {"x": 5, "y": "five"}


async def test_composite_encoding(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_o, {n}_i") as con:
        await con.execute(
            f"CREATE TYPE {n}_i AS (x int, y text);CREATE TYPE {n}_o AS (a int, b {n}_i, c int[])"
        )
        q = f"SELECT $1::{n}_i::text"
        # The server sees what was sent (text output, not our decoding).
        assert await con.fetchval(q, (1, "a b")) == '(1,"a b")'
        assert await con.fetchval(q, [2, "z"]) == "(2,z)"
        assert await con.fetchval(q, (None, None)) == "(,)"
        assert await con.fetchval(q, {"y": "only"}) == "(,only)"
        assert await con.fetchval(q, {"x": 3, "y": "q"}) == "(3,q)"
        assert await con.fetchval(q, {}) == "(,)"

        # A fetched Record goes back in as it came.
        r = await con.fetchval(f"SELECT ROW(1, ROW(2, 'w')::{n}_i, ARRAY[3])::{n}_o")
        assert await con.fetchval(f"SELECT $1::{n}_o", r) == r
        assert await con.fetchval(f"SELECT $1::{n}_o::text", r) == '(1,"(2,w)",{3})'
        # A Record whose keys differ from the type's still counts by position.
        other = await con.fetchrow("SELECT 9 AS q, 'k' AS w")
        assert await con.fetchval(q, other) == "(9,k)"
        # Nested, from a dict holding a tuple.
        got = await con.fetchval(f"SELECT $1::{n}_o", {"b": (4, "n"), "c": [None]})
        assert got == (None, (4, "n"), [None])
        assert await con.fetchval(f"SELECT $1::{n}_o IS NULL", None) is True


@pytest.mark.parametrize(
    ("value", "cause", "fragment"),
    [
        ((1, "a", 3), ValueError, None),
        ({"x": 1, "bad": 2}, ValueError, "is not a valid element of composite type"),
        ("ab", TypeError, None),
        (b"ab", TypeError, None),
        (5, TypeError, None),
        (("notint", "a"), TypeError, None),
    ],
    ids=["too-long", "unknown-key", "str", "bytes", "int", "bad-attribute"],
)
async def test_composite_encoding_errors(dsn, value, cause, fragment):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text)")
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT $1::{n}", value)
        msg = str(info.value)
        assert msg.startswith("invalid input for query argument $1: "), msg
        assert isinstance(info.value.__cause__, cause), repr(info.value.__cause__)
        if fragment:
            assert fragment in msg, msg
        await _usable(con)
        assert await con.fetchval(f"SELECT $1::{n}", (1, "a")) == (1, "a")


async def test_composite_too_short_is_an_error(dsn):
    # asyncpg lets the server refuse it (DatatypeMismatchError); ferropg refuses it
    # before sending (DataError): both are PostgresErrors.
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text)")
        with pytest.raises(exceptions.PostgresError):
            await con.fetchval(f"SELECT $1::{n}", (1,))
        with pytest.raises(exceptions.PostgresError):
            await con.fetchval(f"SELECT $1::{n}", [])
        await _usable(con)


async def test_composite_unknown_key_message_names_the_key_like_asyncpg(dsn):
    # asyncpg: "{key!r} is not a valid element of composite type {name}" (its
    # test_composites matches "'bad' is not a valid element").
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text)")
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT $1::{n}", {"bad": "foo"})
        assert f"'bad' is not a valid element of composite type {n}" in str(info.value)


# --- enums and domains --------------------------------------------------------------


async def test_enums(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}_t; DROP TYPE IF EXISTS {n}_c, {n}") as con:
        await con.execute(
            f"CREATE TYPE {n} AS ENUM ('sad', 'ok', 'very happy');"
            f"CREATE TYPE {n}_c AS (m {n}, ms {n}[]);"
            f"CREATE TABLE {n}_t (m {n})"
        )
        assert await con.fetchval(f"SELECT 'very happy'::{n}") == "very happy"
        assert await con.fetchval(f"SELECT $1::{n}", "ok") == "ok"
        # The server compares enums by declaration order: it got an enum value.
        assert await con.fetchval(f"SELECT $1::{n} < 'ok'::{n}", "sad") is True
        assert await con.fetchval(f"SELECT $1::{n}[]", ["ok", None, "very happy"]) == [
            "ok",
            None,
            "very happy",
        ]
        assert await con.fetchval(f"SELECT enum_range(NULL::{n})") == [
            "sad",
            "ok",
            "very happy",
        ]
        assert await con.fetchval(f"SELECT ROW('ok', ARRAY['sad'])::{n}_c") == (
            "ok",
            ["sad"],
        )
        assert await con.fetchval(f"SELECT $1::{n}_c::text", ("sad", ["ok"])) == "(sad,{ok})"
        await con.executemany(f"INSERT INTO {n}_t VALUES ($1)", [("sad",), ("ok",)])
        assert await con.fetchval(f"SELECT array_agg(m ORDER BY m) FROM {n}_t") == [
            "sad",
            "ok",
        ]

        with pytest.raises(exceptions.InvalidTextRepresentationError):
            await con.fetchval(f"SELECT $1::{n}", "nope")
        await _usable(con)
        with pytest.raises(exceptions.DataError):
            await con.fetchval(f"SELECT $1::{n}", 1)
        await _usable(con)


async def test_domains(dsn):
    n = _uid()

    async with _session(
        dsn, f"DROP TABLE IF EXISTS {n}_t; DROP DOMAIN IF EXISTS {n}_2, {n}_1, {n}_num"
    ) as con:
        await con.execute(
            f"CREATE DOMAIN {n}_1 AS int CHECK (VALUE > 0);"
            f"CREATE DOMAIN {n}_2 AS {n}_1;"
            f"CREATE DOMAIN {n}_num AS numeric[];"
            f"CREATE TABLE {n}_t (num {n}_num, d {n}_2[])"
        )
        assert await con.fetchval(f"SELECT $1::{n}_2", 3) == 3
        assert await con.fetchval(f"SELECT NULL::{n}_2") is None
        st = await con.prepare(f"SELECT 3::{n}_2")
        assert await st.fetchval() == 3
        assert [a.type for a in st.get_attributes()] == [Type(23, "int4", "scalar", "pg_catalog")]
        # A domain's constraint is the server's to check.
        with pytest.raises(exceptions.CheckViolationError):
            await con.fetchval(f"SELECT $1::{n}_2", -1)
        await _usable(con)

        # Arrays of domains, and a domain over an array (its base type is loaded).
        assert await con.fetchval(f"SELECT $1::{n}_1[]", [1, None, 2]) == [1, None, 2]
        assert await con.fetchval(f"SELECT ARRAY[4, 5]::{n}_1[]") == [4, 5]
        await con.execute(f"INSERT INTO {n}_t (num, d) VALUES ($1, $2)", [1, 2.5], [7])
        await con.execute(f"INSERT INTO {n}_t (num) VALUES ($1)", (Decimal("3.25"),))
        rows = await con.fetch(f"SELECT num, d FROM {n}_t ORDER BY num[1]")
        assert [tuple(r) for r in rows] == [
            ([Decimal(1), Decimal("2.5")], [7]),
            ([Decimal("3.25")], None),
        ]
        assert await con.fetchval(f"SELECT $1::{n}_num", [Decimal("1.5")]) == [Decimal("1.5")]


# --- set_type_codec -----------------------------------------------------------------


async def test_text_codec_on_json_scalar_and_arrays(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TABLE {n} (id serial, val json[])")
        before = await con.fetchval("SELECT '{\"a\": 1}'::json")
        assert before == '{"a": 1}'
        await con.set_type_codec(
            "json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads
        )
        data = {"a": [1, None], "b": "x"}
        assert await con.fetchval("SELECT $1::json", data) == data
        assert await con.fetchval("SELECT $1::json->>'b'", data) == "x"
        assert await con.fetchval("SELECT '[1, 2]'::json") == [1, 2]
        # Arrays take the element's codec both ways.
        assert await con.fetchval("SELECT $1::json[]", [data, None, "s"]) == [data, None, "s"]
        assert await con.fetchval("SELECT ARRAY['{\"k\": 2}'::json, NULL]") == [{"k": 2}, None]
        await con.execute(f"INSERT INTO {n} (val) VALUES ($1)", [{"k": None}])
        assert await con.fetchval(f"SELECT val[1]::text FROM {n}") == '{"k": null}'
        assert await con.fetchval(f"SELECT val FROM {n}") == [{"k": None}]

        await con.reset_type_codec("json", schema="pg_catalog")
        assert await con.fetchval("SELECT $1::json", '{"a": 1}') == '{"a": 1}'
        assert await con.fetchval(f"SELECT val FROM {n}") == ['{"k": null}']
        with pytest.raises(exceptions.DataError):
            await con.fetchval("SELECT $1::json", {"a": 1})
        await _usable(con)


async def test_text_codec_errors_from_the_encoder(dsn):
    async with _session(dsn) as con:
        await con.set_type_codec(
            "json", schema="pg_catalog", encoder=lambda v: 42, decoder=json.loads
        )
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval("SELECT $1::json", {"a": 1})
        assert isinstance(info.value.__cause__, TypeError)
        await _usable(con)

        def boom(v):
            raise RuntimeError("encoder failed")

        await con.set_type_codec("json", schema="pg_catalog", encoder=boom, decoder=boom)
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval("SELECT $1::json", 1)
        assert "encoder failed" in str(info.value)
        await _usable(con)
        with pytest.raises(RuntimeError, match="encoder failed"):
            await con.fetchval("SELECT '1'::json")
        await _usable(con)


async def test_text_codec_on_a_non_text_scalar(dsn):
    # A text-format codec on int4: values travel as text, through the codec.
    async with _session(dsn) as con:
        await con.set_type_codec(
            "int4",
            schema="pg_catalog",
            encoder=lambda v: str(v * 10),
            decoder=lambda s: ("t", s),
            format="text",
        )
        assert await con.fetchval("SELECT $1::int4", 5) == ("t", "50")
        assert await con.fetchval("SELECT $1::int4 + 1", 5) == ("t", "51")
        assert await con.fetchval("SELECT 7::int8") == 7  # other types unaffected
        await con.reset_type_codec("int4", schema="pg_catalog")
        assert await con.fetchval("SELECT $1::int4", 5) == 5


async def test_text_codec_elements_in_arrays(dsn):
    # asyncpg decodes and encodes arrays of a type with a text-only codec in text
    # format, each element through the codec (test_unknown_type_text_fallback).
    async with _session(dsn) as con:
        await con.set_type_codec(
            "int4",
            schema="pg_catalog",
            encoder=lambda v: str(v * 10),
            decoder=lambda s: ("t", s),
            format="text",
        )
        assert await con.fetchval("SELECT ARRAY[1, NULL, 2]::int4[]") == [
            ("t", "1"),
            None,
            ("t", "2"),
        ]
        assert await con.fetchval("SELECT $1::int4[]::text", [1, None, 2]) == "{10,NULL,20}"


async def test_composite_with_a_text_only_attribute_is_unsupported(dsn):
    # asyncpg: UnsupportedClientFeatureError 'cannot decode type "public"."<t>": text
    # encoding of composite types is not supported', both ways.
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text)")
        assert await con.fetchval(f"SELECT ROW(1, 'a')::{n}") == (1, "a")
        await con.set_type_codec(
            "int4", schema="pg_catalog", encoder=str, decoder=int, format="text"
        )
        with pytest.raises(exceptions.UnsupportedClientFeatureError, match="composite"):
            await con.fetchval(f"SELECT ROW(1, 'a')::{n}")
        await _usable(con)
        with pytest.raises(exceptions.UnsupportedClientFeatureError, match="composite"):
            await con.fetchval(f"SELECT $1::{n}::text", (1, "a"))
        await _usable(con)
        await con.reset_type_codec("int4", schema="pg_catalog")
        assert await con.fetchval(f"SELECT ROW(1, 'a')::{n}") == (1, "a")


async def test_binary_codec(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y text)")
        await con.set_type_codec(
            "int4",
            schema="pg_catalog",
            encoder=lambda v: struct.pack("!i", v + 1),
            decoder=lambda b: ("dec", struct.unpack("!i", b)[0]),
            format="binary",
        )
        assert await con.fetchval("SELECT $1::int4", 41) == ("dec", 42)
        assert await con.fetchval("SELECT $1::int4::text", 41) == "42"
        assert await con.fetchval("SELECT 7") == ("dec", 7)
        # Arrays and composites use it for their elements, both ways.
        assert await con.fetchval("SELECT ARRAY[7, NULL]::int4[]") == [("dec", 7), None]
        assert await con.fetchval("SELECT $1::int4[]::text", [7, None]) == "{8,NULL}"
        assert await con.fetchval(f"SELECT ROW(7, 'a')::{n}") == (("dec", 7), "a")
        assert await con.fetchval(f"SELECT $1::{n}::text", (7, "a")) == "(8,a)"

        await con.set_type_codec(
            "int4", schema="pg_catalog", encoder=lambda v: "str", decoder=bytes, format="binary"
        )
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval("SELECT $1::int4", 1)
        assert isinstance(info.value.__cause__, TypeError)

        await con.reset_type_codec("int4", schema="pg_catalog")
        await _usable(con)
        assert await con.fetchval("SELECT ARRAY[7]::int4[]") == [7]
        assert await con.fetchval(f"SELECT ROW(7, 'a')::{n}") == (7, "a")


async def test_tuple_codec_on_composite(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_w, {n}") as con:
        await con.execute(
            f"CREATE TYPE {n} AS (r float8, i float8); CREATE TYPE {n}_w AS (c {n}, t text)"
        )
        await con.set_type_codec(
            n,
            encoder=lambda z: (z.real, z.imag),
            decoder=lambda t: complex(t[0], t[1]),
            format="tuple",
        )
        num = complex(1, -2)
        assert await con.fetchval(f"SELECT $1::{n}", num) == num
        assert await con.fetchval(f"SELECT $1::{n}::text", num) == "(1,-2)"
        assert await con.fetchval(f"SELECT ROW(3, 4)::{n}") == complex(3, 4)
        assert await con.fetchval(f"SELECT ARRAY[ROW(0, 1)::{n}, NULL]") == [1j, None]
        assert await con.fetchval(f"SELECT $1::{n}[]", [num, None]) == [num, None]
        # Inside another composite too.
        assert await con.fetchval(f"SELECT ROW(ROW(5, 6)::{n}, 'w')::{n}_w") == (
            complex(5, 6),
            "w",
        )
        assert await con.fetchval(f"SELECT $1::{n}_w::text", (num, "v")) == '("(1,-2)",v)'

        await con.reset_type_codec(n)
        r = await con.fetchval(f"SELECT ROW(3, 4)::{n}")
        assert isinstance(r, ferropg.Record) and dict(r) == {"r": 3.0, "i": 4.0}
        assert await con.fetchval(f"SELECT $1::{n}", (1.5, 2)) == (1.5, 2.0)


async def test_prepared_statement_keeps_its_codecs(dsn):
    async with _session(dsn) as con:
        old = await con.prepare("SELECT $1::json")
        old_arr = await con.prepare("SELECT $1::json[]")
        await con.set_type_codec(
            "json", schema="pg_catalog", encoder=json.dumps, decoder=json.loads
        )
        # Prepared before: the default codec (str in, str out).
        assert await old.fetchval('{"a": 1}') == '{"a": 1}'
        assert await old_arr.fetchval(['{"a": 1}']) == ['{"a": 1}']
        # New statements use the codec.
        assert await con.fetchval("SELECT $1::json", {"a": 1}) == {"a": 1}
        assert await con.fetchval("SELECT $1::json[]", [{"a": 1}]) == [{"a": 1}]
        new = await con.prepare("SELECT $1::json")
        await con.reset_type_codec("json", schema="pg_catalog")
        assert await new.fetchval({"b": 2}) == {"b": 2}
        assert await con.fetchval("SELECT $1::json", '{"b": 2}') == '{"b": 2}'


async def test_set_type_codec_refusals(dsn):
    n = _uid()

    async with _session(
        dsn, f"DROP TYPE IF EXISTS {n}_c, {n}_e; DROP DOMAIN IF EXISTS {n}_d"
    ) as con:
        await con.execute(
            f"CREATE DOMAIN {n}_d AS int; CREATE TYPE {n}_c AS (x int);"
            f"CREATE TYPE {n}_e AS ENUM ('a')"
        )
        with pytest.raises(exceptions.UnsupportedClientFeatureError) as info:
            await con.set_type_codec(f"{n}_d", encoder=str, decoder=int)
        assert "custom codecs on domain types are not supported" in str(info.value)
        assert info.value.hint == "Set the codec on the base type."

        for fmt in ("text", "binary"):
            with pytest.raises(exceptions.UnsupportedClientFeatureError) as info:
                await con.set_type_codec(f"{n}_c", encoder=str, decoder=str, format=fmt)
            assert "only tuple-format codecs can be used on composite types" in str(info.value)

        for typename, schema in (("_int4", "pg_catalog"), (f"_{n}_e", "public")):
            with pytest.raises(exceptions.InterfaceError) as info:
                await con.set_type_codec(typename, schema=schema, encoder=str, decoder=str)
            assert str(info.value) == (
                f"cannot use custom codec on type {schema}.{typename}: "
                "it is neither a scalar type nor a composite type"
            )

        with pytest.raises(ValueError, match=f"unknown type: public.{n}_nope"):
            await con.set_type_codec(f"{n}_nope", encoder=str, decoder=str)
        with pytest.raises(ValueError, match=f"unknown type: {n}_s.int4"):
            await con.reset_type_codec("int4", schema=f"{n}_s")
        with pytest.raises(exceptions.InterfaceError, match="'zz'"):
            await con.set_type_codec(
                "int4", schema="pg_catalog", encoder=str, decoder=str, format="zz"
            )
        # Only composites take the tuple format here (asyncpg: date/time types too).
        with pytest.raises(exceptions.InterfaceError):
            await con.set_type_codec(
                "text", schema="pg_catalog", encoder=str, decoder=str, format="tuple"
            )

        # Nothing was set by the refused calls.
        assert await con.fetchval(f"SELECT 5::{n}_d") == 5
        assert await con.fetchval(f"SELECT ROW(1)::{n}_c") == (1,)
        assert await con.fetchval("SELECT ARRAY[1]") == [1]
        assert await con.fetchval("SELECT 'x'::text") == "x"
        # Enums are scalars: a codec is allowed on them.
        await con.set_type_codec(f"{n}_e", encoder=lambda v: v[5:], decoder="enum:".__add__)
        assert await con.fetchval(f"SELECT $1::{n}_e", "enum:a") == "enum:a"
        assert await con.fetchval(f"SELECT ARRAY['a']::{n}_e[]") == ["enum:a"]
        # SQL spellings of pg_catalog types are accepted.
        for spelling in ("integer", "double precision", "character varying"):
            await con.set_type_codec(spelling, schema="pg_catalog", encoder=str, decoder=str)
            await con.reset_type_codec(spelling, schema="pg_catalog")
        await _usable(con)


# --- set_builtin_type_codec ---------------------------------------------------------


async def test_hstore_builtin_codec(dsn):
    n = _uid()

    async with _session(dsn, f"DROP SCHEMA IF EXISTS {n} CASCADE") as con:
        schema = await _hstore(con, n)
        await con.execute(f"CREATE TYPE {n}.rec AS (i int, h {schema}.hstore)")
        h = f"{schema}.hstore"
        # Without the codec, hstore is an unknown type: text.
        assert await con.fetchval(f"SELECT 'a=>1'::{h}") == '"a"=>"1"'

        await con.set_builtin_type_codec("hstore", schema=schema, codec_name="pg_contrib.hstore")
        for case in ({"ham": "spam", "nada": None}, {}, {"ünï": "☃", "": ""}):
            assert await con.fetchval(f"SELECT $1::{h}", case) == case
        assert (
            await con.fetchval(f"SELECT $1::{h} OPERATOR({schema}.->) 'ham'", {"ham": "x"}) == "x"
        )
        assert await con.fetchval(f"SELECT $1::{h}::text", {"k": None}) == '"k"=>NULL'
        assert await con.fetchval(f"SELECT $1::{h}", (("foo", "2"), ("bar", "3"))) == {
            "foo": "2",
            "bar": "3",
        }
        assert await con.fetchval(f"SELECT ARRAY['a=>1'::{h}, NULL]") == [{"a": "1"}, None]
        assert await con.fetchval(f"SELECT ROW(1, 'b=>NULL')::{n}.rec") == (1, {"b": None})
        with pytest.raises(exceptions.DataError):
            await con.fetchval(f"SELECT $1::{h}", {"a": 1})
        await _usable(con)

        await con.reset_type_codec("hstore", schema=schema)
        assert await con.fetchval(f"SELECT 'a=>1'::{h}") == '"a"=>"1"'


async def test_hstore_null_key_message(dsn):
    # asyncpg: DataError '... (null value not allowed in hstore key)', from a ValueError
    # (its test_extra_codec_alias matches 'null value not allowed').
    n = _uid()

    async with _session(dsn, f"DROP SCHEMA IF EXISTS {n} CASCADE") as con:
        schema = await _hstore(con, n)
        await con.set_builtin_type_codec("hstore", schema=schema, codec_name="pg_contrib.hstore")
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT $1::{schema}.hstore", {None: "1"})
        await _usable(con)
        assert "null value not allowed in hstore key" in str(info.value)
        assert isinstance(info.value.__cause__, ValueError)


async def test_builtin_codec_alias_of_a_domain(dsn):
    # Domains are scalars (kind 'd'): set_builtin_type_codec accepts them, as asyncpg
    # does. Results name the base type, so the alias shows where the domain's own OID
    # travels: parameters and composite attributes.
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_c; DROP DOMAIN IF EXISTS {n}") as con:
        await con.execute(f"CREATE DOMAIN {n} AS int4; CREATE TYPE {n}_c AS (v {n})")
        assert await con.fetchval(f"SELECT ROW(-1)::{n}_c") == (-1,)
        # oid has int4's wire size but is unsigned.
        await con.set_builtin_type_codec(n, codec_name="oid")
        assert await con.fetchval(f"SELECT ROW(-1)::{n}_c") == (4294967295,)
        assert await con.fetchval(f"SELECT $1::{n}::text", 4294967295) == "-1"
        assert await con.fetchval(f"SELECT $1::{n}_c::text", (4294967295,)) == "(-1)"
        assert await con.fetchval(f"SELECT (-1)::{n}") == -1  # the result is int4
        await con.reset_type_codec(n)
        assert await con.fetchval(f"SELECT ROW(-1)::{n}_c") == (-1,)

        with pytest.raises(exceptions.InterfaceError, match="cannot alias non-scalar type"):
            await con.set_builtin_type_codec(f"{n}_c", codec_name="int4")
        with pytest.raises(exceptions.InterfaceError):
            await con.set_builtin_type_codec(n, codec_name=f"{n}_nope")
        with pytest.raises(ValueError, match="unknown type"):
            await con.set_builtin_type_codec(f"{n}_nope", codec_name="int4")
        assert await con.fetchval(f"SELECT ROW(-1)::{n}_c") == (-1,)
        await _usable(con)


async def test_builtin_codec_format_argument(dsn):
    # asyncpg: format must be 'text' or 'binary' (else InterfaceError); with 'text' the
    # alias has no binary codec, so a composite holding it cannot be decoded
    # (test_extra_codec_alias).
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_c; DROP DOMAIN IF EXISTS {n}") as con:
        await con.execute(f"CREATE DOMAIN {n} AS numeric; CREATE TYPE {n}_c AS (v {n})")
        with pytest.raises(exceptions.InterfaceError):
            await con.set_builtin_type_codec(n, codec_name="decimal", format="zz")
        await con.set_builtin_type_codec(n, codec_name="decimal", format="binary")
        assert await con.fetchval(f"SELECT ROW($1::{n})::{n}_c", 44) == (Decimal(44),)
        await con.reset_type_codec(n)
        await con.set_builtin_type_codec(n, codec_name="decimal", format="text")
        assert await con.fetchval(f"SELECT $1::{n}", 44) == Decimal(44)
        with pytest.raises(exceptions.UnsupportedClientFeatureError):
            await con.fetchval(f"SELECT ROW($1::{n})::{n}_c", 44)
        await _usable(con)


# --- introspection ------------------------------------------------------------------


class CountingConnection(ferropg.Connection):
    """Counts the introspection queries it runs."""

    introspections = 0

    async def _introspect_types(self, *args, **kwargs):
        self.introspections += 1
        return await super()._introspect_types(*args, **kwargs)


async def test_introspection_is_cached_per_type(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as admin:
        await admin.execute(f"CREATE TYPE {n} AS (x int, y text)")
        async with _session(dsn, connection_class=CountingConnection) as con:
            assert isinstance(con, CountingConnection)
            # Built-in types, arrays of them included, need no introspection here
            # (asyncpg introspects int4[] once).
            assert await con.fetchval("SELECT $1::int4[], 'x'::text", [1]) == [1]
            assert con.introspections == 0

            assert await con.fetchval(f"SELECT ROW(1, 'a')::{n}") == (1, "a")
            assert con.introspections == 1
            # Another statement of the same type: known already.
            assert await con.fetchval(f"SELECT $1::{n}", (2, "b")) == (2, "b")
            assert await con.fetchval(f"SELECT ROW(3, 'c')::{n}") == (3, "c")
            assert con.introspections == 1

            await con.reload_schema_state()
            assert await con.fetchval(f"SELECT ROW(4, 'd')::{n}") == (4, "d")
            assert con.introspections == 2
            assert await con.fetchval(f"SELECT ROW(4, 'd')::{n}") == (4, "d")
            assert con.introspections == 2


async def test_introspection_without_statement_cache(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}_c, {n}_e") as admin:
        await admin.execute(f"CREATE TYPE {n}_c AS (x int); CREATE TYPE {n}_e AS ENUM ('a')")
        async with _session(
            dsn, connection_class=CountingConnection, statement_cache_size=0
        ) as con:
            assert await con.fetchval(f"SELECT ROW(1)::{n}_c, 'a'::{n}_e") == (1,)
            assert con.introspections == 1
            assert await con.fetchval(f"SELECT $1::{n}_c", {"x": 5}) == (5,)
            assert await con.fetchval(f"SELECT $1::{n}_e", "a") == "a"
            assert con.introspections == 1
            assert await con.fetchval(f"SELECT ARRAY[ROW(2)::{n}_c]") == [(2,)]
            assert con.introspections == 2
            st = await con.prepare(f"SELECT $1::{n}_c")
            assert await st.fetchval((7,)) == (7,)
            await _usable(con)


async def test_custom_oid_codec_does_not_break_introspection(dsn):
    # Introspection reads oids; it must ignore the user's codecs.
    n = _uid()

    async with _session(
        dsn, f"DROP TYPE IF EXISTS {n}_c, {n}_e; DROP DOMAIN IF EXISTS {n}_d"
    ) as con:
        await con.execute(
            f"CREATE TYPE {n}_e AS ENUM ('a'); CREATE DOMAIN {n}_d AS int;"
            f"CREATE TYPE {n}_c AS (x int, e {n}_e, d {n}_d)"
        )
        await con.set_type_codec(
            "oid",
            schema="pg_catalog",
            encoder=lambda v: None,
            decoder=lambda v: None,
            format="text",
        )
        assert await con.fetchval("SELECT 5::oid") is None  # the codec is in force
        assert await con.fetchval(f"SELECT ROW(1, 'a', 2)::{n}_c") == (1, "a", 2)
        assert await con.fetchval(f"SELECT $1::{n}_c", (3, "a", 4)) == (3, "a", 4)
        assert await con.fetchval(f"SELECT ARRAY[ROW(1, 'a', 2)::{n}_c]") == [(1, "a", 2)]
        assert await con.fetchval(f"SELECT $1::{n}_d[]", [1]) == [1]
        # set_type_codec's own lookup ignores it too.
        await con.set_type_codec(f"{n}_e", encoder=str, decoder=str.upper)
        assert await con.fetchval(f"SELECT 'a'::{n}_e") == "A"


# --- OutdatedSchemaCacheError -------------------------------------------------------


async def test_outdated_schema_cache_after_add_attribute(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}_t; DROP TYPE IF EXISTS {n}") as con:
        await con.execute(
            f"CREATE TYPE {n} AS (x int, y int); CREATE TABLE {n}_t (a int, b {n});"
            f"INSERT INTO {n}_t VALUES (1, (2, 3))"
        )
        assert await con.fetchrow(f"SELECT * FROM {n}_t") == (1, (2, 3))
        await con.execute(f"ALTER TYPE {n} ADD ATTRIBUTE z text")
        with pytest.raises(exceptions.OutdatedSchemaCacheError) as info:
            await con.fetchrow(f"SELECT * FROM {n}_t")
        assert str(info.value) == (
            "unexpected number of attributes of composite type: 3, expected 2"
        )
        assert info.value.schema_name == "public"
        assert info.value.data_type_name == n
        assert isinstance(info.value, exceptions.InternalClientError)
        # The caches were dropped: the next fetch sees the new attribute.
        row = await con.fetchrow(f"SELECT * FROM {n}_t")
        assert row == (1, (2, 3, None))
        assert list(row["b"].keys()) == ["x", "y", "z"]
        assert await con.fetchval(f"SELECT $1::{n}", {"z": "new"}) == (None, None, "new")
        await _usable(con)


async def test_outdated_schema_cache_after_attribute_type_change(dsn):
    # asyncpg names the types and sets position (test_type_cache_invalidation_*).
    n = _uid()

    async with _session(dsn, f"DROP TYPE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TYPE {n} AS (x int, y int)")
        assert await con.fetchval(f"SELECT ROW(1, 2)::{n}") == (1, 2)
        await con.execute(f"ALTER TYPE {n} ALTER ATTRIBUTE y TYPE text")
        with pytest.raises(exceptions.OutdatedSchemaCacheError) as info:
            await con.fetchval(f"SELECT ROW(1, '2')::{n}")
        assert await con.fetchval(f"SELECT ROW(1, '2')::{n}") == (1, "2")
        assert info.value.data_type_name == n
        assert str(info.value) == (
            "unexpected data type of composite type attribute 1: 'text', expected 'int4'"
        )
        assert info.value.position == 1


# --- COPY ---------------------------------------------------------------------------


async def test_copy_records_with_composites_and_enums(dsn):
    n = _uid()

    async with _session(
        dsn, f"DROP TABLE IF EXISTS {n}_t; DROP TYPE IF EXISTS {n}_c, {n}_e"
    ) as con:
        await con.execute(
            f"CREATE TYPE {n}_c AS (x int, y text); CREATE TYPE {n}_e AS ENUM ('a', 'b');"
            f"CREATE TABLE {n}_t (i int, c {n}_c, e {n}_e, ea {n}_e[], ca {n}_c[])"
        )
        records = [
            (1, (1, "q"), "a", ["a", "b"], [(2, "r"), None]),
            (2, {"y": "z"}, None, None, []),
            (3, None, "b", [None], None),
        ]
        assert await con.copy_records_to_table(f"{n}_t", records=records) == "COPY 3"
        rows = await con.fetch(f"SELECT * FROM {n}_t ORDER BY i")
        assert [tuple(r) for r in rows] == [
            (1, (1, "q"), "a", ["a", "b"], [(2, "r"), None]),
            (2, (None, "z"), None, None, []),
            (3, None, "b", [None], None),
        ]
        assert await con.fetchval(f"SELECT (c).y FROM {n}_t WHERE i = 1") == "q"

        # A bad record: the COPY fails, nothing is kept, the connection works.
        # (ferropg raises DataError from the encoder's TypeError; asyncpg the TypeError.)
        with pytest.raises((exceptions.DataError, TypeError)):
            await con.copy_records_to_table(f"{n}_t", records=[(4, (1, "a"), 5, None, None)])
        assert await con.fetchval(f"SELECT count(*) FROM {n}_t") == 3
        await _usable(con)


async def test_copy_refuses_text_format_codec(dsn):
    n = _uid()

    async with _session(dsn, f"DROP TABLE IF EXISTS {n}") as con:
        await con.execute(f"CREATE TABLE {n} (i int, t text)")
        await con.set_type_codec(
            "int4", schema="pg_catalog", encoder=str, decoder=int, format="text"
        )
        with pytest.raises(exceptions.InternalClientError) as info:
            await con.copy_records_to_table(n, records=[(1, "a")])
        assert "no binary format encoder" in str(info.value)
        await _usable(con)
        assert await con.fetchval(f"SELECT count(*) FROM {n}") == 0
        # Columns without such a codec still copy.
        assert await con.copy_records_to_table(n, records=[("b",)], columns=["t"]) == "COPY 1"
        await con.reset_type_codec("int4", schema="pg_catalog")
        assert await con.copy_records_to_table(n, records=[(2, "c")]) == "COPY 1"
        assert await con.fetch(f"SELECT i, t FROM {n} ORDER BY t") == [(None, "b"), (2, "c")]
        # asyncpg names the type: "no binary format encoder for type int4 (OID 23)".
        assert str(info.value) == "no binary format encoder for type int4 (OID 23)"
