"""Every codec of the foundation against the real server, both directions, with edges."""

import copy
import datetime
import decimal
import gc
import ipaddress
import pickle
import uuid

import pytest

import ferropg
from ferropg import exceptions

D = decimal.Decimal
UTC = datetime.UTC

# (SQL type, Python values that must survive a round trip unchanged)
ROUND_TRIPS = [
    ("bool", [True, False]),
    ("int2", [0, 1, -1, 32767, -32768]),
    ("int4", [0, 2**31 - 1, -(2**31)]),
    ("int8", [0, 2**63 - 1, -(2**63)]),
    ("oid", [0, 1, 2**32 - 1]),
    ("float8", [0.0, 1.5, -1e300, float("inf"), float("-inf")]),
    ("float4", [0.0, 1.5, -2.25, float("inf")]),
    (
        "numeric",
        [
            D("0"),
            D("1.50"),
            D("-12345678901234567890.000000001"),
            D("0.0000001"),
            D("1e20"),
            D("9" * 1000),
            D("-" + "1" * 500 + "." + "7" * 500),
        ],
    ),
    ("text", ["", "hello", "ünïcödé ☃", "x" * 100_000]),
    ("varchar", ["", "abc"]),
    ("bpchar", ["abc"]),
    ("name", ["a_name"]),
    ("bytea", [b"", b"\x00\x01\xff", bytes(range(256)) * 4096]),
    (
        "date",
        [
            datetime.date(2000, 1, 1),
            datetime.date(1999, 12, 31),
            datetime.date(1, 1, 2),
            datetime.date(9999, 12, 30),
            datetime.date(1582, 10, 15),
        ],
    ),
    ("time", [datetime.time(0, 0), datetime.time(23, 59, 59, 999999), datetime.time(12, 30, 1)]),
    (
        "timestamp",
        [
            datetime.datetime(2000, 1, 1),
            datetime.datetime(1970, 1, 1, 0, 0, 0, 1),
            datetime.datetime(1, 1, 1, 0, 0, 1),
            datetime.datetime(9999, 12, 31, 23, 59, 58),
        ],
    ),
    (
        "timestamptz",
        [
            datetime.datetime(2000, 1, 1, tzinfo=UTC),
            datetime.datetime(2024, 2, 29, 12, 0, 0, 123456, tzinfo=UTC),
            datetime.datetime(1900, 6, 1, 1, 2, 3, tzinfo=UTC),
        ],
    ),
    (
        "interval",
        [
            datetime.timedelta(0),
            datetime.timedelta(days=1, seconds=2, microseconds=3),
            datetime.timedelta(days=-5, seconds=100),
            datetime.timedelta(microseconds=-1),
        ],
    ),
    ("uuid", [uuid.UUID(int=0), uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid4()]),
    ("json", ['{"a": [1, 2]}', "null", '""']),
    ("jsonb", ['{"a": [1, 2]}', "null"]),
]


