"""The generated type catalogue (tools/gen_types.py, from PostgreSQL's pg_type.dat and
pg_range.dat) against what a live server's catalog says."""

import subprocess
import sys
from pathlib import Path

import ferropg
from ferropg._builtin_types import BUILTIN_TYPES, TUPLE_FORMAT_TYPES
from ferropg.protocol.protocol import BUILTIN_TYPE_OID_MAP

ROOT = Path(__file__).resolve().parent.parent

# Every built-in type of pg_catalog with a fixed OID: its name (an array named after its
# element) and asyncpg's kind.
CATALOG_QUERY = """
SELECT t.oid::int,
       CASE WHEN e.oid IS NOT NULL THEN e.typname || '[]' ELSE t.typname END,
       CASE WHEN e.oid IS NOT NULL THEN 'array'
            WHEN t.typtype = 'c' THEN 'composite'
            WHEN t.typtype = 'r' THEN 'range'
            WHEN t.typtype = 'm' THEN 'multirange'
            WHEN t.typtype = 'd' THEN 'domain'
            ELSE 'scalar' END
FROM pg_type t
LEFT JOIN pg_type e ON t.typelem = e.oid AND t.typlen = -1 AND e.typarray = t.oid
WHERE t.oid < 10000 AND t.typnamespace = 'pg_catalog'::regnamespace
"""


async def test_the_catalogue_is_the_servers(dsn: str) -> None:
    con = await ferropg.connect(dsn)
    try:
        version = con.get_server_version()
        rows = await con.fetch(CATALOG_QUERY)
    finally:
        await con.close()
    live = {oid: (name, kind) for oid, name, kind in rows}
    if version.major == 15:
        # The catalogue is pinned to PostgreSQL 15: the same server says the same.
        assert live == BUILTIN_TYPES
    else:
        # Other releases add types (or drop old ones); what both know must agree.
        common = live.keys() & BUILTIN_TYPES.keys()
        assert len(common) > 150
        assert {o: live[o] for o in common} == {o: BUILTIN_TYPES[o] for o in common}


def test_tables_derived_from_the_catalogue() -> None:
    names = {name: oid for oid, (name, _) in BUILTIN_TYPES.items()}
    assert TUPLE_FORMAT_TYPES == {
        names[n] for n in ("date", "time", "timestamp", "timestamptz", "interval", "timetz")
    }
    # asyncpg's map: every built-in type that is not a composite, by its pg_type name.
    assert set(BUILTIN_TYPE_OID_MAP) == {
        oid for oid, (_, kind) in BUILTIN_TYPES.items() if kind != "composite"
    }
    assert BUILTIN_TYPE_OID_MAP[1007] == "_int4" and BUILTIN_TYPES[1007] == ("int4[]", "array")


def test_the_generated_files_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_types.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
