"""PEP 249's type objects and constructors.

A column's ``type_code`` in :attr:`Cursor.description` is its type's OID; each type
object compares equal to the OIDs of its group (``description[0][1] == STRING``).
"""

from __future__ import annotations

import datetime
import time

__all__ = (
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Date",
    "DateFromTicks",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
)


class DBAPITypeObject:
    """A group of PostgreSQL types, equal to the OID of each of them."""

    __slots__ = ("name", "oids")

    def __init__(self, name: str, oids: frozenset[int]) -> None:
        self.name = name
        self.oids = oids

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return other.oids == self.oids
        return other in self.oids

    def __hash__(self) -> int:
        return hash(self.oids)

    def __repr__(self) -> str:
        return f"<ferropg.dbapi type object {self.name}>"


# name, text, bpchar, varchar, "char", json, xml, citext-free built-ins only.
STRING = DBAPITypeObject("STRING", frozenset({18, 19, 25, 114, 142, 1042, 1043, 3802}))
BINARY = DBAPITypeObject("BINARY", frozenset({17}))
# int2, int4, int8, oid, float4, float8, money, numeric
NUMBER = DBAPITypeObject("NUMBER", frozenset({20, 21, 23, 26, 700, 701, 790, 1700}))
# date, time, timestamp, timestamptz, interval, timetz
DATETIME = DBAPITypeObject("DATETIME", frozenset({1082, 1083, 1114, 1184, 1186, 1266}))
# oid, tid
ROWID = DBAPITypeObject("ROWID", frozenset({26, 27}))

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks: float) -> datetime.date:  # noqa: N802 - PEP 249's name
    """The local date of a Unix time."""
    return datetime.date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:  # noqa: N802 - PEP 249's name
    """The local time of day of a Unix time."""
    return datetime.time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:  # noqa: N802 - PEP 249's name
    """The local date and time of a Unix time."""
    return datetime.datetime(*time.localtime(ticks)[:6])