@pytest.mark.parametrize(("typ", "values"), ROUND_TRIPS, ids=[t for t, _ in ROUND_TRIPS])
async def test_round_trip(dsn, typ, values):
    con = await ferropg.connect(dsn)
    try:
        for value in values:
            got = await con.fetchval(f"SELECT $1::{typ}", value)
            assert got == value, (typ, value, got)
            assert type(got) is type(value) or isinstance(got, type(value))
        assert await con.fetchval(f"SELECT $1::{typ}", None) is None
        # A NULL among values in one row.
        row = await con.fetchrow(f"SELECT $1::{typ}, NULL::{typ}, $2::{typ}", values[0], values[-1])
        assert tuple(row) == (values[0], None, values[-1])
    finally:
        await con.close()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 'NaN'::numeric", "NaN"),
        ("SELECT 'Infinity'::numeric", D("Infinity")),
        ("SELECT '-Infinity'::numeric", D("-Infinity")),
        ("SELECT 1.5::float4", 1.5),
        ("SELECT 'abc'::char(5)", "abc  "),
        (
            "SELECT '2020-05-17 10:11:12.5+02'::timestamptz",
            datetime.datetime(2020, 5, 17, 8, 11, 12, 500000, tzinfo=UTC),
        ),
        (
            "SELECT '10:11:12.000001+03:30'::timetz",
            datetime.time(10, 11, 12, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=3.5))),
        ),
        (
            "SELECT '1 year 2 months 3 days 04:05:06'::interval",
            datetime.timedelta(days=365 + 60 + 3, seconds=4 * 3600 + 5 * 60 + 6),
        ),
        ("SELECT '-1 year -2 months'::interval", datetime.timedelta(days=-(365 + 60))),
        ("SELECT 'infinity'::date", datetime.date.max),
        ("SELECT '-infinity'::date", datetime.date.min),
        ("SELECT 'infinity'::timestamp", datetime.datetime.max),
        ("SELECT '-infinity'::timestamp", datetime.datetime.min),
        ("SELECT 'infinity'::timestamptz", datetime.datetime.max),
        ("SELECT '-infinity'::timestamptz", datetime.datetime.min),
        ('SELECT \'{"b": 1,  "a": 2}\'::jsonb', '{"a": 2, "b": 1}'),
        ("SELECT ''::text", ""),
        ("SELECT ''::bytea", b""),
        ("SELECT 'a'::\"char\"", b"a"),
        ("SELECT 42::oid", 42),
        ("SELECT pg_sleep(0)", None),
        ("SELECT '192.168.0.1'::inet", ipaddress.IPv4Address("192.168.0.1")),
        ("SELECT '12.5'::money", "$12.50"),
        ("SELECT '08:00:2b:01:02:03'::macaddr", "08:00:2b:01:02:03"),
    ],
)
async def test_decode_literals(dsn, sql, expected):
    con = await ferropg.connect(dsn)
    try:
        got = await con.fetchval(sql)
        if expected == "NaN":
            assert got.is_nan()
        else:
            assert got == expected
            if isinstance(expected, datetime.datetime):
                assert got.tzinfo == expected.tzinfo
    finally:
        await con.close()


async def test_encode_specials(dsn):
    con = await ferropg.connect(dsn)
    try:
        assert await con.fetchval("SELECT $1::numeric::text", D("NaN")) == "NaN"
        assert await con.fetchval("SELECT $1::numeric::text", D("Infinity")) == "Infinity"
        assert await con.fetchval("SELECT $1::numeric::text", D("-Infinity")) == "-Infinity"
        assert await con.fetchval("SELECT $1::numeric::text", 12) == "12"
        assert await con.fetchval("SELECT $1::numeric::text", "1.50") == "1.50"
        assert await con.fetchval("SELECT $1::date::text", datetime.date.max) == "infinity"
        assert await con.fetchval("SELECT $1::date::text", datetime.date.min) == "-infinity"
        for typ in ("timestamp", "timestamptz"):
            q = f"SELECT $1::{typ}::text"
            assert await con.fetchval(q, datetime.datetime.max) == "infinity"
            assert await con.fetchval(q, datetime.datetime.min) == "-infinity"
        tz = datetime.timezone(datetime.timedelta(hours=-5))
        aware = datetime.datetime(2021, 3, 4, 5, 6, 7, tzinfo=tz)
        assert await con.fetchval("SELECT $1::timestamptz", aware) == aware
        t = datetime.time(1, 2, 3, 4, tzinfo=tz)
        assert await con.fetchval("SELECT $1::timetz", t) == t
        assert await con.fetchval("SELECT $1::uuid::text", "12345678123456781234567812345678") == (
            "12345678-1234-5678-1234-567812345678"
        )
        assert await con.fetchval("SELECT $1::bytea", bytearray(b"ab")) == b"ab"
        assert await con.fetchval("SELECT $1::bytea", memoryview(b"cd")) == b"cd"
        assert await con.fetchval("SELECT $1::float8", 3) == 3.0
        assert await con.fetchval("SELECT $1::int4 IS NULL", None) is True
        # inet takes a str as asyncpg does; text-only types take their text.
        assert await con.fetchval("SELECT $1::inet::text", "10.0.0.1") == "10.0.0.1/32"
        assert await con.fetchval("SELECT $1::money::text", "3.25") == "$3.25"
    finally:
        await con.close()


