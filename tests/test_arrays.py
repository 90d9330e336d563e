"""Arrays of every built-in element type against the real server, both directions."""

import datetime
import decimal
import uuid

import pytest

import ferropg
from ferropg import exceptions

D = decimal.Decimal
UTC = datetime.UTC
TZ2 = datetime.timezone(datetime.timedelta(hours=2))

# (SQL element type, non-NULL sample elements)
ELEMENTS = [
    ("bool", [True, False]),
    ("int2", [0, 32767, -32768]),
    ("int4", [0, 2**31 - 1, -(2**31)]),
    ("int8", [0, 2**63 - 1, -(2**63)]),
    ("oid", [0, 2**32 - 1]),
    ("float4", [0.0, 1.5, -2.25, float("inf")]),
    ("float8", [0.0, -1e300, float("-inf")]),
    ("numeric", [D("0"), D("1.50"), D("-12345678901234567890.000000001"), D("NaN")]),
    ("text", ["", "hello", "ünïcödé ☃", 'quote " and \\ and , {}', "NULL"]),
    ("varchar", ["", "abc"]),
    ("bpchar", ["abc", "x"]),
    ("name", ["a_name"]),
    ('"char"', [b"a", b"\x00"]),
    ("bytea", [b"", b"\x00\x01\xff", bytes(range(256))]),
    ("date", [datetime.date(2000, 1, 1), datetime.date(1, 1, 2), datetime.date.max]),
    ("time", [datetime.time(0, 0), datetime.time(23, 59, 59, 999999)]),
    ("timetz", [datetime.time(1, 2, 3, tzinfo=TZ2), datetime.time(12, 0, tzinfo=UTC)]),
    ("timestamp", [datetime.datetime(2000, 1, 1), datetime.datetime(1970, 1, 1, 0, 0, 0, 1)]),
    (
        "timestamptz",
        [datetime.datetime(2000, 1, 1, tzinfo=UTC), datetime.datetime(2024, 2, 29, 12, tzinfo=UTC)],
    ),
    ("interval", [datetime.timedelta(0), datetime.timedelta(days=-5, seconds=100)]),
    ("uuid", [uuid.UUID(int=0), uuid.UUID("12345678-1234-5678-1234-567812345678")]),
    ("json", ['{"a": [1, 2]}', "null", '""']),
    ("jsonb", ['{"a": [1, 2]}', "null"]),
]

# The array type OID of each element type, as the server's catalogue has them.
ARRAY_OIDS = {
    "bool": (1000, 16),
    "bytea": (1001, 17),
    '"char"': (1002, 18),
    "name": (1003, 19),
    "int2": (1005, 21),
    "int4": (1007, 23),
    "text": (1009, 25),
    "bpchar": (1014, 1042),
    "varchar": (1015, 1043),
    "int8": (1016, 20),
    "float4": (1021, 700),
    "float8": (1022, 701),
    "oid": (1028, 26),
    "json": (199, 114),
    "xml": (143, 142),
    "timestamp": (1115, 1114),
    "date": (1182, 1082),
    "time": (1183, 1083),
    "timestamptz": (1185, 1184),
    "interval": (1187, 1186),
    "numeric": (1231, 1700),
    "timetz": (1270, 1266),
    "uuid": (2951, 2950),
    "jsonb": (3807, 3802),
    "record": (2287, 2249),
}


