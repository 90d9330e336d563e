"""Value types that codecs return or accept, type descriptions, and the server version.

The value classes match asyncpg 0.32's (``asyncpg.types`` and ``asyncpg.pgproto.types``)
in constructors, attributes, equality, hashing and repr:

* :class:`Range` for range types (and the elements of multiranges);
* :class:`BitString` for ``bit`` and ``varbit``;
* :class:`Point`, :class:`Box`, :class:`Line`, :class:`LineSegment`, :class:`Circle`
  (tuple subclasses) and :class:`Path`, :class:`Polygon` for the geometric types.

Cheap construction for codecs
-----------------------------
The public constructors convert and check their arguments.  A codec that already holds
values of the right types can skip that work:

* ``Point._make((x, y))``, ``Box._make((high, low))``, ``Line._make((a, b, c))``,
  ``LineSegment._make((p1, p2))``, ``Circle._make((center, radius))``: ``tuple.__new__``
  on the class, nothing converted.  ``x, y, a, b, c, radius`` must be floats and
  ``high, low, p1, p2, center`` :class:`Point` instances.  From C the same object can be
  made with ``cls->tp_alloc(cls, n)`` and ``PyTuple_SET_ITEM``: these classes add no
  fields (``__slots__ = ()``) to the tuple layout.
* ``Path._from_points(points, is_closed)`` and ``Polygon._from_points(points)``: ``points``
  must be a tuple of :class:`Point`.
* ``Range._from_parts(lower, upper, lower_inc, upper_inc, empty)``: positional, so no
  keyword dictionary is built; bounds are normalised as the constructor does.
* ``BitString._from_parts(data, bitlength)``: ``data`` must be ``bytes`` of exactly
  ``(bitlength + 7) // 8`` bytes with the bits past ``bitlength`` zero (as the server
  sends them).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, Union, overload

from . import _native
from ._builtin_types import BUILTIN_TYPES

#: The uuid.UUID subclass that uuid columns decode to.
UUID = _native.uuid_type()


class ServerVersion(NamedTuple):
    """The server's version, as ``(major, minor, micro, releaselevel, serial)``."""

    major: int
    minor: int
    micro: int
    releaselevel: str
    serial: int


class Type(NamedTuple):
    """A data type: its OID, name, kind ('scalar', 'array', 'composite', 'range'...) and schema."""

    oid: int
    name: str
    kind: str
    schema: str


class Attribute(NamedTuple):
    """A result column: its name and :class:`Type`."""

    name: str
    type: Type


def builtin_type(oid: int) -> Type:
    """A :class:`Type` for a type OID: named when it is a built-in type."""
    entry = BUILTIN_TYPES.get(oid)
    if entry is None:
        return Type(oid, "", "scalar", "")
    name, kind = entry
    return Type(oid, name, kind, "pg_catalog")


# --------------------------------------------------------------------------------------
# Range

_T = TypeVar("_T")
_RangeT = TypeVar("_RangeT", bound="Range[Any]")


