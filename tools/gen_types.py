#!/usr/bin/env python3
"""Generate ferropg's type catalogue from PostgreSQL's own catalog data.

Reads, under ``tools/catalog/`` (PostgreSQL 15.18, see its README):

* ``pg_type.dat`` and ``pg_range.dat``: verbatim copies of PostgreSQL's
  ``src/include/catalog/`` files, the initial contents of pg_type and pg_range;
* ``rowtypes.txt``: the ``CATALOG(...) BKI_ROWTYPE_OID(...)`` lines of the catalog headers
  (the composite types of the catalogs, which pg_type.dat does not list).

and writes:

* ``crates/ferropg-core/src/types/catalog.rs``: a constant per type (``INT4``,
  ``INT4_ARRAY``), and the array, range, multirange and name tables;
* ``python/ferropg/_builtin_types.py``: OID -> (name, kind) of every built-in type, and the
  OIDs of the types whose codecs take asyncpg's ``tuple`` format;
* ``python/ferropg/protocol/_oid_map.py``: asyncpg's ``BUILTIN_TYPE_OID_MAP`` (every
  built-in type that is not a composite), by OID.

Usage: ``python3 tools/gen_types.py`` rewrites the three files; ``--check`` only reports
(exit status 1) the ones that are out of date. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "tools" / "catalog"
RUST_OUT = ROOT / "crates" / "ferropg-core" / "src" / "types" / "catalog.rs"
PY_TYPES_OUT = ROOT / "python" / "ferropg" / "_builtin_types.py"
PY_OID_MAP_OUT = ROOT / "python" / "ferropg" / "protocol" / "_oid_map.py"

RELEASE = "15.18"

# The types whose codecs also take asyncpg's "tuple" format (asyncpg's documentation of
# set_type_codec: the date/time types).
TUPLE_FORMAT = ("date", "time", "timestamp", "timestamptz", "interval", "timetz")

# One `key => 'value'` pair of a .dat entry; values are single-quoted, with `\'` and `\\`.
PAIR = re.compile(r"(\w+)\s*=>\s*'((?:[^'\\]|\\.)*)'")
ROWTYPE = re.compile(r"CATALOG\((\w+),\d+,\w+\).*BKI_ROWTYPE_OID\((\d+),")


@dataclass
class PgType:
    """What the catalogue needs of one pg_type row."""

    oid: int
    name: str
    typtype: str
    descr: str
    elem: str | None = None
    array_oid: int | None = None
    array_name: str | None = None


def read_dat(path: Path) -> list[dict[str, str]]:
    """The entries of a catalog .dat file, as dicts of their key/value pairs."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    entries = []
    for body in re.findall(r"\{(.*?)\}", text, flags=re.S):
        pairs = {k: re.sub(r"\\(.)", r"\1", v) for k, v in PAIR.findall(body)}
        if pairs:
            entries.append(pairs)
    return entries


def load() -> tuple[list[PgType], list[tuple[str, str, str]]]:
    """Every built-in type (arrays included), and (range, subtype, multirange) names."""
    types: list[PgType] = []
    for e in read_dat(CATALOG / "pg_type.dat"):
        t = PgType(
            oid=int(e["oid"]),
            name=e["typname"],
            typtype=e.get("typtype", "b"),
            descr=e.get("descr", ""),
            elem=e.get("typelem"),
            array_oid=int(e["array_type_oid"]) if "array_type_oid" in e else None,
            array_name=e.get("typarray"),
        )
        types.append(t)
    # The arrays genbki.pl makes from `array_type_oid`: named `_elem`, typtype 'b'.
    for t in list(types):
        if t.array_oid is not None:
            types.append(PgType(t.array_oid, "_" + t.name, "b", f"array of {t.name}", t.name))
    for line in (CATALOG / "rowtypes.txt").read_text().splitlines():
        m = ROWTYPE.search(line)
        # The bootstrap catalogs' row types are in pg_type.dat already.
        if m and all(t.oid != int(m.group(2)) for t in types):
            types.append(PgType(int(m.group(2)), m.group(1), "c", f"row type of {m.group(1)}"))
    ranges = [
        (e["rngtypid"], e["rngsubtype"], e["rngmultitypid"])
        for e in read_dat(CATALOG / "pg_range.dat")
    ]
    oids = [t.oid for t in types]
    assert len(oids) == len(set(oids)), "an OID is listed twice"
    return sorted(types, key=lambda t: t.oid), ranges


def array_pairs(types: list[PgType]) -> list[tuple[int, int]]:
    """(array OID, element OID): an array type is one its element names as its array
    (``array_type_oid``, or ``typarray`` for the hand-built ones such as ``_record``)."""
    by_name = {t.name: t for t in types}
    pairs = []
    for t in types:
        if t.array_oid is not None:
            pairs.append((t.array_oid, t.oid))
        elif t.array_name is not None:
            pairs.append((by_name[t.array_name].oid, t.oid))
    return sorted(pairs)


def kinds(types: list[PgType], ranges: list[tuple[str, str, str]]) -> dict[int, tuple[str, str]]:
    """OID -> (display name, asyncpg's kind) of every type."""
    arrays = dict(array_pairs(types))
    by_oid = {t.oid: t for t in types}
    range_names = {r for r, _, _ in ranges}
    multirange_names = {m for _, _, m in ranges}
    out = {}
    for t in types:
        if t.oid in arrays:
            out[t.oid] = (by_oid[arrays[t.oid]].name + "[]", "array")
        elif t.typtype == "c":
            out[t.oid] = (t.name, "composite")
        elif t.name in range_names:
            out[t.oid] = (t.name, "range")
        elif t.name in multirange_names:
            out[t.oid] = (t.name, "multirange")
        elif t.typtype == "d":
            out[t.oid] = (t.name, "domain")
        else:
            out[t.oid] = (t.name, "scalar")
    return out