async def test_uuid_is_a_fast_uuid_subclass(dsn):
    con = await ferropg.connect(dsn)
    try:
        ref = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        got = await con.fetchval("SELECT $1::uuid", ref)
        assert isinstance(got, uuid.UUID)
        assert type(got) is not uuid.UUID
        assert got == ref and ref == got
        assert hash(got) == hash(ref)
        assert str(got) == str(ref)
        assert got.bytes == ref.bytes and got.int == ref.int
        assert got.version == 4
        assert {got: 1}[ref] == 1
        assert got.is_safe is uuid.SafeUUID.unknown
        assert copy.copy(got) == ref and pickle.loads(pickle.dumps(got)) == ref
        with pytest.raises(TypeError):
            got.int = 5
    finally:
        await con.close()


async def test_uuids_and_their_records_stay_out_of_the_cyclic_gc(dsn):
    # A UUID holds one int and takes no attributes, so it cannot be in a cycle; tracking
    # it (and so every Record holding one) would make each collection walk them all.
    con = await ferropg.connect(dsn)
    try:
        rows = await con.fetch("SELECT gen_random_uuid(), g FROM generate_series(1, 3) g")
        assert len({r[0] for r in rows}) == 3
        for r in rows:
            assert not gc.is_tracked(r[0])
            assert not gc.is_tracked(r)
        arr = await con.fetchval("SELECT ARRAY[gen_random_uuid(), gen_random_uuid()]")
        assert all(isinstance(u, uuid.UUID) and not gc.is_tracked(u) for u in arr)
    finally:
        await con.close()


@pytest.mark.parametrize(
    ("sql", "exc"),
    [
        ("SELECT '0044-03-15 BC'::date", ValueError),
        ("SELECT '10000-01-01'::date", ValueError),
        ("SELECT '0044-03-15 BC'::timestamp", OverflowError),
        ("SELECT '10000-01-01'::timestamp", OverflowError),
        ("SELECT '0044-03-15 BC'::timestamptz", OverflowError),
    ],
)
async def test_out_of_python_range_raises_and_connection_survives(dsn, sql, exc):
    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exc):
            await con.fetchval(sql)
        assert await con.fetchval("SELECT 1") == 1
        assert not con.is_in_transaction()
    finally:
        await con.close()


@pytest.mark.parametrize(
    ("typ", "value", "fragment"),
    [
        ("text", 1, "expected str, got int"),
        ("int4", "x", "an integer is required"),
        ("int2", 40000, "out of int16 range"),
        ("int4", 2**31, "out of int32 range"),
        ("int8", 2**63, "out of int64 range"),
        ("bool", 1, "a boolean is required"),
        ("numeric", "abc", "invalid numeric"),
        ("numeric", decimal.Decimal("1e200000"), "too large"),
        ("date", "2020-01-01", "expected a datetime.date"),
        ("uuid", "zz", "badly formed"),
        ("bytea", "text", "bytes-like"),
        ("timestamp", datetime.datetime(2020, 1, 1, tzinfo=UTC), "offset-naive"),
    ],
)
async def test_bad_argument_is_data_error(dsn, typ, value, fragment):
    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval(f"SELECT $1::{typ}", value)
        msg = str(info.value)
        assert msg.startswith("invalid input for query argument $1: "), msg
        assert fragment in msg, msg
        assert isinstance(info.value, exceptions.PostgresError)
        assert await con.fetchval("SELECT 2") == 2
    finally:
        await con.close()


async def test_exact_data_error_message(dsn):
    con = await ferropg.connect(dsn)
    try:
        with pytest.raises(exceptions.DataError) as info:
            await con.fetchval("SELECT $1::text", 1)
        assert str(info.value) == "invalid input for query argument $1: 1 (expected str, got int)"
        with pytest.raises(exceptions.DataError) as info:
            await con.execute("SELECT $1::int, $2::text", 1, 2)
        assert "argument $2" in str(info.value)
    finally:
        await con.close()


async def test_anonymous_records_decode_to_tuples(dsn):
    con = await ferropg.connect(dsn)
    try:
        assert await con.fetchval("SELECT ROW(1, 'a', NULL)") == (1, "a", None)
        assert await con.fetchval("SELECT ROW(1, ROW(2.5::float8, true))") == (1, (2.5, True))
        assert await con.fetchval("SELECT ROW()") == ()
        assert await con.fetchval("SELECT ROW(pg_sleep(0), 7)") == (None, 7)
    finally:
        await con.close()
