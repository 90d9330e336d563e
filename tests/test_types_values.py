"""The value classes of ferropg.types (Range, BitString, geometry): asyncpg's behaviour, no server."""

import copy
import datetime
import pickle
import random

import pytest

import ferropg
import ferropg.types
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

# asyncpg.types.__all__ in asyncpg 0.32.
ASYNCPG_TYPES_ALL = {
    "Type",
    "Attribute",
    "Range",
    "BitString",
    "Point",
    "Path",
    "Polygon",
    "Box",
    "Line",
    "LineSegment",
    "Circle",
    "ServerVersion",
}


def test_exports_match_asyncpg():
    assert set(ferropg.types.__all__) == ASYNCPG_TYPES_ALL
    for name in ASYNCPG_TYPES_ALL:
        # asyncpg/__init__.py does ``from .types import *``: every name is top-level too,
        # but none is in the package's own __all__.
        assert getattr(ferropg, name) is getattr(ferropg.types, name)
        assert name not in ferropg.__all__


def test_existing_types_kept():
    assert ferropg.types.ServerVersion(16, 2, 0, "final", 0).major == 16
    t = ferropg.types.Type(23, "int4", "scalar", "pg_catalog")
    assert ferropg.types.Attribute("a", t).type.name == "int4"


# --------------------------------------------------------------------------------------
# Range


def test_range_defaults():
    r = Range(1, 5)
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc, r.isempty) == (1, 5, True, False, False)
    assert not r.lower_inf and not r.upper_inf
    assert Range(1, 5, lower_inc=False, upper_inc=True).lower_inc is False
    assert Range(1, 5, lower_inc=False, upper_inc=True).upper_inc is True


def test_range_bounds_are_keyword_only():
    with pytest.raises(TypeError):
        Range(1, 5, True)


def test_range_infinite_bounds_are_never_inclusive():
    r = Range(None, 5, lower_inc=True, upper_inc=True)
    assert r.lower is None and r.lower_inf and r.lower_inc is False
    assert r.upper_inc is True and not r.upper_inf
    r = Range(1, upper_inc=True)
    assert r.upper is None and r.upper_inf and r.upper_inc is False
    r = Range()
    assert r.lower_inf and r.upper_inf and not r.isempty and bool(r)
    assert Range(None, 5, lower_inc=True) == Range(None, 5, lower_inc=False)


def test_range_empty_drops_bounds():
    r = Range(1, 5, lower_inc=True, upper_inc=True, empty=True)
    assert r.isempty and not r
    assert (r.lower, r.upper, r.lower_inc, r.upper_inc) == (None, None, False, False)
    # An empty range has no bounds at all, so it is not unbounded either.
    assert not r.lower_inf and not r.upper_inf
    assert r == Range(empty=True)


def test_range_bounds_not_canonicalised():
    # Like asyncpg: no comparison of the bounds, no discrete canonical form.
    assert not Range(5, 5).isempty
    assert Range(1, 5, upper_inc=True) != Range(1, 6)


def test_range_equality_and_hash():
    assert Range(1, 5) == Range(1, 5)
    assert Range(1, 5) != Range(1, 5, upper_inc=True)
    assert Range(1, 5) != Range(1, 5, lower_inc=False)
    assert Range(1, 5) != Range(1, 6)
    assert Range(1, 5) != Range(empty=True)
    assert Range(1, 5) != (1, 5)
    assert Range(1, 5).__eq__((1, 5)) is NotImplemented
    assert hash(Range(1, 5)) == hash(Range(1, 5))
    assert len({Range(1, 5), Range(1, 5), Range(empty=True), Range(empty=True)}) == 2
    assert Range(1, 5) == Range(1.0, 5.0)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Range(1, 5), "<Range [1, 5)>"),
        (Range(1, 5, lower_inc=False, upper_inc=True), "<Range (1, 5]>"),
        (Range(1, 5, upper_inc=True), "<Range [1, 5]>"),
        (Range(None, 5), "<Range (, 5)>"),
        (Range(1, None), "<Range [1, )>"),
        (Range(), "<Range (, )>"),
        (Range(empty=True), "<Range empty>"),
        (Range("a", "b"), "<Range ['a', 'b')>"),
        (
            Range(datetime.date(2020, 1, 1), None),
            "<Range [datetime.date(2020, 1, 1), )>",
        ),
    ],
)
def test_range_repr(value, text):
    assert repr(value) == text
    assert str(value) == text