class Range(Generic[_T]):
    """An immutable PostgreSQL range value.

    ``Range(lower=None, upper=None, *, lower_inc=True, upper_inc=False, empty=False)``.
    A bound of ``None`` is infinite, and an infinite bound is never inclusive.  With
    ``empty=True`` the bounds are ignored.  The bounds are not compared or canonicalised:
    ``Range(5, 5)`` is not empty, and ``Range(1, 5, upper_inc=True)`` differs from
    ``Range(1, 6)``, as in asyncpg (the server canonicalises discrete ranges it returns).
    """

    __slots__ = ("_lower", "_upper", "_lower_inc", "_upper_inc", "_empty")

    _lower: _T | None
    _upper: _T | None
    _lower_inc: bool
    _upper_inc: bool
    _empty: bool

    def __init__(
        self,
        lower: _T | None = None,
        upper: _T | None = None,
        *,
        lower_inc: bool = True,
        upper_inc: bool = False,
        empty: bool = False,
    ) -> None:
        self._set(lower, upper, lower_inc, upper_inc, empty)

    @classmethod
    def _from_parts(
        cls: type[_RangeT],
        lower: Any,
        upper: Any,
        lower_inc: bool,
        upper_inc: bool,
        empty: bool,
    ) -> _RangeT:
        """A range from positional parts: the codecs' path, which avoids keyword arguments."""
        self = cls.__new__(cls)
        self._set(lower, upper, lower_inc, upper_inc, empty)
        return self

    def _set(self, lower: Any, upper: Any, lower_inc: Any, upper_inc: Any, empty: Any) -> None:
        # Normalised here so that equal ranges compare and hash equal however they were
        # written: an empty range has no bounds, and an infinite bound cannot be included.
        if empty:
            self._lower = self._upper = None
            self._lower_inc = self._upper_inc = False
            self._empty = True
        else:
            self._lower = lower
            self._upper = upper
            self._lower_inc = lower is not None and bool(lower_inc)
            self._upper_inc = upper is not None and bool(upper_inc)
            self._empty = False

    @property
    def isempty(self) -> bool:
        """Whether this is the empty range."""
        return self._empty

    @property
    def lower_inf(self) -> bool:
        """Whether the range is unbounded below (never true for an empty range)."""
        return self._infinite(self._lower)

    @property
    def upper_inf(self) -> bool:
        """Whether the range is unbounded above (never true for an empty range)."""
        return self._infinite(self._upper)

    def _infinite(self, bound: Any) -> bool:
        # An empty range keeps None in both bounds, yet neither of them is infinite.
        return not self._empty and bound is None

    @property
    def lower_inc(self) -> bool:
        """Whether the lower bound belongs to the range."""
        return self._lower_inc

    @property
    def upper_inc(self) -> bool:
        """Whether the upper bound belongs to the range."""
        return self._upper_inc

    @property
    def lower(self) -> _T | None:
        """The lower bound, or ``None`` when it is infinite or the range is empty."""
        return self._lower

    @property
    def upper(self) -> _T | None:
        """The upper bound, or ``None`` when it is infinite or the range is empty."""
        return self._upper

    def issubset(self, other: Range[_T]) -> bool:
        """Whether every value in this range is also in ``other``.

        Decided from the bounds alone: ``Range(1, 5)`` is not a subset of
        ``Range(1, 4, upper_inc=True)`` even for integers.
        """
        if self._empty:
            return True
        if other._empty:
            return False
        return self._lower_within(other) and self._upper_within(other)

    def issuperset(self, other: Range[_T]) -> bool:
        """Whether every value in ``other`` is also in this range."""
        return other.issubset(self)

    def _lower_within(self, other: Range[_T]) -> bool:
        # Does our lower bound start at or after other's?
        if other._lower is None:
            return True
        if self._lower is None:
            return False
        if self._lower == other._lower:
            # Same value: only an inclusive bound of ours needs an inclusive one of theirs.
            return other._lower_inc or not self._lower_inc
        return self._lower > other._lower  # type: ignore[operator]

    def _upper_within(self, other: Range[_T]) -> bool:
        # Does our upper bound end at or before other's?
        if other._upper is None:
            return True
        if self._upper is None:
            return False
        if self._upper == other._upper:
            return other._upper_inc or not self._upper_inc
        return self._upper < other._upper  # type: ignore[operator]

    def _key(self) -> tuple[Any, Any, bool, bool, bool]:
        return (self._lower, self._upper, self._lower_inc, self._upper_inc, self._empty)

    def __eq__(self, other: object) -> bool:
        """Ranges are equal when their bounds, inclusivity and emptiness are."""
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        """A hash consistent with ``==``."""
        return hash(self._key())

    def __bool__(self) -> bool:
        """False only for the empty range."""
        return not self._empty

    def __repr__(self) -> str:
        """``<Range [1, 5)>``, ``<Range (, 5]>``, ``<Range empty>``: bounds by ``repr``."""
        if self._empty:
            return "<Range empty>"
        lower = "" if self._lower is None else repr(self._lower)
        upper = "" if self._upper is None else repr(self._upper)
        opening = "[" if self._lower_inc else "("
        closing = "]" if self._upper_inc else ")"
        return f"<Range {opening}{lower}, {upper}{closing}>"

    __str__ = __repr__


