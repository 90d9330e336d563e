"""Hostile arguments: every parameter type fed wrong, huge, NaN, NUL-bearing, surrogate
and deeply nested values. Each call either succeeds (NaN is a float, after all) or
raises a clear error of a class a caller expects for bad data, and the connection
stays open and usable after every one of them.
"""

from __future__ import annotations

import decimal

import pytest

import ferropg
from ferropg import exceptions

TYPES = [
    "int2", "int4", "int8", "float4", "float8", "numeric", "money", "oid",
    "text", "varchar", "bpchar", "name", '"char"', "bytea", "bool",
    "date", "time", "timetz", "timestamp", "timestamptz", "interval",
    "uuid", "json", "jsonb", "xml", "tsvector",
    "inet", "cidr", "macaddr", "bit", "varbit",
    "point", "box", "path", "polygon", "circle", "line", "lseg",
    "int4[]", "text[]", "jsonb[]", "numeric[][]", "int4range", "int8multirange",
]  # fmt: skip


def _deep(levels: int) -> list:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value  # type: ignore[return-value]


HOSTILE = {
    "object": object(),
    "wrong-str": "abc",
    "fraction": 1.5,
    "list": [1, 2],
    "dict": {"a": 1},
    "set": {1},
    "bytes-with-nul": b"x\0y",
    "huge-int": 10**400,
    "huge-negative-int": -(10**400),
    "inf": float("inf"),
    "nan": float("nan"),
    "decimal-nan": decimal.Decimal("NaN"),
    "decimal-huge": decimal.Decimal("1e1000000"),
    "nul-str": "a\0b",
    "surrogate": "a\ud800b",
    "nested-100k": _deep(100_000),
    "big-str": "x" * (4 * 1024 * 1024),
}

#: What a caller may see for bad data: the client's DataError and the server's data
#: exceptions (both ``exceptions.DataError``), a misuse (InterfaceError), and the
#: server's limits on names and words.
EXPECTED = (
    exceptions.DataError,
    exceptions.InterfaceError,
    exceptions.ProgramLimitExceededError,
    exceptions.NameTooLongError,
)


async def test_every_type_refuses_hostile_values_cleanly(dsn):
    con = await ferropg.connect(dsn)
    outcomes = {"ok": 0, "refused": 0}
    try:
        for pg_type in TYPES:
            for label, value in HOSTILE.items():
                where = f"{pg_type} <- {label}"
                try:
                    await con.fetchval(f"SELECT $1::{pg_type}", value)
                except EXPECTED as e:
                    # The message names the problem in a few lines, however deep or
                    # wide the value (the server quotes a long string whole).
                    if label != "big-str":
                        assert len(str(e)) < 2000, where
                    outcomes["refused"] += 1
                else:
                    outcomes["ok"] += 1
                assert not con.is_closed(), where
                assert await con.fetchval("SELECT 1") == 1, where
        # executemany: the bad element is named, the good ones are rolled back.
        await con.execute("CREATE TEMP TABLE hostile (x int)")
        with pytest.raises(exceptions.DataError, match="element #2"):
            await con.executemany(
                "INSERT INTO hostile VALUES ($1)", [(1,), (2,), (_deep(100_000),)]
            )
        assert await con.fetchval("SELECT count(*) FROM hostile") == 0
    finally:
        await con.close()
    assert outcomes["refused"] > len(TYPES) * 10
    assert outcomes["ok"] > 0