def test_range_issubset_empty():
    empty = Range(empty=True)
    assert empty.issubset(empty)
    assert empty.issubset(Range(1, 2))
    assert empty.issubset(Range())
    assert not Range(1, 2).issubset(empty)
    assert not Range().issubset(empty)
    assert Range(1, 2).issuperset(empty)


@pytest.mark.parametrize(
    ("sub", "sup", "expected"),
    [
        (Range(2, 3), Range(1, 5), True),
        (Range(1, 5), Range(1, 5), True),
        (Range(0, 5), Range(1, 5), False),
        (Range(1, 6), Range(1, 5), False),
        # Inclusivity at an equal bound.
        (Range(1, 5, lower_inc=False), Range(1, 5, lower_inc=True), True),
        (Range(1, 5, lower_inc=True), Range(1, 5, lower_inc=False), False),
        (Range(1, 5, upper_inc=False), Range(1, 5, upper_inc=True), True),
        (Range(1, 5, upper_inc=True), Range(1, 5, upper_inc=False), False),
        (Range(1, 5, lower_inc=False, upper_inc=False), Range(1, 5), True),
        # Decided on the bounds alone, not on the discrete values in between.
        (Range(1, 5), Range(1, 4, upper_inc=True), False),
        # Infinite bounds.
        (Range(1, 5), Range(), True),
        (Range(), Range(), True),
        (Range(), Range(1, 5), False),
        (Range(1, None), Range(0, None), True),
        (Range(1, None), Range(1, 5), False),
        (Range(None, 5), Range(None, 5, upper_inc=True), True),
        (Range(None, 5), Range(0, 10), False),
        (Range(0, 10), Range(None, 10), True),
    ],
)
def test_range_issubset(sub, sup, expected):
    assert sub.issubset(sup) is expected
    assert sup.issuperset(sub) is expected


def test_range_generic_subscription():
    # asyncpg's Range is typing.Generic, so annotations like Range[int] evaluate.
    alias = Range[int]
    assert alias(1, 2) == Range(1, 2)


def test_range_from_parts():
    assert Range._from_parts(1, 5, True, False, False) == Range(1, 5)
    r = Range._from_parts(None, 5, True, True, False)
    assert r == Range(None, 5, upper_inc=True) and r.lower_inc is False
    assert Range._from_parts(1, 5, True, True, True) == Range(empty=True)


# --------------------------------------------------------------------------------------
# BitString


def test_bitstring_from_str():
    b = BitString("0101")
    assert len(b) == 4 and b.bytes == b"\x50"
    assert b.as_string() == "0101"
    assert list(b) == [0, 1, 0, 1]
    # Spaces are skipped wherever they are.
    assert BitString("0000 0001") == BitString("00000001") == BitString(" 0 0 0 0 0 0 0 1 ")
    assert BitString("0000 0001").bytes == b"\x01"


def test_bitstring_empty():
    for b in (BitString(), BitString(""), BitString(None), BitString("   ")):
        assert len(b) == 0 and b.bytes == b"" and b.as_string() == ""
        assert list(b) == [] and not b
        assert repr(b) == "<BitString >"
        assert b == BitString()
    assert BitString.frombytes() == BitString()
    assert BitString.frombytes(b"") == BitString()
    assert BitString.frombytes(b"", 0) == BitString()
    assert BitString.from_int(0, 0) == BitString()


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("1", b"\x80"),
        ("011", b"\x60"),
        ("1111111", b"\xfe"),
        ("11111111", b"\xff"),
        ("0000 0000 1", b"\x00\x80"),
        ("1010 1010 1010 101", b"\xaa\xaa"),
        ("1" * 17, b"\xff\xff\x80"),
    ],
)
def test_bitstring_lengths_not_multiple_of_8(text, data):
    b = BitString(text)
    digits = text.replace(" ", "")
    assert len(b) == len(digits)
    assert b.bytes == data
    assert "".join(map(str, b)) == digits
    assert BitString.frombytes(data, len(digits)) == b


