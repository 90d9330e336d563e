"""Property-based round trips (hypothesis) of every codec against the real server.

For each type, ``SELECT $1::<type>`` with a generated value must give back a value equal to
what asyncpg returns for it: the value itself, or the form the server normalises it to
(discrete ranges canonicalised to ``[lower, upper)``, box corners reordered, multiranges
merged, timestamptz in UTC, jsonb re-serialised).  For a few types the server must also
print the value sent in binary exactly as it prints the same value read from our own text
literal, so that a codec which is symmetric but wrong (both directions off in the same way)
fails too.

One connection, on one event loop, serves the whole module; the composite and enum types it
creates get unique names and are dropped at the end.  Examples are derandomised so that CI
sees the same ones every run.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import math
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferropg
from ferropg.types import (
    BitString,
    Box,
    Circle,
    Line,
    LineSegment,
    Path,
    Point,
    Polygon,
    Range,
)

UTC = datetime.UTC
ONE_DAY = datetime.timedelta(days=1)
INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_SUFFIX = uuid.uuid4().hex[:10]
COMPOSITE = f"rtp_comp_{_SUFFIX}"
ENUM = f"rtp_enum_{_SUFFIX}"
ENUM_LABELS = ["sad", "ok", "very happy", "ünïcödé ☃", "it's", 'say "hi"', "NULL", "{a,b}", " "]


# --------------------------------------------------------------------------------------
# The connection


class _Db:
    """A connection driven synchronously on a private event loop, for @given bodies."""

    def __init__(self, dsn: str) -> None:
        self._runner = asyncio.Runner()
        self.con = self._runner.run(ferropg.connect(dsn))

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self._runner.run(self.con.fetchval(sql, *args))

    def fetchrow(self, sql: str, *args: Any) -> Any:
        return self._runner.run(self.con.fetchrow(sql, *args))

    def execute(self, sql: str) -> Any:
        return self._runner.run(self.con.execute(sql))

    def close(self) -> None:
        try:
            self._runner.run(self.con.close())
        finally:
            self._runner.close()


def _quote(label: str) -> str:
    return "'" + label.replace("'", "''") + "'"


@pytest.fixture(scope="module")
def db(dsn: str) -> Any:
    d = _Db(dsn)
    try:
        if d.fetchval("SHOW server_encoding") != "UTF8":
            pytest.skip("these properties generate any Unicode text: they need a UTF8 server")
        d.execute(
            f"CREATE TYPE {COMPOSITE} AS (i int4, t text, f float8, a int4[]);"
            f"CREATE TYPE {ENUM} AS ENUM ({', '.join(map(_quote, ENUM_LABELS))})"
        )
        yield d
    finally:
        try:
            d.execute(f"DROP TYPE IF EXISTS {COMPOSITE}, {ENUM}")
        finally:
            d.close()


# --------------------------------------------------------------------------------------
# Equality


def _assert_same(got: Any, expected: Any, where: str = "value") -> None:
    """``got == expected``, strictly: same shape and types, floats equal bit for bit up to
    NaN (NaN equals NaN, 0.0 differs from -0.0), Decimal NaN equals Decimal NaN, aware
    datetimes and times with the same UTC offset."""
    msg = f"{where}: got {got!r}, expected {expected!r}"
    if expected is None:
        assert got is None, msg
    elif isinstance(expected, bool):
        assert type(got) is bool and got is expected, msg
    elif isinstance(expected, float):
        assert type(got) is float, msg
        if math.isnan(expected):
            assert math.isnan(got), msg
        else:
            assert got == expected and math.copysign(1, got) == math.copysign(1, expected), msg
    elif isinstance(expected, Decimal):
        assert isinstance(got, Decimal), msg
        if expected.is_nan():
            assert got.is_nan(), msg
        else:
            assert got == expected, msg
    elif isinstance(expected, (datetime.datetime, datetime.time)):
        assert type(got) is type(expected) and got == expected, msg
        assert (got.tzinfo is None) == (expected.tzinfo is None), msg
        if expected.tzinfo is not None:
            assert got.utcoffset() == expected.utcoffset(), msg
    elif isinstance(expected, Range):
        assert isinstance(got, Range), msg
        assert got.isempty == expected.isempty, msg
        assert (got.lower_inc, got.upper_inc) == (expected.lower_inc, expected.upper_inc), msg
        _assert_same(got.lower, expected.lower, f"{where}.lower")
        _assert_same(got.upper, expected.upper, f"{where}.upper")
    elif isinstance(expected, Path):  # and Polygon
        assert type(got) is type(expected), msg
        assert got.is_closed == expected.is_closed, msg
        _assert_same(tuple(got.points), tuple(expected.points), f"{where}.points")
    elif isinstance(expected, (tuple, list)):
        # Record (for composites) compares with the tuple of its values.
        if isinstance(got, ferropg.Record):
            got = tuple(got)
        assert type(got) is type(expected), msg
        assert len(got) == len(expected), msg
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _assert_same(g, e, f"{where}[{i}]")
    else:
        assert type(got) is type(expected) or isinstance(got, type(expected)), msg
        assert got == expected, msg


# --------------------------------------------------------------------------------------
# Strategies


def _text_chars() -> st.SearchStrategy[str]:
    # Anything UTF-8 can carry except NUL, which PostgreSQL text cannot hold.
    return st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


TEXT = st.text(_text_chars(), max_size=200)
FLOAT8 = st.floats()
FINITE8 = st.floats(allow_nan=False, allow_infinity=False)

DATES = st.dates(datetime.date.min + ONE_DAY, datetime.date.max - ONE_DAY)
# Not datetime.min/max themselves: asyncpg maps those to -infinity/infinity.
TIMESTAMPS = st.datetimes(
    datetime.datetime.min + datetime.timedelta(microseconds=1),
    datetime.datetime.max - datetime.timedelta(microseconds=1),
)
# Fixed offsets within a day, to the microsecond; a day's margin keeps the UTC instant
# inside Python's range.
OFFSETS = st.timedeltas(
    -datetime.timedelta(hours=23, minutes=59, seconds=59),
    datetime.timedelta(hours=23, minutes=59, seconds=59),
).map(datetime.timezone)
AWARE = st.datetimes(
    datetime.datetime.min + ONE_DAY, datetime.datetime.max - ONE_DAY, timezones=OFFSETS
)
# timetz: PostgreSQL keeps offsets under 16 hours.  Whole minutes only: asyncpg decodes
# the offset truncated to the minute, ferropg to the second (they differ for 01:00:30).
TIMETZ_OFFSETS = st.integers(-(15 * 60 + 59), 15 * 60 + 59).map(
    lambda m: datetime.timezone(datetime.timedelta(minutes=m))
)


def _coefficients(ndigits: int) -> st.SearchStrategy[int]:
    return st.integers(0 if ndigits == 1 else 10 ** (ndigits - 1), 10**ndigits - 1)


# Finite numerics: up to 1000 significant digits, scale up to 1000; plus the specials.
FINITE_NUMERIC = st.builds(
    lambda sign, coefficient, exponent: Decimal(
        (sign, tuple(map(int, str(coefficient))), exponent)
    ),
    st.integers(0, 1),
    st.integers(1, 1000).flatmap(_coefficients),
    st.integers(-1000, 200),
)
NUMERIC = st.one_of(
    FINITE_NUMERIC,
    st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]),
    st.sampled_from([Decimal("0"), Decimal("-0"), Decimal("0.000"), Decimal("-1E-1000")]),
)


def _inet(version: int) -> st.SearchStrategy[Any]:
    bits = 32 if version == 4 else 128
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address

    def build(addr: int, prefix: int) -> Any:
        if prefix == bits:
            return cls(addr)
        return ipaddress.ip_interface((cls(addr), prefix))

    return st.builds(build, st.integers(0, 2**bits - 1), st.integers(0, bits))


def _cidr(version: int) -> st.SearchStrategy[Any]:
    bits = 32 if version == 4 else 128
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return st.builds(
        lambda addr, prefix: ipaddress.ip_network((cls(addr), prefix), strict=False),
        st.integers(0, 2**bits - 1),
        st.integers(0, bits),
    )


INET = st.one_of(_inet(4), _inet(6))
CIDR = st.one_of(_cidr(4), _cidr(6))

POINT = st.builds(Point, FLOAT8, FLOAT8)
FINITE_POINT = st.builds(Point, FINITE8, FINITE8)
POINTS = st.lists(POINT, min_size=1, max_size=8)


def _box_as_stored(b: Box) -> Box:
    # box_recv swaps each coordinate pair so that high >= low.
    (hx, hy), (lx, ly) = b
    if lx > hx:
        hx, lx = lx, hx
    if ly > hy:
        hy, ly = ly, hy
    return Box((hx, hy), (lx, ly))


def _line_ok(coefficients: tuple[float, float, float]) -> bool:
    # line_recv refuses A and B both zero, to within its 1e-6 tolerance.
    a, b, _ = coefficients
    return abs(a) > 1e-6 or abs(b) > 1e-6


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | FINITE8
    | st.text(_text_chars(), max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(_text_chars(), max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
JSON_TEXT = st.builds(
    lambda v, ascii_only, indent: json.dumps(v, ensure_ascii=ascii_only, indent=indent),
    JSON_VALUES,
    st.booleans(),
    st.sampled_from([None, 0, 2]),
)


def _json_value(text: str) -> Any:
    # Numbers as Decimal: jsonb keeps them as numeric, and prints 1e300 as 301 digits.
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


BITS = st.text("01", max_size=80).map(BitString)


# Ranges: bounds None (infinite) or drawn from `bounds`, ordered so lower <= upper.
def _ranges(bounds: st.SearchStrategy[Any]) -> st.SearchStrategy[Range]:
    def build(a: Any, b: Any, lower_inc: bool, upper_inc: bool) -> Range:
        if a is not None and b is not None and b < a:
            a, b = b, a
        return Range(a, b, lower_inc=lower_inc, upper_inc=upper_inc)

    return st.one_of(
        st.just(Range(empty=True)),
        st.builds(build, st.none() | bounds, st.none() | bounds, st.booleans(), st.booleans()),
    )


def _continuous(r: Range) -> Range:
    """A continuous range as the server stores it: equal bounds not both inclusive are empty."""
    if r.isempty:
        return r
    lo, hi = r.lower, r.upper
    if lo is not None and hi is not None and lo == hi and not (r.lower_inc and r.upper_inc):
        return Range(empty=True)
    return r


def _discrete(step: Any) -> Callable[[Range], Range]:
    """The canonical form of a discrete range: ``[lower, upper)``, or empty."""

    def canonical(r: Range) -> Range:
        r = _continuous(r)
        if r.isempty:
            return r
        lo, hi = r.lower, r.upper
        if lo is not None and not r.lower_inc:
            lo += step
        if hi is not None and r.upper_inc:
            hi += step
        if lo is not None and hi is not None and lo >= hi:
            return Range(empty=True)
        return Range(lo, hi)

    return canonical


# Discrete bounds stay one step inside their type so that canonicalising cannot overflow.
INT4_BOUNDS = st.integers(INT4_MIN + 1, INT4_MAX - 1)
INT8_BOUNDS = st.integers(INT8_MIN + 1, INT8_MAX - 1)
DATE_BOUNDS = st.dates(datetime.date.min + ONE_DAY, datetime.date.max - 2 * ONE_DAY)


def _multirange_as_stored(ranges: list[Range]) -> list[Range]:
    """What the server makes of an int4multirange: its ranges canonicalised, the empty ones
    dropped, sorted, and overlapping or adjacent ones merged."""
    canon = [r for r in map(_discrete(1), ranges) if not r.isempty]
    canon.sort(key=lambda r: (r.lower is not None, r.lower if r.lower is not None else 0))
    merged: list[Range] = []
    for r in canon:
        if merged:
            last = merged[-1]
            if last.upper is None or r.lower is None or r.lower <= last.upper:
                upper = None if last.upper is None or r.upper is None else max(last.upper, r.upper)
                merged[-1] = Range(last.lower, upper)
                continue
        merged.append(r)
    return merged


# Short ranges near each other, so that a multirange of them has overlaps, adjacent ranges
# and gaps; now and then an unbounded or empty one.
SHORT_RANGES = st.one_of(
    st.builds(
        lambda lo, n, lower_inc, upper_inc: Range(
            lo, lo + n, lower_inc=lower_inc, upper_inc=upper_inc
        ),
        st.integers(-40, 40),
        st.integers(0, 8),
        st.booleans(),
        st.booleans(),
    ),
    _ranges(st.integers(-40, 40)),
)


# Arrays: up to 3 dimensions, rectangular, with NULLs; or the empty array.
def _reshape(flat: list[Any], shape: list[int]) -> list[Any]:
    if len(shape) == 1:
        return flat
    size = len(flat) // shape[0]
    return [_reshape(flat[i * size : (i + 1) * size], shape[1:]) for i in range(shape[0])]


def _arrays(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    def filled(shape: list[int]) -> st.SearchStrategy[list[Any]]:
        n = math.prod(shape)
        return st.lists(st.none() | elements, min_size=n, max_size=n).map(
            lambda flat: _reshape(flat, shape)
        )

    shapes = st.lists(st.integers(1, 3), min_size=1, max_size=3)
    return st.just([]) | shapes.flatmap(filled)


def _map_array(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(a: Any) -> Any:
        if isinstance(a, list):
            return [apply(x) for x in a]
        return None if a is None else f(a)

    return apply


def _to_utc(d: datetime.datetime) -> datetime.datetime:
    return d.astimezone(UTC)


def _inet_decoded(text: str) -> Any:
    # asyncpg's inet decoding: an address for a full-length prefix, an interface otherwise.
    iface = ipaddress.ip_interface(text)
    if iface.network.prefixlen == iface.max_prefixlen:
        return iface.ip
    return iface


def _map_range(f: Callable[[Any], Any], r: Range) -> Range:
    if r.isempty:
        return r
    lower = None if r.lower is None else f(r.lower)
    upper = None if r.upper is None else f(r.upper)
    return Range(lower, upper, lower_inc=r.lower_inc, upper_inc=r.upper_inc)


# --------------------------------------------------------------------------------------
# Round trips


@dataclass
class Case:
    typ: str
    values: st.SearchStrategy[Any]
    # What the server and asyncpg make of the value; the identity by default.
    expect: Callable[[Any], Any] = lambda v: v
    id: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or self.typ


CASES = [
    Case("bool", st.booleans()),
    Case("int2", st.integers(-(2**15), 2**15 - 1)),
    Case("int4", st.integers(INT4_MIN, INT4_MAX)),
    Case("int8", st.integers(INT8_MIN, INT8_MAX)),
    Case("oid", st.integers(0, 2**32 - 1)),
    Case("float4", st.floats(width=32)),
    Case("float8", FLOAT8),
    Case("text", TEXT),
    Case("varchar", TEXT),
    Case("bytea", st.binary(max_size=300)),
    Case('"char"', st.binary(min_size=1, max_size=1), id="char"),
    Case("date", DATES),
    Case("time", st.times()),
    Case("timetz", st.times(timezones=TIMETZ_OFFSETS)),
    Case("timestamp", TIMESTAMPS),
    Case("timestamptz", AWARE, _to_utc),
    # A naive datetime is local time, as datetime.astimezone() reads it.
    Case(
        "timestamptz",
        st.datetimes(datetime.datetime(2, 1, 1), datetime.datetime(9998, 12, 31)),
        _to_utc,
        id="timestamptz-naive",
    ),
    Case(
        "interval",
        st.timedeltas(datetime.timedelta(days=-(10**6)), datetime.timedelta(days=10**6)),
    ),
    Case("uuid", st.uuids()),
    Case("json", JSON_TEXT),
    Case("inet", INET),
    # inet also takes the address or interface as a str.
    Case("inet", INET.map(str), _inet_decoded, id="inet-str"),
    # A network sent as inet is its network address with its prefix.
    Case("inet", CIDR, lambda n: _inet_decoded(n.with_prefixlen), id="inet-network"),
    Case("cidr", CIDR),
    Case("point", POINT),
    Case("lseg", st.builds(LineSegment, POINT, POINT)),
    Case("box", st.builds(Box, FINITE_POINT, FINITE_POINT), _box_as_stored),
    Case("path", st.builds(lambda pts, c: Path(*pts, is_closed=c), POINTS, st.booleans())),
    Case("polygon", POINTS.map(lambda pts: Polygon(*pts))),
    Case("circle", st.builds(Circle, POINT, st.floats(min_value=0.0))),
    Case("line", st.tuples(FINITE8, FINITE8, FINITE8).filter(_line_ok).map(lambda t: Line(*t))),
    Case("varbit", BITS),
    Case("int4range", _ranges(INT4_BOUNDS), _discrete(1)),
    Case("int8range", _ranges(INT8_BOUNDS), _discrete(1)),
    Case("daterange", _ranges(DATE_BOUNDS), _discrete(ONE_DAY)),
    Case("numrange", _ranges(FINITE_NUMERIC), _continuous),
    Case("tsrange", _ranges(TIMESTAMPS), _continuous),
    Case("tstzrange", _ranges(AWARE), lambda r: _continuous(_map_range(_to_utc, r))),
    Case("int4multirange", st.lists(SHORT_RANGES, max_size=8), _multirange_as_stored),
    Case("int4[]", _arrays(st.integers(INT4_MIN, INT4_MAX))),
    Case("text[]", _arrays(TEXT)),
    Case("numeric[]", _arrays(NUMERIC)),
    Case("timestamptz[]", _arrays(AWARE), _map_array(_to_utc)),
    Case("uuid[]", _arrays(st.uuids())),
    Case("bool[]", _arrays(st.booleans())),
    Case(
        COMPOSITE,
        st.tuples(
            st.none() | st.integers(INT4_MIN, INT4_MAX),
            st.none() | TEXT,
            st.none() | FLOAT8,
            st.none() | _arrays(st.integers(INT4_MIN, INT4_MAX)),
        ),
        id="composite",
    ),
    Case(ENUM, st.sampled_from(ENUM_LABELS), id="enum"),
    Case(f"{ENUM}[]", _arrays(st.sampled_from(ENUM_LABELS)), id="enum[]"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@PROPERTY
@given(data=st.data())
def test_round_trip(db: _Db, case: Case, data: st.DataObject) -> None:
    value = data.draw(case.values, label="value")
    got = db.fetchval(f"SELECT $1::{case.typ}", value)
    _assert_same(got, case.expect(value))


def _numeric_as_decoded(value: Decimal) -> Decimal:
    """The Decimal asyncpg decodes ``value::numeric`` to, digit for digit.

    PostgreSQL keeps the display scale (the digits after the point, zeros included) and has
    no negative zero; asyncpg's binary decoder then writes an integer (scale 0) without its
    trailing groups of four zeros, which PostgreSQL's base-10000 digits do not store: 10000
    comes back as Decimal('1E+4') and 12300 as Decimal('12300').
    """
    if not value.is_finite():
        return value
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if value == 0:
        sign = 0
    if exponent < 0:
        return Decimal((sign, digits, exponent))
    n, k = abs(int(value)), 0
    while n and n % 10000 == 0:
        n, k = n // 10000, k + 4
    return Decimal((sign, tuple(map(int, str(n))), k))


@PROPERTY
@given(value=NUMERIC)
def test_numeric_round_trip(db: _Db, value: Decimal) -> None:
    got = db.fetchval("SELECT $1::numeric", value)
    _assert_same(got, value)
    if not value.is_nan():
        assert got.as_tuple() == _numeric_as_decoded(value).as_tuple(), (value, got)


# Zones with odd offsets, DST and a half-hour DST shift.
LOCAL_ZONES = ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/Dublin"]


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset()")
@PROPERTY
@given(
    zone=st.sampled_from(LOCAL_ZONES),
    value=st.datetimes(datetime.datetime(2, 1, 1), datetime.datetime(9998, 12, 31)),
)
def test_naive_timestamptz_is_local_time(db: _Db, zone: str, value: datetime.datetime) -> None:
    # As in asyncpg, a naive datetime sent as timestamptz is the process's local time, read
    # the way datetime.astimezone() reads it.
    saved = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        if time.timezone == 0 and time.altzone == 0:
            pytest.skip(f"no time zone data for {zone}")
        expected = value.astimezone(UTC)
        got = db.fetchval("SELECT $1::timestamptz", value)
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
    _assert_same(got, expected)


@PROPERTY
@given(value=JSON_TEXT)
def test_jsonb_round_trip(db: _Db, value: str) -> None:
    got = db.fetchval("SELECT $1::jsonb", value)
    assert isinstance(got, str)
    assert _json_value(got) == _json_value(value), (value, got)


@PROPERTY
@given(value=st.text(_text_chars(), max_size=50))
def test_bpchar_round_trip(db: _Db, value: str) -> None:
    # bpchar's trailing spaces are padding, not data.
    got = db.fetchval("SELECT $1::bpchar", value)
    assert isinstance(got, str)
    assert got.rstrip(" ") == value.rstrip(" "), (value, got)


@PROPERTY
@given(value=BITS)
def test_fixed_length_bit_round_trip(db: _Db, value: BitString) -> None:
    typ = f"bit({len(value)})" if len(value) else "varbit"
    _assert_same(db.fetchval(f"SELECT $1::{typ}", value), value)


@PROPERTY
@given(value=st.lists(st.none() | TEXT | st.integers(INT4_MIN, INT4_MAX), max_size=6))
def test_null_positions(db: _Db, value: list[Any]) -> None:
    # NULLs among other parameters of one row stay where they were.
    if not value:
        return
    sql = "SELECT " + ", ".join(
        f"${i + 1}::{'int4' if isinstance(v, int) else 'text'}" for i, v in enumerate(value)
    )
    _assert_same(tuple(db.fetchrow(sql, *value)), tuple(value))


# --------------------------------------------------------------------------------------
# The server reads the binary value as it reads our own text literal of it


def _interval_literal(td: datetime.timedelta) -> str:
    return f"{td.days} days {td.seconds}.{td.microseconds:06d} seconds"


def _numeric_literal(d: Decimal) -> str:
    return "NaN" if d.is_nan() else format(d, "f")


# Here `expect` gives our own text literal for the value.
TEXT_CASES = [
    Case("int8", st.integers(INT8_MIN, INT8_MAX), str),
    Case("int4", st.integers(INT4_MIN, INT4_MAX), str),
    Case("numeric", NUMERIC, _numeric_literal),
    Case("float8", FLOAT8, repr),
    Case("date", DATES, datetime.date.isoformat),
    Case("time", st.times(), datetime.time.isoformat),
    Case("timestamp", TIMESTAMPS, lambda d: d.isoformat(sep=" ")),
    Case("timestamptz", AWARE, lambda d: _to_utc(d).isoformat(sep=" ")),
    Case("interval", st.timedeltas(-(10**6) * ONE_DAY, 10**6 * ONE_DAY), _interval_literal),
    Case("uuid", st.uuids(), str),
    Case("inet", INET, str),
    Case("cidr", CIDR, str),
    Case("bytea", st.binary(max_size=100), lambda b: "\\x" + b.hex()),
    Case("varbit", BITS, lambda b: b.as_string().replace(" ", "")),
]


@pytest.mark.parametrize("case", TEXT_CASES, ids=[c.id for c in TEXT_CASES])
@PROPERTY
@given(data=st.data())
def test_server_text_agrees(db: _Db, case: Case, data: st.DataObject) -> None:
    value = data.draw(case.values, label="value")
    literal = case.expect(value)
    row = db.fetchrow(f"SELECT $1::{case.typ}::text, $2::text::{case.typ}::text", value, literal)
    assert row[0] == row[1], (value, literal, tuple(row))