def const_name(t: PgType, element: PgType | None) -> str:
    if element is not None:
        return element.name.upper() + "_ARRAY"
    return t.name.upper()


def rust(types: list[PgType], ranges: list[tuple[str, str, str]]) -> str:
    arrays = array_pairs(types)
    element_of = dict(arrays)
    by_oid = {t.oid: t for t in types}
    by_name = {t.name: t for t in types}
    kind = kinds(types, ranges)
    names = {t.oid: const_name(t, by_oid.get(element_of.get(t.oid, -1))) for t in types}
    out = [
        f"//! PostgreSQL {RELEASE}'s built-in types: a constant per type, and the tables the",
        "//! codecs look types up in.",
        "//!",
        "//! Generated by `tools/gen_types.py` from `tools/catalog/`; do not edit.",
        "",
        "/// What kind of type a built-in type is, in asyncpg's terms.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub enum Kind {",
        "    /// A base or pseudo type.",
        "    Scalar,",
        "    /// An array of an element type.",
        "    Array,",
        "    /// A catalog's row type.",
        "    Composite,",
        "    /// A range over a subtype.",
        "    Range,",
        "    /// A multirange of a range type.",
        "    Multirange,",
        "}",
        "",
    ]
    for t in types:
        descr = t.descr.replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;") or t.name
        out.append(f"/// `{t.name}`: {descr}")
        out.append(f"pub const {names[t.oid]}: u32 = {t.oid};")
    out += ["", "/// Every built-in array type: `(array OID, element OID)`, by array OID."]
    out.append("pub const ARRAY_TYPES: &[(u32, u32)] = &[")
    out += [f"    ({names[a]}, {names[e]})," for a, e in arrays]
    out += ["];", "", "/// The built-in range types and their subtypes."]
    out.append("pub const RANGE_TYPES: &[(u32, u32)] = &[")
    out += [f"    ({names[by_name[r].oid]}, {names[by_name[s].oid]})," for r, s, _ in ranges]
    out += ["];", "", "/// The built-in multirange types and their range types."]
    out.append("pub const MULTIRANGE_TYPES: &[(u32, u32)] = &[")
    out += [f"    ({names[by_name[m].oid]}, {names[by_name[r].oid]})," for r, _, m in ranges]
    out += ["];", "", "/// Every built-in type: `(OID, name, kind)`, by OID; an array is named"]
    out.append("/// after its element (`int4[]`).")
    out.append("pub const BUILTIN_TYPES: &[(u32, &str, Kind)] = &[")
    for t in types:
        name, k = kind[t.oid]
        if k == "domain":
            k = "scalar"
        out.append(f'    ({names[t.oid]}, "{name}", Kind::{k.capitalize()}),')
    out.append("];")
    return "\n".join(out) + "\n"


def rustfmt(text: str) -> str:
    """``text`` as ``cargo fmt`` leaves it, so that ``--check`` and the formatter agree."""
    exe = shutil.which("rustfmt")
    if exe is None:
        sys.exit("gen_types.py: rustfmt is needed (it ships with the Rust toolchain)")
    done = subprocess.run(
        [exe, "--edition", "2021", "--emit", "stdout"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def python_types(types: list[PgType], ranges: list[tuple[str, str, str]]) -> str:
    kind = kinds(types, ranges)
    by_name = {t.name: t for t in types}
    out = [
        f'"""Built-in PostgreSQL types (PostgreSQL {RELEASE}): OID -> (name, kind).',
        "",
        "Generated by tools/gen_types.py from tools/catalog/; do not edit.",
        '"""',
        "",
        "BUILTIN_TYPES = {",
    ]
    out += [f'    {oid}: ("{name}", "{k}"),' for oid, (name, k) in sorted(kind.items())]
    out += ["}", "", "# The types whose codecs also take the 'tuple' format."]
    tuple_oids = ", ".join(str(by_name[n].oid) for n in TUPLE_FORMAT)
    out.append(f"TUPLE_FORMAT_TYPES = frozenset(({tuple_oids}))")
    return "\n".join(out) + "\n"


def python_oid_map(types: list[PgType], ranges: list[tuple[str, str, str]]) -> str:
    kind = kinds(types, ranges)
    out = [
        f'"""Every built-in type that is not a composite, by OID (PostgreSQL {RELEASE}).',
        "",
        "asyncpg's tests look the map up as ``protocol.protocol.BUILTIN_TYPE_OID_MAP``.",
        "Generated by tools/gen_types.py from tools/catalog/; do not edit.",
        '"""',
        "",
        "BUILTIN_TYPE_OID_MAP = {",
    ]
    for t in types:
        if kind[t.oid][1] != "composite":
            out.append(f'    {t.oid}: "{t.name}",')
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report out-of-date files instead of writing them"
    )
    args = parser.parse_args(argv)
    types, ranges = load()
    outputs = {
        RUST_OUT: rustfmt(rust(types, ranges)),
        PY_TYPES_OUT: python_types(types, ranges),
        PY_OID_MAP_OUT: python_oid_map(types, ranges),
    }
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run tools/gen_types.py", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(outputs[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