@pytest.mark.parametrize(
    ("text", "position"),
    [("2", 0), ("01a", 2), ("0 1 x", 4), ("0\t1", 1), ("0_1", 1), ("01-", 2), ("0b1", 1)],
)
def test_bitstring_invalid_characters(text, position):
    with pytest.raises(ValueError, match=f"invalid bit value at position {position}"):
        BitString(text)


def test_bitstring_from_iterable_of_bits():
    # asyncpg iterates whatever it is given, so bytes of 0/1 values and lists work too.
    assert BitString(b"\x00\x01\x01") == BitString("011")
    assert BitString([1, 0, 1]) == BitString("101")
    assert BitString(["1", " ", "0"]) == BitString("10")
    with pytest.raises(ValueError, match="position 0"):
        BitString(b"01")  # b"0" is 48, not a bit
    with pytest.raises(ValueError, match="position 2"):
        BitString([0, 1, 2])


def test_bitstring_as_string_and_repr():
    b = BitString("0000 0000 1")
    assert b.as_string() == "0000 0000 1"
    assert BitString("111110000").as_string() == "1111 1000 0"
    assert repr(b) == "<BitString 0000 0000 1>"
    assert str(b) == repr(b)


def test_bitstring_frombytes():
    assert BitString.frombytes(b"\x01") == BitString("0000 0001")
    assert len(BitString.frombytes(b"\x01\x02")) == 16
    assert BitString.frombytes(b"\x00", bitlength=3) == BitString("000")
    assert BitString.frombytes(bytearray(b"\x02")) == BitString("0000 0010")
    assert BitString.frombytes(memoryview(b"\x80"), 1) == BitString("1")
    assert isinstance(BitString.frombytes(bytearray(b"\x02")).bytes, bytes)
    zeros = BitString.frombytes(None, 12)
    assert len(zeros) == 12 and zeros.bytes == b"\x00\x00" and zeros == BitString("0" * 12)
    assert BitString.frombytes(None, 8).bytes == b"\x00"


def test_bitstring_frombytes_zeroes_padding():
    b = BitString.frombytes(b"\xff", 3)
    assert b.bytes == b"\xe0"
    assert b == BitString("111") and hash(b) == hash(BitString("111"))
    # asyncpg accepts one spare byte; it is dropped.
    b = BitString.frombytes(b"\x01\xff", 8)
    assert b.bytes == b"\x01" and b == BitString("0000 0001")


@pytest.mark.parametrize(
    ("data", "bitlength"),
    [(b"", 1), (b"\x00", 0), (b"\x00", 9), (b"\x00\x00\x00", 15), (b"\x00", -1), (None, -1)],
)
def test_bitstring_frombytes_invalid_length(data, bitlength):
    with pytest.raises(ValueError, match="invalid bit length specified"):
        BitString.frombytes(data, bitlength)


def test_bitstring_to_int():
    b = BitString("0001 1")
    assert b.to_int() == 3 == b.to_int("big")
    assert b.to_int("little") == 0b11000
    assert BitString("1111").to_int(signed=True) == -1
    assert BitString("1000").to_int(signed=True) == -8
    assert BitString("0111").to_int(signed=True) == 7
    assert BitString("0001").to_int("little", signed=True) == -8
    assert BitString().to_int() == 0 and BitString().to_int(signed=True) == 0
    with pytest.raises(ValueError, match="bitorder must be either 'big' or 'little'"):
        b.to_int("middle")


def test_bitstring_from_int():
    assert BitString.from_int(3, 5) == BitString("00011")
    assert BitString.from_int(3, 5, "little") == BitString("11000")
    assert BitString.from_int(-1, 4, signed=True) == BitString("1111")
    assert BitString.from_int(-8, 4, signed=True) == BitString("1000")
    assert BitString.from_int(255, 8) == BitString("1111 1111")
    assert BitString.from_int(1, 9).bytes == b"\x00\x80"
    # asyncpg lets a non-negative value use the sign bit even with signed=True.
    assert BitString.from_int(8, 4, signed=True) == BitString("1000")


@pytest.mark.parametrize(
    ("x", "length", "kwargs", "error"),
    [
        (16, 4, {}, OverflowError),
        (1, 0, {}, OverflowError),
        (-1, 4, {}, OverflowError),
        (-9, 4, {"signed": True}, OverflowError),
        (-1, 0, {"signed": True}, OverflowError),
        (1, -1, {}, ValueError),
        (1, 4, {"bitorder": "middle"}, ValueError),
    ],
)
def test_bitstring_from_int_errors(x, length, kwargs, error):
    with pytest.raises(error):
        BitString.from_int(x, length, **kwargs)