def same(a, b):
    """Equality that also holds for NaN, in nested lists."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (float, D)) and a != a:
        return b != b
    # uuid.UUID values decode to ferropg's fast subclass.
    return a == b and (type(a) is type(b) or isinstance(a, uuid.UUID) and isinstance(b, uuid.UUID))


async def connect(dsn):
    return await ferropg.connect(dsn)


@pytest.mark.parametrize(("typ", "values"), ELEMENTS, ids=[t for t, _ in ELEMENTS])
async def test_round_trip(dsn, typ, values):
    con = await connect(dsn)
    try:
        arr = [values[0], None, *values[1:], None]
        got = await con.fetchval(f"SELECT $1::{typ}[]", arr)
        assert type(got) is list
        assert same(got, arr), (typ, arr, got)
        # Each element went over as the scalar encoder writes it.
        texts = await con.fetch(
            f"SELECT x::text FROM unnest($1::{typ}[]) WITH ORDINALITY AS u(x, n) ORDER BY n",
            arr,
        )
        for (text,), value in zip(texts, arr, strict=True):
            assert text == await con.fetchval(f"SELECT $1::{typ}::text", value)
        # An array the server built itself decodes the same.
        built = await con.fetchval(
            f"SELECT array_agg(x ORDER BY n) FROM unnest($1::{typ}[]) WITH ORDINALITY AS u(x, n)",
            arr,
        )
        assert same(built, arr)
        # NULL elements only, the empty array, a NULL array, two dimensions.
        assert await con.fetchval(f"SELECT $1::{typ}[]", [None, None]) == [None, None]
        assert await con.fetchval(f"SELECT $1::{typ}[]", []) == []
        assert await con.fetchval(f"SELECT '{{}}'::{typ}[]") == []
        assert await con.fetchval(f"SELECT $1::{typ}[]", None) is None
        square = [[values[0], None], [None, values[-1]]]
        assert same(await con.fetchval(f"SELECT $1::{typ}[]", square), square)
        assert await con.fetchval(f"SELECT array_ndims($1::{typ}[])", square) == 2
    finally:
        await con.close()


async def test_array_type_oids_match_the_catalogue(dsn):
    con = await connect(dsn)
    try:
        rows = await con.fetch(
            "SELECT oid, typelem FROM pg_type WHERE oid = any($1::oid[]) ORDER BY oid",
            [a for a, _ in ARRAY_OIDS.values()],
        )
        assert sorted((r[0], r[1]) for r in rows) == sorted(ARRAY_OIDS.values())
        for typ, (array_oid, _) in ARRAY_OIDS.items():
            assert await con.fetchval(f"SELECT '{typ}[]'::regtype::oid") == array_oid
    finally:
        await con.close()


async def test_xml_arrays(dsn):
    con = await connect(dsn)
    try:
        try:
            await con.fetchval("SELECT '<a/>'::xml")
        except exceptions.PostgresError:
            pytest.skip("the server has no XML support")
        assert await con.fetchval("SELECT $1::xml[]", ["<a/>", None]) == ["<a/>", None]
    finally:
        await con.close()


async def test_record_arrays_decode_to_lists_of_tuples(dsn):
    con = await connect(dsn)
    try:
        got = await con.fetchval("SELECT ARRAY[ROW(1, 'a'), NULL, ROW(2, NULL)]")
        assert got == [(1, "a"), None, (2, None)]
        got = await con.fetchval("SELECT ARRAY[ROW(1, ARRAY[2, 3])]")
        assert got == [(1, [2, 3])]
    finally:
        await con.close()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT '[2:3]={1,2}'::int[]", [1, 2]),
        ("SELECT '[-5:-4]={a,NULL}'::text[]", ["a", None]),
        ("SELECT '[1:3][-1:0]={{1,2},{4,5},{6,7}}'::int[]", [[1, 2], [4, 5], [6, 7]]),
        ("SELECT '{{1,2},{3,4}}'::int[]", [[1, 2], [3, 4]]),
        ("SELECT '{{{{{{1}}}}}}'::int[]", [[[[[[1]]]]]]),
        ("SELECT '{1, 2, NULL}'::int[]::anyarray", [1, 2, None]),
        ("SELECT '{}'::int[]", []),
        ("SELECT array_fill(7, ARRAY[2, 0])", []),
        ("SELECT ARRAY[[1.5, NULL], [2, 3]]::numeric[]", [[D("1.5"), None], [D("2"), D("3")]]),
        ("SELECT ARRAY['a', 'b']::varchar(3)[]", ["a", "b"]),
        ("SELECT ARRAY['a']::char(3)[]", ["a  "]),
        # Binary-coercible array casts relabel the element type the value carries.
        ("SELECT ARRAY['a', 'b']::varchar[]::text[]", ["a", "b"]),
        ("SELECT ARRAY[1, 2]::int4[]::oid[]", [1, 2]),
        ("SELECT ARRAY['x']::name[]::text[]", ["x"]),
    ],
)
async def test_decode_server_arrays(dsn, sql, expected):
    con = await connect(dsn)
    try:
        assert await con.fetchval(sql) == expected
    finally:
        await con.close()


@pytest.mark.parametrize(
    "value",
    [
        [None],
        [1, 2, 3, 4, 5, 6],
        [[1, 2], [4, 5], [6, 7]],
        [[[1], [2]], [[4], [5]], [[None], [7]]],
        [[[[[[1]]]]]],
        [[[[[[None]]]]]],
        [[[[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]]]],
    ],
)
async def test_multidimensional_round_trip(dsn, value):
    con = await connect(dsn)
    try:
        assert await con.fetchval("SELECT $1::int[]", value) == value
    finally:
        await con.close()


async def test_shapes_and_containers(dsn):
    con = await connect(dsn)
    try:
        q = "SELECT $1::int[]"
        # Empty at any depth is the empty array.
        assert await con.fetchval(q, [[]]) == []
        assert await con.fetchval(q, [[], []]) == []
        assert await con.fetchval("SELECT array_ndims($1::int[])", [[]]) is None
        # Tuples, sets and sized iterables are fine at the top level.
        assert await con.fetchval(q, (1, 2, None)) == [1, 2, None]
        assert await con.fetchval(q, {5}) == [5]
        assert sorted(await con.fetchval(q, frozenset({1, 2}))) == [1, 2]
        assert await con.fetchval(q, range(3)) == [0, 1, 2]

        class Sized:
            def __iter__(self):
                return iter([1, 2, 3])

            def __len__(self):
                return 3

        assert await con.fetchval(q, Sized()) == [1, 2, 3]
        # Non-tuple inner iterables are dimensions; a tuple inside is an element.
        assert await con.fetchval(q, [{1}, [2]]) == [[1], [2]]
        assert await con.fetchval(q, ([1, 2], [3, 4])) == [[1, 2], [3, 4]]
        assert await con.fetchval("SELECT $1::text[]", [["a", None], ["b", "c"]]) == [
            ["a", None],
            ["b", "c"],
        ]
        # bytea elements take any bytes-like object.
        got = await con.fetchval("SELECT $1::bytea[]", [bytearray(b"ab"), memoryview(b"c")])
        assert got == [b"ab", b"c"]
        # Several array parameters in one statement.
        row = await con.fetchrow("SELECT $1::int8[], $2::text[]", [1], ["x"])
        assert tuple(row) == ([1], ["x"])
    finally:
        await con.close()


@pytest.mark.parametrize("container", [list, tuple, set, frozenset])
async def test_any_of_an_array_parameter(dsn, container):
    con = await connect(dsn)
    try:
        rows = await con.fetch(
            "SELECT g FROM generate_series(1, 10) g WHERE g = any($1::int[]) ORDER BY g",
            container([2, 3, 5, 7]),
        )
        assert [r[0] for r in rows] == [2, 3, 5, 7]
        assert await con.fetchval("SELECT 1 = any($1::int[])", container()) is False
        assert await con.fetchval("SELECT 'b' = any($1::text[])", container("abc")) is True
    finally:
        await con.close()


def _gen():
    yield 1


@pytest.mark.parametrize(
    ("typ", "value", "fragment"),
    [
        ("int4", _gen(), "a sized iterable container expected (got type 'generator')"),
        ("int4", iter([1]), "a sized iterable container expected"),
        ("text", "abc", "a sized iterable container expected (got type 'str')"),
        ("bytea", b"abc", "a sized iterable container expected (got type 'bytes')"),
        ("int4", {1: 2}, "a sized iterable container expected (got type 'dict')"),
        ("int4", 1, "a sized iterable container expected (got type 'int')"),
        ("int4", [[1], [1, 2]], "non-homogeneous array"),
        ("int4", [1, [1]], "non-homogeneous array"),
        ("int4", [[1], 1, [2]], "non-homogeneous array"),
        ("int4", [[1], None], "non-homogeneous array"),
        ("int4", [[[1]], [2]], "non-homogeneous array"),
        ("int4", [[1, 2], [3, {4}]], "non-homogeneous array"),
        ("int4", [1, "t", 2], "invalid array element at index 1: an integer is required"),
        ("int4", [[1], ["t"], [2]], "invalid array element at index [1][0]: an integer"),
        ("int4", [(1, 2)], "invalid array element at index 0: an integer is required"),
        ("int4", [1, 2**40], "invalid array element at index 1: value out of int32 range"),
        ("text", ["a", 1], "invalid array element at index 1: expected str, got int"),
        ("uuid", ["zz"], "invalid array element at index 0: badly formed"),
        ("bool", [1], "invalid array element at index 0: a boolean is required"),
        ("date", [[None, "2020-01-01"]], "invalid array element at index [0][1]"),
        (
            "int4",
            [[[[[[[1]]]]]]],
            "number of array dimensions (7) exceed the maximum expected (6)",
        ),
    ],
)
async def test_bad_array_argument_is_data_error(dsn, typ, value, fragment):
    con = await connect(dsn)
    try:
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT 1, $1::{typ}[]", value)
        msg = str(info.value)
        assert msg.startswith("invalid input for query argument $1: "), msg
        assert fragment in msg, msg
        # The encoder's own error is the cause: a TypeError when the argument is no
        # array at all, a ValueError for a bad shape or element (an element's
        # OverflowError keeps its type).
        cause = ValueError
        if "container expected" in fragment:
            cause = TypeError
        elif "out of int32 range" in fragment:
            cause = OverflowError
        assert isinstance(info.value.__cause__, cause), repr(info.value.__cause__)
        # The argument is named by position among several.
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT $1::int, $2::{typ}[]", 1, value)
        assert str(info.value).startswith("invalid input for query argument $2: ")
        assert await con.fetchval("SELECT 2") == 2
        assert not con.is_in_transaction()
    finally:
        await con.close()


async def test_too_many_dimensions_from_the_server(dsn):
    con = await connect(dsn)
    try:
        with pytest.raises(exceptions.ProgramLimitExceededError):
            await con.fetchval("SELECT '{{{{{{{1}}}}}}}'::int[]")
        assert await con.fetchval("SELECT 1") == 1
    finally:
        await con.close()


async def test_bad_element_from_the_server_fails_only_that_query(dsn):
    con = await connect(dsn)
    try:
        with pytest.raises(ValueError):
            await con.fetchval("SELECT ARRAY['2020-01-01', '10000-01-01']::date[]")
        assert await con.fetchval("SELECT ARRAY[1]") == [1]
        assert not con.is_in_transaction()
    finally:
        await con.close()


async def test_million_element_array(dsn):
    con = await connect(dsn)
    try:
        big = list(range(1_000_000))
        assert await con.fetchval("SELECT $1::int[]", big) == big
        assert await con.fetchval("SELECT cardinality($1::int8[])", big) == len(big)
        assert await con.fetchval("SELECT sum(x) FROM unnest($1::int4[]) x", big) == sum(big)
        got = await con.fetchval("SELECT array_agg(g) FROM generate_series(1, 1000000) g")
        assert got == list(range(1, 1_000_001))
    finally:
        await con.close()


async def test_arrays_in_executemany_and_copy(dsn):
    con = await connect(dsn)
    try:
        await con.execute("CREATE TEMP TABLE arr (k int, a int[], t text[])")
        await con.executemany(
            "INSERT INTO arr VALUES ($1, $2, $3)",
            [(1, [1, None], ["x"]), (2, [], None), (3, [[1, 2], [3, 4]], ["y", None])],
        )
        await con.copy_records_to_table("arr", records=[(4, [5, 6], ["z"]), (5, None, [])])
        rows = await con.fetch("SELECT k, a, t FROM arr ORDER BY k")
        assert [tuple(r) for r in rows] == [
            (1, [1, None], ["x"]),
            (2, [], None),
            (3, [[1, 2], [3, 4]], ["y", None]),
            (4, [5, 6], ["z"]),
            (5, None, []),
        ]
    finally:
        await con.close()
