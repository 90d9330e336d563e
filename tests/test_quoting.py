"""SQL that the client builds from values is safe and correct under both settings of
``standard_conforming_strings``: COPY arguments and options, identifiers and listener
channels. The quoting rule is the core's (``ferropg_core::quote``); these tests run it
through a real server, with hostile values and with random ones (hypothesis).
"""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ferropg
from ferropg import _native, utils
from ferropg.exceptions import _base

SETTINGS = ("on", "off")
HOSTILE = [
    "\\') TO STDOUT; DROP TABLE canary; --",
    "\\'); DROP TABLE canary; --",
    "'; DROP TABLE canary; --",
    "\\",
    "\\\\'",
    "it's",
    '"',
    "é€😀",
]


async def _connect(dsn: str, scs: str) -> ferropg.Connection:
    con = await ferropg.connect(dsn, server_settings={"standard_conforming_strings": scs})
    assert await con.fetchval("SHOW standard_conforming_strings") == scs
    return con


@pytest.mark.parametrize("scs", SETTINGS)
async def test_copy_arguments_cannot_inject(dsn, scs):
    """``copy_from_query`` inlines its arguments as literals: a hostile one is data."""

    con = await _connect(dsn, scs)
    try:
        await con.execute("CREATE TEMP TABLE canary (x int)")
        for value in HOSTILE:
            out = io.BytesIO()
            await con.copy_from_query(
                "SELECT $1::text, $2::int", value, 7, output=out, format="csv"
            )
            got = out.getvalue().decode()
            assert got.rstrip("\n").rsplit(",", 1)[1] == "7"
            row = await con.fetchrow("SELECT $1::text AS v", value)
            # The CSV field is the value (quoted by COPY when it must be).
            assert _csv_field(got.rsplit(",", 1)[0]) == row["v"]
        assert await con.fetchval("SELECT count(*) FROM canary") == 0
    finally:
        await con.close()


def _csv_field(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text


@pytest.mark.parametrize("scs", SETTINGS)
async def test_copy_options_cannot_inject(dsn, scs):
    """COPY option values (``null=``, ``delimiter=``, ``quote=`` ...) are literals too."""

    con = await _connect(dsn, scs)
    try:
        await con.execute(
            "CREATE TEMP TABLE canary (x int);"
            "CREATE TEMP TABLE t (a text, b text);"
            "INSERT INTO t VALUES ('x', NULL)"
        )
        for value in HOSTILE:
            out = io.BytesIO()
            await con.copy_from_table("t", output=out, null=value)
            assert out.getvalue().decode().split("\t")[0] == "x"
            # The server read our null marker exactly: COPY writes it as given.
            marker = out.getvalue().decode().rstrip("\n").split("\t")[1]
            assert marker == value
        for delimiter in ("'", "\\"):
            out = io.BytesIO()
            await con.copy_from_table(
                "t", output=out, format="csv", delimiter=delimiter, null="NULL"
            )
            assert out.getvalue() == f"x{delimiter}NULL\n".encode()
        out = io.BytesIO()
        await con.copy_from_table("t", output=out, format="csv", header=True, quote="'")
        assert out.getvalue() == b"a,b\nx,\n"
        # Values that are neither strings nor booleans are refused, not pasted in.
        with pytest.raises(_base.DataError):
            await con.copy_from_table("t", output=io.BytesIO(), null=b"\\'")
        with pytest.raises(_base.DataError):
            await con.copy_from_table("t", output=io.BytesIO(), null="a\0b")
        assert await con.fetchval("SELECT count(*) FROM canary") == 0
    finally:
        await con.close()


@pytest.mark.parametrize("scs", SETTINGS)
async def test_hostile_names_are_identifiers(dsn, scs):
    """Table, column and schema names, force_* columns and listener channels."""

    con = await _connect(dsn, scs)
    other = await ferropg.connect(dsn)
    try:
        name = "we\"ird\\'; DROP TABLE canary; --"
        await con.execute("CREATE TEMP TABLE canary (x int)")
        await con.execute(f"CREATE TEMP TABLE {utils._quote_ident(name)} (v text)")
        await con.copy_records_to_table(name, records=[("a",), ("b\\'",)])
        out = io.BytesIO()
        await con.copy_from_table(name, output=out, columns=["v"], format="csv", force_quote=["v"])
        assert out.getvalue() == b'"a"\n"b\\\'"\n'
        got = asyncio.get_running_loop().create_future()
        await con.add_listener(name, lambda *args: got.set_result(args[2:]))
        await other.execute("SELECT pg_notify($1, 'hi')", name)
        assert await asyncio.wait_for(got, 5) == (name, "hi")
        await con.remove_listener(name, con._listeners[name].copy().popitem()[0])
        assert await con.fetchval("SELECT count(*) FROM canary") == 0
        with pytest.raises(_base.DataError):
            await con.add_listener("", lambda *args: None)
    finally:
        await other.close()
        await con.close()


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
    max_size=40,
)


class _Sync:
    """A connection driven synchronously on a private loop, for @given bodies."""

    def __init__(self, dsn: str, scs: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.con = self.loop.run_until_complete(_connect(dsn, scs))

    def fetchrow(self, sql: str):
        return self.loop.run_until_complete(self.con.fetchrow(sql))

    def close(self) -> None:
        self.loop.run_until_complete(self.con.close())
        self.loop.close()


@pytest.fixture(scope="module", params=SETTINGS)
def sync_con(request, dsn):
    con = _Sync(dsn, request.param)
    yield con
    con.close()


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_TEXT, min_size=1, max_size=8))
def test_quoted_values_round_trip_through_the_server(sync_con, texts):
    """Our literal reads back as the string, and our identifier names a column of
    exactly that name (names fit the server's 63 bytes here)."""
    literals = ", ".join(_native.quote_literal(t) for t in texts)
    row = sync_con.fetchrow(f"SELECT {literals}")
    assert list(row) == texts
    names = [t for t in texts if t and len(t.encode()) <= 63]
    if names:
        columns = ", ".join(f"1 AS {_native.quote_ident(n)}" for n in names)
        row = sync_con.fetchrow(f"SELECT {columns}")
        assert list(row.keys()) == names