def test_bitstring_int_round_trip():
    # As asyncpg's test_bitstring: random strings, both bit orders, against naive sums.
    rng = random.Random(20240501)
    for _ in range(200):
        text = "".join(rng.choice("01 ") for _ in range(rng.randint(0, 100)))
        bits = BitString(text)
        digits = text.replace(" ", "")
        assert bits.as_string().replace(" ", "") == digits
        assert len(bits.bytes) == (len(digits) + 7) // 8
        big, little = bits.to_int("big"), bits.to_int("little")
        assert big == sum(int(c) << (len(digits) - 1 - i) for i, c in enumerate(digits))
        assert little == sum(int(c) << i for i, c in enumerate(digits))
        assert BitString.from_int(big, len(bits), "big") == bits
        assert BitString.from_int(little, len(bits), "little") == bits
        signed = bits.to_int(signed=True)
        assert BitString.from_int(signed, len(bits), signed=True) == bits


def test_bitstring_indexing():
    b = BitString("1011 0")
    assert [b[i] for i in range(5)] == [1, 0, 1, 1, 0]
    assert b[-1] == 0 and b[-5] == 1
    with pytest.raises(IndexError, match="index out of range"):
        b[5]
    with pytest.raises(IndexError):
        b[-6]
    with pytest.raises(NotImplementedError, match="does not support slices"):
        b[1:3]
    with pytest.raises(TypeError):
        b["0"]
    assert 1 in b and 0 in b and 1 not in BitString("000")


def test_bitstring_equality_and_hash():
    assert BitString("0101") == BitString("0101")
    assert BitString("0101") != BitString("01010")  # same bytes, different length
    assert BitString("0101") != "0101" and BitString("0101") != b"\x50"
    assert BitString("0101").__eq__("0101") is NotImplemented
    assert len({BitString("01"), BitString("0 1"), BitString("10")}) == 2


def test_bitstring_from_parts():
    assert BitString._from_parts(b"\x00\x80", 9) == BitString("0000 0000 1")


# --------------------------------------------------------------------------------------
# Geometry


def test_point():
    p = Point(1, "2.5")
    assert isinstance(p, tuple) and p == (1.0, 2.5) and hash(p) == hash((1.0, 2.5))
    assert (p.x, p.y) == (1.0, 2.5) and type(p.x) is float
    assert p[0] == 1.0 and list(p) == [1.0, 2.5] and len(p) == 2
    assert repr(p) == "ferropg.types.Point((1.0, 2.5))"
    assert Point(*[3, 4]) == Point(3.0, 4.0)
    with pytest.raises(TypeError):
        Point(1)
    with pytest.raises(TypeError):
        Point((1, 2))
    with pytest.raises(ValueError):
        Point("x", 1)


def test_box_kept_as_given():
    b = Box((1, 2), [0, 0])
    assert isinstance(b.high, Point) and isinstance(b.low, Point)
    assert b.high == (1.0, 2.0) and b.low == (0.0, 0.0)
    assert b == ((1.0, 2.0), (0.0, 0.0)) and hash(b) == hash(((1.0, 2.0), (0.0, 0.0)))
    # Not reordered: the server puts the upper-right corner first, asyncpg does not.
    assert Box((0, 0), (1, 2)).high == (0.0, 0.0)
    assert repr(b) == (
        "ferropg.types.Box((ferropg.types.Point((1.0, 2.0)), ferropg.types.Point((0.0, 0.0))))"
    )


def test_line():
    line = Line(1, 2, 3)
    assert (line.A, line.B, line.C) == (1, 2, 3) and line == (1, 2, 3)
    assert hash(line) == hash((1, 2, 3))
    assert repr(line) == "(1, 2, 3)"  # asyncpg keeps tuple's repr for Line


def test_line_segment():
    seg = LineSegment((1, 2), [2, 2])
    assert isinstance(seg.p1, Point) and isinstance(seg.p2, Point)
    assert seg == ((1.0, 2.0), (2.0, 2.0))
    assert repr(seg) == (
        "ferropg.types.LineSegment((ferropg.types.Point((1.0, 2.0)), "
        "ferropg.types.Point((2.0, 2.0))))"
    )