# --------------------------------------------------------------------------------------
# BitString

_BitStringT = TypeVar("_BitStringT", bound="BitString")


def _reverse_bits(value: int, nbits: int) -> int:
    # The bit order of an ``nbits``-wide field reversed: what 'little' bit order means.
    if nbits == 0:
        return 0
    return int(format(value, f"0{nbits}b")[::-1], 2)


class BitString:
    """An immutable PostgreSQL ``bit`` / ``varbit`` value: a sequence of bits.

    ``BitString('0101 1')`` parses ``'0'`` and ``'1'`` characters, skipping spaces
    (``ValueError`` for anything else); ``BitString()`` and ``BitString('')`` are empty.
    :meth:`frombytes` builds one from packed bytes and a bit length, :meth:`from_int`
    from an integer.  Bits are packed most significant first, as PostgreSQL sends them.
    ``len()`` is the number of bits; indexing and iteration give ints 0 and 1.
    """

    __slots__ = ("_bytes", "_bitlength")

    _bytes: bytes
    _bitlength: int

    def __init__(self, bitstring: str | Iterable[Any] | None = None) -> None:
        if not bitstring:
            self._bytes = b""
            self._bitlength = 0
            return
        if isinstance(bitstring, str):
            digits = bitstring.replace(" ", "")
            # strip() stops at the first character other than 0/1 from either end, so
            # anything left over means the string holds one.
            if digits.strip("01"):
                raise ValueError(f"invalid bit value at position {_bad_bit(bitstring)}")
        else:
            # asyncpg accepts any iterable of bits, e.g. bytes b'\x00\x01' or [1, 0].
            chars = []
            for i, bit in enumerate(bitstring):
                if bit == " ":
                    continue
                if bit == 0 or bit == 1 or bit == "0" or bit == "1":
                    chars.append("1" if bit == 1 or bit == "1" else "0")
                else:
                    raise ValueError(f"invalid bit value at position {i}")
            digits = "".join(chars)
        nbits = len(digits)
        if nbits == 0:
            self._bytes = b""
        else:
            value = int(digits, 2) << (-nbits % 8)
            self._bytes = value.to_bytes((nbits + 7) // 8, "big")
        self._bitlength = nbits

    @classmethod
    def _from_parts(cls: type[_BitStringT], data: bytes, bitlength: int) -> _BitStringT:
        """A bit string from trusted parts (see the module docstring): the codecs' path."""
        self = cls.__new__(cls)
        self._bytes = data
        self._bitlength = bitlength
        return self

    @classmethod
    def frombytes(
        cls: type[_BitStringT],
        bytes_: bytes | bytearray | memoryview | None = None,
        bitlength: int | None = None,
    ) -> _BitStringT:
        """A bit string of ``bitlength`` bits packed in ``bytes_``, most significant first.

        Without ``bitlength`` every bit of ``bytes_`` counts; without ``bytes_`` the bits
        are all zero.  ``bitlength`` must fit the bytes given (as in asyncpg, up to one
        spare byte is accepted, e.g. ``frombytes(b'\\x00\\x00', 8)``), else ``ValueError``.
        Bits past ``bitlength`` and spare bytes are dropped, so equal bits compare equal.
        """
        if bitlength is None:
            data = b"" if bytes_ is None else bytes(bytes_)
            return cls._from_parts(data, len(data) * 8)
        bitlength = operator.index(bitlength)
        if bitlength < 0:
            raise ValueError("invalid bit length specified")
        nbytes = (bitlength + 7) // 8
        if bytes_ is None:
            return cls._from_parts(bytes(nbytes), bitlength)
        data = bytes(bytes_)
        available = len(data) * 8
        # The range asyncpg accepts: empty with empty, else within the last (or one
        # spare) byte.
        if (available == 0) != (bitlength == 0) or not available - 8 <= bitlength <= available:
            raise ValueError("invalid bit length specified")
        data = data[:nbytes]
        spare = -bitlength % 8
        if spare and data[-1] & ((1 << spare) - 1):
            # Zero the padding so equality and hashing see only the bits themselves
            # (asyncpg keeps the padding, and then a round trip through the server,
            # which zeroes it, compares unequal).
            data = data[:-1] + bytes((data[-1] & (0xFF << spare) & 0xFF,))
        return cls._from_parts(data, bitlength)

    @property
    def bytes(self) -> bytes:
        """The bits packed into bytes, most significant first, the last byte zero-padded."""
        return self._bytes

    def as_string(self) -> str:
        """The bits as ``'0'``/``'1'`` characters in groups of four: ``'0000 0001'``."""
        n = self._bitlength
        if n == 0:
            return ""
        digits = format(int.from_bytes(self._bytes, "big") >> (-n % 8), f"0{n}b")
        return " ".join(digits[i : i + 4] for i in range(0, n, 4))

    def to_int(self, bitorder: str = "big", *, signed: bool = False) -> int:
        """The bits read as an integer, like ``int.from_bytes``.

        ``bitorder='big'`` (PostgreSQL's ``bit``-to-``int`` cast) takes the first bit as
        the most significant; ``'little'`` the last.  ``signed=True`` reads two's
        complement.  The length is lost: leading zero bits do not change the result.
        """
        if bitorder not in ("big", "little"):
            raise ValueError("bitorder must be either 'big' or 'little'")
        n = self._bitlength
        value = int.from_bytes(self._bytes, "big") >> (-n % 8)
        if bitorder == "little":
            value = _reverse_bits(value, n)
        if signed and n and value >> (n - 1):
            value -= 1 << n
        return value

    @classmethod
    def from_int(
        cls: type[_BitStringT],
        x: int,
        length: int,
        bitorder: str = "big",
        *,
        signed: bool = False,
    ) -> _BitStringT:
        """``x`` as a bit string of ``length`` bits, like ``int.to_bytes``.

        ``bitorder`` as in :meth:`to_int`.  A negative ``x`` needs ``signed=True`` and is
        written in two's complement.  ``ValueError`` for a negative ``length`` or an
        unknown ``bitorder``; ``OverflowError`` when ``x`` does not fit.  As in asyncpg, a
        non-negative ``x`` fits when its bits do, even with ``signed=True``.
        """
        x = operator.index(x)
        length = operator.index(length)
        if length < 0:
            raise ValueError("length argument must be non-negative")
        if bitorder not in ("big", "little"):
            raise ValueError("bitorder must be either 'big' or 'little'")
        if x < 0:
            if not signed:
                raise OverflowError("can't convert negative int to unsigned")
            # Stricter than asyncpg, which wraps e.g. -9 into 4 bits as 0111 (= 7).
            if length == 0 or x < -(1 << (length - 1)):
                raise OverflowError("int too big to convert")
            x &= (1 << length) - 1
        elif x.bit_length() > length:
            raise OverflowError("int too big to convert")
        if bitorder == "little":
            x = _reverse_bits(x, length)
        data = (x << (-length % 8)).to_bytes((length + 7) // 8, "big")
        return cls._from_parts(data, length)

    def _bit(self, i: int) -> int:
        return (self._bytes[i >> 3] >> (7 - (i & 7))) & 1

    def __len__(self) -> int:
        """The number of bits."""
        return self._bitlength

    def __getitem__(self, i: int) -> int:
        """Bit ``i`` (0 or 1); negative indexes count from the end.  No slices."""
        if isinstance(i, slice):
            raise NotImplementedError("BitString does not support slices")
        i = operator.index(i)
        if i < 0:
            i += self._bitlength
        if not 0 <= i < self._bitlength:
            raise IndexError("index out of range")
        return self._bit(i)

    def __iter__(self) -> Iterator[int]:
        """The bits, first to last, as ints 0 and 1."""
        return map(self._bit, range(self._bitlength))

    def __eq__(self, other: object) -> bool:
        """Bit strings are equal when they hold the same bits."""
        if not isinstance(other, BitString):
            return NotImplemented
        return self._bitlength == other._bitlength and self._bytes == other._bytes

    def __hash__(self) -> int:
        """A hash consistent with ``==``."""
        return hash((self._bytes, self._bitlength))

    def __repr__(self) -> str:
        """``<BitString 0000 0001>``, as asyncpg."""
        return f"<BitString {self.as_string()}>"

    __str__ = __repr__


def _bad_bit(text: str) -> int:
    # The position (counting spaces, as asyncpg does) of the first character that is
    # not a bit: only reached on the error path.
    for i, ch in enumerate(text):
        if ch not in "01 ":
            return i
    raise AssertionError("no invalid character")  # pragma: no cover


# --------------------------------------------------------------------------------------
# Geometry

# tuple.__new__ as a classmethod: ``cls._make(items)`` builds an instance from a tuple
# without running (and converting in) the class's own ``__new__``.
_tuple_make = classmethod(tuple.__new__)


def _tuple_getnewargs(self: tuple[Any, ...]) -> tuple[Any, ...]:
    # tuple's own __getnewargs__ returns (tuple(self),), which these classes' __new__
    # (taking the items as separate arguments) cannot accept: copy and pickle need this.
    return tuple(self)


def _qualified_repr(self: tuple[Any, ...]) -> str:
    # asyncpg's form for Point, Box and LineSegment: ``module.Name((items))``.
    cls = type(self)
    return f"{cls.__module__}.{cls.__name__}({tuple.__repr__(self)})"


class Point(tuple[float, float]):
    """A PostgreSQL ``point``: a tuple ``(x, y)`` of floats.

    ``Point(x, y)`` converts both with ``float()``; build one from a sequence with
    ``Point(*seq)``.  Compares and hashes as the plain tuple.
    """

    __slots__ = ()

    def __new__(cls, x: Any, y: Any) -> Point:
        return tuple.__new__(cls, (float(x), float(y)))

    _make = _tuple_make
    __getnewargs__ = _tuple_getnewargs
    __repr__ = _qualified_repr

    x = property(operator.itemgetter(0), doc="The x coordinate.")
    y = property(operator.itemgetter(1), doc="The y coordinate.")


class Box(tuple[Point, Point]):
    """A PostgreSQL ``box``: a tuple ``(high, low)`` of two :class:`Point`.

    ``Box(high, low)`` takes two ``(x, y)`` sequences.  The corners are kept as given, as
    in asyncpg: the server reorders them into upper-right, lower-left on input.
    """

    __slots__ = ()

    def __new__(cls, high: Sequence[Any], low: Sequence[Any]) -> Box:
        return tuple.__new__(cls, (Point(*high), Point(*low)))

    _make = _tuple_make
    __getnewargs__ = _tuple_getnewargs
    __repr__ = _qualified_repr

    high = property(operator.itemgetter(0), doc="The first corner (the upper right one).")
    low = property(operator.itemgetter(1), doc="The second corner (the lower left one).")


class Line(tuple[float, float, float]):
    """A PostgreSQL ``line`` ``Ax + By + C = 0``: a tuple ``(A, B, C)``.

    The coefficients are stored as given (asyncpg does not convert them), and the repr is
    the plain tuple's, as in asyncpg.
    """

    __slots__ = ()

    def __new__(cls, A: float, B: float, C: float) -> Line:  # noqa: N803 - asyncpg's names
        return tuple.__new__(cls, (A, B, C))

    _make = _tuple_make
    __getnewargs__ = _tuple_getnewargs

    A = property(operator.itemgetter(0), doc="The coefficient of x.")
    B = property(operator.itemgetter(1), doc="The coefficient of y.")
    C = property(operator.itemgetter(2), doc="The constant term.")


class LineSegment(tuple[Point, Point]):
    """A PostgreSQL ``lseg``: a tuple ``(p1, p2)`` of two :class:`Point`.

    ``LineSegment(p1, p2)`` takes two ``(x, y)`` sequences.
    """

    __slots__ = ()

    def __new__(cls, p1: Sequence[Any], p2: Sequence[Any]) -> LineSegment:
        return tuple.__new__(cls, (Point(*p1), Point(*p2)))

    _make = _tuple_make
    __getnewargs__ = _tuple_getnewargs
    __repr__ = _qualified_repr

    p1 = property(operator.itemgetter(0), doc="The first end point.")
    p2 = property(operator.itemgetter(1), doc="The second end point.")


class Circle(tuple[Point, float]):
    """A PostgreSQL ``circle``: a tuple ``(center, radius)``.

    ``Circle(center, radius)`` takes an ``(x, y)`` sequence, made a :class:`Point` (asyncpg
    keeps whatever was passed; the tuple compares equal either way), and keeps the radius
    as given.  The repr is the plain tuple's, as in asyncpg.
    """

    __slots__ = ()

    def __new__(cls, center: Sequence[Any], radius: float) -> Circle:
        return tuple.__new__(cls, (Point(*center), radius))

    _make = _tuple_make
    __getnewargs__ = _tuple_getnewargs

    center = property(operator.itemgetter(0), doc="The centre, a :class:`Point`.")
    radius = property(operator.itemgetter(1), doc="The radius.")


_PathT = TypeVar("_PathT", bound="Path")


class Path:
    """A PostgreSQL ``path``: a sequence of :class:`Point`, open or closed.

    ``Path(*points, is_closed=False)`` takes ``(x, y)`` sequences.  ``points`` is the tuple
    of :class:`Point`; ``len()``, indexing (slices give tuples), iteration and ``in`` work
    on it.  Paths compare equal when their points and closedness are equal (a closed path
    equals a :class:`Polygon` with the same points).
    """

    __slots__ = ("_is_closed", "points")

    points: tuple[Point, ...]

    def __init__(self, *points: Sequence[Any], is_closed: bool = False) -> None:
        self.points = tuple(Point(*p) for p in points)
        self._is_closed = bool(is_closed)

    @classmethod
    def _from_points(
        cls: type[_PathT], points: tuple[Point, ...], is_closed: bool = False
    ) -> _PathT:
        """A path from a tuple of :class:`Point` taken as is: the codecs' path."""
        self = cls.__new__(cls)
        self.points = points
        self._is_closed = is_closed
        return self

    is_closed = property(
        operator.attrgetter("_is_closed"), doc="Whether the last point joins back to the first."
    )

    def __eq__(self, other: object) -> bool:
        """Paths are equal when their points and closedness are."""
        if isinstance(other, Path):
            return (self.points, self._is_closed) == (other.points, other._is_closed)
        return NotImplemented

    def __hash__(self) -> int:
        """A hash consistent with ``==``."""
        return hash((self.points, self._is_closed))

    def __len__(self) -> int:
        """The number of points."""
        return len(self.points)

    @overload
    def __getitem__(self, i: int) -> Point: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[Point, ...]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[Point, tuple[Point, ...]]:
        """Point ``i``, or a tuple of points for a slice."""
        return self.points[i]

    def __iter__(self) -> Iterator[Point]:
        """The points in order."""
        return iter(self.points)

    def __contains__(self, point: object) -> bool:
        """Whether ``point`` (any ``(x, y)`` tuple) is one of the points."""
        return point in self.points

    def __repr__(self) -> str:
        """``ferropg.types.Path((0.0, 0.0), (1.0, 1.0), is_closed=False)``.

        asyncpg keeps ``object``'s repr here; this one shows the value and evaluates back.
        """
        cls = type(self)
        parts = [tuple.__repr__(p) for p in self.points]
        if not isinstance(self, Polygon):
            parts.append(f"is_closed={self._is_closed!r}")
        return f"{cls.__module__}.{cls.__name__}({', '.join(parts)})"


class Polygon(Path):
    """A PostgreSQL ``polygon``: a :class:`Path` that is always closed.

    ``Polygon(*points)`` takes ``(x, y)`` sequences.
    """

    __slots__ = ()

    def __init__(self, *points: Sequence[Any]) -> None:
        super().__init__(*points, is_closed=True)

    @classmethod
    def _from_points(
        cls: type[_PathT], points: tuple[Point, ...], is_closed: bool = True
    ) -> _PathT:
        """A polygon from a tuple of :class:`Point` taken as is (always closed)."""
        return super()._from_points(points, True)  # type: ignore[misc]


__all__ = (
    "Attribute",
    "BitString",
    "Box",
    "Circle",
    "Line",
    "LineSegment",
    "Path",
    "Point",
    "Polygon",
    "Range",
    "ServerVersion",
    "Type",
)