def test_circle():
    c = Circle((0, 0), 100)
    assert isinstance(c.center, Point) and c.center.x == 0.0 and c.radius == 100
    assert c == ((0.0, 0.0), 100) and c == Circle(Point(0, 0), 100.0)
    assert hash(c) == hash(((0.0, 0.0), 100))
    assert repr(c) == "(ferropg.types.Point((0.0, 0.0)), 100)"


def test_path():
    p = Path((0, 0), [1, 1], Point(2, 0))
    assert not p.is_closed and p.points == ((0.0, 0.0), (1.0, 1.0), (2.0, 0.0))
    assert all(type(pt) is Point for pt in p.points) and type(p.points) is tuple
    assert len(p) == 3 and p[1] == (1.0, 1.0) and p[-1] == (2.0, 0.0)
    assert p[0:2] == ((0.0, 0.0), (1.0, 1.0))
    assert list(p) == list(p.points) and (1, 1) in p and (5, 5) not in p
    closed = Path((0, 0), (1, 1), is_closed=True)
    assert closed.is_closed and closed != Path((0, 0), (1, 1))
    assert Path((0, 0), (1, 1)) == Path(Point(0.0, 0.0), Point(1.0, 1.0))
    assert hash(Path((0, 0), (1, 1))) == hash(Path(Point(0.0, 0.0), Point(1.0, 1.0)))
    assert Path((0, 0)) != ((0.0, 0.0),) and Path((0, 0)).__eq__(()) is NotImplemented
    assert len(Path()) == 0 and not Path()


def test_polygon():
    poly = Polygon((0, 0), (1, 0), (1, 1))
    assert isinstance(poly, Path) and poly.is_closed
    assert poly == Path((0, 0), (1, 0), (1, 1), is_closed=True)
    assert poly != Path((0, 0), (1, 0), (1, 1))
    assert hash(poly) == hash(Path((0, 0), (1, 0), (1, 1), is_closed=True))
    with pytest.raises(TypeError):
        Polygon((0, 0), is_closed=False)


def test_path_repr_evaluates_back():
    import ferropg  # noqa: F401 - eval below looks names up in this scope

    for value in (
        Path((0, 0), (1, 1.5)),
        Path((0, 0), is_closed=True),
        Path(),
        Polygon((0, 0), (1, 0)),
    ):
        assert eval(repr(value)) == value
    assert repr(Path((0, 0))) == "ferropg.types.Path((0.0, 0.0), is_closed=False)"
    assert repr(Polygon((0, 0))) == "ferropg.types.Polygon((0.0, 0.0))"


def test_cheap_constructors():
    p = Point._make((1.0, 2.0))
    assert type(p) is Point and p == Point(1, 2)
    assert type(Box._make((p, p))) is Box and Box._make((p, p)).high is p
    assert Line._make((1.0, 2.0, 3.0)) == Line(1.0, 2.0, 3.0)
    assert type(LineSegment._make((p, p))) is LineSegment
    assert Circle._make((p, 3.0)) == Circle((1, 2), 3.0)
    pts = (Point(0, 0), Point(1, 1))
    path = Path._from_points(pts, True)
    assert type(path) is Path and path.points is pts and path == Path(*pts, is_closed=True)
    poly = Polygon._from_points(pts)
    assert type(poly) is Polygon and poly.is_closed and poly == Polygon(*pts)


ALL_VALUES = [
    Range(1, 5),
    Range(None, 5, upper_inc=True),
    Range(empty=True),
    BitString("0000 0000 1"),
    BitString(),
    Point(1, 2),
    Box((1, 2), (0, 0)),
    Line(1, 2, 3),
    LineSegment((1, 2), (2, 2)),
    Circle((0, 0), 100),
    Path((0, 0), (1, 1), is_closed=True),
    Polygon((0, 0), (1, 0), (1, 1)),
]


@pytest.mark.parametrize("value", ALL_VALUES, ids=lambda v: type(v).__name__)
def test_pickle_and_copy(value):
    for clone in (pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)):
        assert type(clone) is type(value)
        assert clone == value and hash(clone) == hash(value)
