#!/usr/bin/env python3
"""Generate ferropg's SQLSTATE tables from PostgreSQL's errcodes.txt.

Reads ``tools/errcodes.txt`` (a verbatim copy of PostgreSQL's
``src/backend/utils/errcodes.txt``) and ``tools/errcodes-extra.txt`` (codes newer than that
copy, in the same format), and writes:

* ``crates/ferropg-core/src/sqlstate.rs``: the ``SqlState`` type, one constant per entry and
  the code -> condition name table;
* ``python/ferropg/exceptions/__init__.py``: one exception class per SQLSTATE, with the names
  and bases of asyncpg 0.32's ``asyncpg.exceptions``.

Usage: ``python3 tools/gen_sqlstate.py`` to rewrite both files, ``--check`` to only report
(exit status 1) when either is out of date. Standard library only.

Rust constant names
    The condition name in upper case (``unique_violation`` -> ``UNIQUE_VIOLATION``). When one
    condition name belongs to several SQLSTATEs, every entry of that group whose C macro is
    not exactly ``ERRCODE_<NAME>`` is named after its macro without the ``ERRCODE_`` prefix
    instead: ``01004`` is ``WARNING_STRING_DATA_RIGHT_TRUNCATION`` (``22001`` keeps
    ``STRING_DATA_RIGHT_TRUNCATION``), ``39004`` is ``E_R_I_E_NULL_VALUE_NOT_ALLOWED``, and
    ``2F002``/``38002`` are ``S_R_E_MODIFYING_SQL_DATA_NOT_PERMITTED`` and
    ``E_R_E_MODIFYING_SQL_DATA_NOT_PERMITTED``. Entries without a condition name (PostgreSQL's
    alias macros, such as ``ERRCODE_UNDEFINED_CURSOR`` for 34000) are also named after their
    macro. These are the names PostgreSQL's own C code uses.

Python class names
    The condition name's words capitalized and joined (``sql``, ``fdw``, ``io`` and
    ``plpgsql`` in upper case). For an error (``E``) a final ``exception`` or ``failure`` word
    becomes ``Error``, and ``Error`` is appended when the name does not end with it; warnings
    (``W``) get no suffix. A name that would shadow a Python builtin gets a ``Postgres``
    prefix (``PostgresWarning``, ``PostgresSyntaxError``). ``CLASS_NAME_OVERRIDES`` lists the
    codes asyncpg names otherwise.

Python class bases
    A class-level code (``XX000``) derives from ``PostgresError``, or from ``PostgresWarning``
    for a warning class; ``01000`` (``PostgresWarning``) itself derives from
    ``PostgresLogMessage`` and ``Warning``. Any other code derives from its class-level class,
    or like a class-level code when its class has none (``10608``).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ERRCODES = ROOT / "tools" / "errcodes.txt"
ERRCODES_EXTRA = ROOT / "tools" / "errcodes-extra.txt"
RUST_OUT = ROOT / "crates" / "ferropg-core" / "src" / "sqlstate.rs"
PY_OUT = ROOT / "python" / "ferropg" / "exceptions" / "__init__.py"
PY_BASE = ROOT / "python" / "ferropg" / "exceptions" / "_base.py"

# asyncpg's names for codes whose mechanical name differs (see the module docstring).
CLASS_NAME_OVERRIDES = {
    "08001": "ClientCannotConnectError",  # sqlclient_unable_to_establish_sqlconnection
    "08004": "ConnectionRejectionError",  # sqlserver_rejected_establishment_of_sqlconnection
    "08006": "ConnectionFailureError",  # connection_failure (not PostgresConnectionError)
    "38002": "ModifyingExternalRoutineSQLDataNotPermittedError",  # clashes with 2F002
    "38003": "ProhibitedExternalRoutineSQLStatementAttemptedError",  # clashes with 2F003
    "38004": "ReadingExternalRoutineSQLDataNotPermittedError",  # clashes with 2F004
    "39004": "NullValueInExternalRoutineNotAllowedError",  # clashes with 22004
    "42000": "SyntaxOrAccessError",  # syntax_error_or_access_rule_violation
    "XX000": "InternalServerError",  # internal_error
}

# Exception classes without a SQLSTATE of their own, defined right after the class of the
# code they derive from: {parent code: [(name, docstring)]}.
EXTRA_CLASSES = {
    "0A000": [
        (
            "InvalidCachedStatementError",
            "A prepared statement was invalidated by a schema or configuration change.",
        ),
    ],
}

# Words that are acronyms in class names.
UPPER_WORDS = {"sql": "SQL", "fdw": "FDW", "io": "IO", "plpgsql": "PLPGSQL"}

# The SQLSTATE whose class is the root of all server warnings.
WARNING_ROOT = "01000"

SECTION_RE = re.compile(r"^Section: Class (?P<cls>[0-9A-Z]{2}) - (?P<title>.+)$")
CODE_RE = re.compile(r"^[0-9A-Z]{5}$")


@dataclass(frozen=True)
class Entry:
    """One line of errcodes.txt."""

    code: str
    kind: str  # 'E' error, 'W' warning, 'S' success
    macro: str
    condition: str | None
    section: str  # the class's title, e.g. 'Data Exception'

    @property
    def class_code(self) -> str:
        return self.code[:2]

    @property
    def is_class_level(self) -> bool:
        return self.code.endswith("000")


@dataclass
class Section:
    """One error class and its entries, in file order."""

    class_code: str
    title: str
    entries: list[Entry]


def parse_errcodes(path: Path) -> list[Section]:
    """The sections of an errcodes.txt-format file, in file order."""
    sections: list[Section] = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path.name}:{lineno}"
        match = SECTION_RE.match(line)
        if match:
            sections.append(Section(match["cls"], match["title"], []))
            continue
        if line.startswith("Section:"):
            raise SystemExit(f"{where}: cannot parse section line {line!r}")
        parts = line.split()
        if len(parts) not in (3, 4):
            raise SystemExit(f"{where}: expected 3 or 4 fields, got {line!r}")
        code, kind, macro = parts[:3]
        condition = parts[3] if len(parts) == 4 else None
        if not CODE_RE.match(code):
            raise SystemExit(f"{where}: bad SQLSTATE {code!r}")
        if kind not in ("E", "W", "S"):
            raise SystemExit(f"{where}: bad kind {kind!r}")
        if not macro.startswith("ERRCODE_"):
            raise SystemExit(f"{where}: bad macro name {macro!r}")
        if condition is not None and not re.fullmatch(r"[a-z][a-z0-9_]*", condition):
            raise SystemExit(f"{where}: bad condition name {condition!r}")
        if not sections:
            raise SystemExit(f"{where}: entry before the first Section line")
        section = sections[-1]
        # Alias entries (no condition name) may sit in another class's section.
        if condition is not None and code[:2] != section.class_code:
            raise SystemExit(f"{where}: {code} is not in class {section.class_code}")
        section.entries.append(Entry(code, kind, macro, condition, section.title))
    return sections


def merge(base: list[Section], extra: list[Section]) -> list[Section]:
    """``base`` with ``extra``'s entries appended to their classes, classes sorted by code."""
    by_class = {s.class_code: Section(s.class_code, s.title, list(s.entries)) for s in base}
    for section in extra:
        target = by_class.setdefault(
            section.class_code, Section(section.class_code, section.title, [])
        )
        for entry in section.entries:
            target.entries.append(
                Entry(entry.code, entry.kind, entry.macro, entry.condition, target.title)
            )
    sections = sorted(by_class.values(), key=lambda s: s.class_code)

    named: dict[str, Entry] = {}
    macros: set[str] = set()
    for entry in (e for s in sections for e in s.entries):
        if entry.macro in macros:
            raise SystemExit(f"duplicate macro {entry.macro}")
        macros.add(entry.macro)
        if entry.condition is None:
            continue
        if entry.code in named:
            raise SystemExit(f"{entry.code} is defined twice")
        named[entry.code] = entry
    for entry in (e for s in sections for e in s.entries):
        if entry.condition is None and entry.code not in named:
            raise SystemExit(f"alias {entry.macro} has no named entry for {entry.code}")
    return sections


# ---------------------------------------------------------------------------------------------
# Rust


def rust_const_names(entries: list[Entry]) -> dict[Entry, str]:
    """The constant name of every entry (rule in the module docstring)."""
    uses: dict[str, int] = {}
    for entry in entries:
        if entry.condition is not None:
            uses[entry.condition] = uses.get(entry.condition, 0) + 1
    names: dict[Entry, str] = {}
    for entry in entries:
        from_macro = entry.macro.removeprefix("ERRCODE_")
        if entry.condition is None:
            names[entry] = from_macro
            continue
        plain = entry.condition.upper()
        shared = uses[entry.condition] > 1
        names[entry] = from_macro if shared and from_macro != plain else plain
    seen: dict[str, Entry] = {}
    for entry, name in names.items():
        if name in seen:
            raise SystemExit(f"Rust constant {name} for both {seen[name].code} and {entry.code}")
        seen[name] = entry
    return names


RUST_HEADER = """\
//! SQLSTATE codes: the [`SqlState`] type, one constant per code PostgreSQL defines, and the
//! code -> condition name table.
//!
//! Generated by tools/gen_sqlstate.py from tools/errcodes.txt and tools/errcodes-extra.txt;
//! do not edit.
//!
//! Constants are named after the condition name (`unique_violation` -> [`UNIQUE_VIOLATION`]).
//! A condition name that several codes share is disambiguated by PostgreSQL's C macro name
//! (`01004` is [`WARNING_STRING_DATA_RIGHT_TRUNCATION`], `22001` is
//! [`STRING_DATA_RIGHT_TRUNCATION`]); PostgreSQL's alias macros (such as [`UNDEFINED_CURSOR`],
//! the same code as [`INVALID_CURSOR_NAME`]) are constants too.

use std::fmt;

/// A five-character SQLSTATE code as sent in an ErrorResponse's `C` field.
///
/// ```
/// use ferropg_core::sqlstate::{self, SqlState};
///
/// let state = SqlState::parse("23505").unwrap();
/// assert_eq!(state, sqlstate::UNIQUE_VIOLATION);
/// assert_eq!(state.class(), "23");
/// assert_eq!(state.condition_name(), Some("unique_violation"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// The SQLSTATE spelled by `code`, with letters upper-cased.
    ///
    /// # Panics
    ///
    /// If a byte of `code` is not an ASCII letter or digit (at compile time in a `const`).
    pub const fn from_bytes(code: [u8; 5]) -> Self {
        let mut upper = code;
        let mut i = 0;
        while i < upper.len() {
            assert!(
                code[i].is_ascii_alphanumeric(),
                "a SQLSTATE is five ASCII letters or digits"
            );
            upper[i] = code[i].to_ascii_uppercase();
            i += 1;
        }
        SqlState(upper)
    }

    /// Parses a SQLSTATE: `None` unless `code` is exactly five ASCII letters or digits.
    /// Letters are upper-cased.
    pub fn parse(code: &str) -> Option<Self> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        if bytes.iter().all(u8::is_ascii_alphanumeric) {
            Some(Self::from_bytes(bytes))
        } else {
            None
        }
    }

    /// The five-character code, such as `"23505"`.
    pub fn code(&self) -> &str {
        // Every constructor checks that all five bytes are ASCII.
        std::str::from_utf8(&self.0).expect("a SqlState is ASCII")
    }

    /// The code's five bytes.
    pub const fn as_bytes(&self) -> &[u8; 5] {
        &self.0
    }

    /// The class: the first two characters of the code, such as `"23"`.
    pub fn class(&self) -> &str {
        &self.code()[..2]
    }

    /// PostgreSQL's condition name for the code (as used in PL/pgSQL), such as
    /// `"unique_violation"`, or `None` for a code this table does not know.
    pub fn condition_name(&self) -> Option<&'static str> {
        condition_name(self.0)
    }

    /// Whether the code reports an error: false for classes `00` (success), `01` (warning)
    /// and `02` (no data).
    pub fn is_error(&self) -> bool {
        !matches!(self.0, [b'0', b'0' | b'1' | b'2', ..])
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
"""

RUST_TESTS = """
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_look_up() {
        let state = SqlState::parse("23505").unwrap();
        assert_eq!(state, UNIQUE_VIOLATION);
        assert_eq!(state.code(), "23505");
        assert_eq!(state.class(), "23");
        assert_eq!(state.condition_name(), Some("unique_violation"));
        assert_eq!(state.to_string(), "23505");
        assert!(state.is_error());
        assert_eq!(SqlState::parse("xx000"), Some(INTERNAL_ERROR));
        assert_eq!(INTERNAL_ERROR.condition_name(), Some("internal_error"));
        assert_eq!(SqlState::UNIQUE_VIOLATION.code(), "23505");
        assert_eq!(SqlState::UNDEFINED_CURSOR, SqlState::INVALID_CURSOR_NAME);
    }

    #[test]
    fn parse_rejects_malformed_codes() {
        for bad in ["", "2350", "235050", "2350 ", "23-05", "235\\u{e9}"] {
            assert_eq!(SqlState::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unknown_codes_have_no_condition_name() {
        let state = SqlState::parse("22ZZZ").unwrap();
        assert_eq!(state.condition_name(), None);
        assert_eq!(state.class(), "22");
        assert!(state.is_error());
    }

    #[test]
    fn warnings_and_success_are_not_errors() {
        assert!(!SUCCESSFUL_COMPLETION.is_error());
        assert!(!WARNING.is_error());
        assert!(!WARNING_STRING_DATA_RIGHT_TRUNCATION.is_error());
        assert!(!NO_DATA.is_error());
        assert!(SQL_STATEMENT_NOT_YET_COMPLETE.is_error());
        assert!(STRING_DATA_RIGHT_TRUNCATION.is_error());
    }

    #[test]
    fn shared_condition_names_and_aliases() {
        assert_eq!(WARNING_STRING_DATA_RIGHT_TRUNCATION.code(), "01004");
        assert_eq!(STRING_DATA_RIGHT_TRUNCATION.code(), "22001");
        assert_eq!(
            E_R_I_E_NULL_VALUE_NOT_ALLOWED.condition_name(),
            Some("null_value_not_allowed")
        );
        assert_eq!(UNDEFINED_CURSOR, INVALID_CURSOR_NAME);
        assert_eq!(
            UNDEFINED_CURSOR.condition_name(),
            Some("invalid_cursor_name")
        );
    }

    #[test]
    fn tokio_postgres_macro_names_are_aliases() {
        assert_eq!(SqlState::T_R_SERIALIZATION_FAILURE, SERIALIZATION_FAILURE);
        assert_eq!(SqlState::T_R_DEADLOCK_DETECTED.code(), "40P01");
        assert_eq!(SqlState::DUPLICATE_PSTATEMENT, DUPLICATE_PREPARED_STATEMENT);
        assert_eq!(
            SqlState::WARNING_PRIVILEGE_NOT_GRANTED.condition_name(),
            Some("privilege_not_granted")
        );
    }

    #[test]
    fn newer_codes_are_present() {
        assert_eq!(
            INVALID_ARGUMENT_FOR_XQUERY.condition_name(),
            Some("invalid_argument_for_xquery")
        );
        assert_eq!(TRANSACTION_TIMEOUT.code(), "25P04");
        assert_eq!(FILE_NAME_TOO_LONG.code(), "58P03");
    }

    #[test]
    fn from_bytes_upper_cases() {
        const STATE: SqlState = SqlState::from_bytes(*b"42p01");
        assert_eq!(STATE, UNDEFINED_TABLE);
        assert_eq!(STATE.as_bytes(), b"42P01");
    }

    #[test]
    #[should_panic(expected = "five ASCII letters or digits")]
    fn from_bytes_rejects_other_bytes() {
        let _ = SqlState::from_bytes(*b"42-01");
    }
}
"""


def render_rust(sections: list[Section]) -> str:
    entries = [e for s in sections for e in s.entries]
    names = rust_const_names(entries)
    named = {e.code: e for e in entries if e.condition is not None}

    out = [RUST_HEADER]
    for section in sections:
        out.append(f"\n// Class {section.class_code} - {section.title}\n")
        for entry in section.entries:
            if entry.condition is not None:
                doc = f"`{entry.code}`: `{entry.condition}`."
            else:
                doc = f"`{entry.code}`: alias of [`{names[named[entry.code]]}`]."
            out.append(f"\n/// {doc}\n")
            out.append(f'pub const {names[entry]}: SqlState = SqlState(*b"{entry.code}");\n')

    # The same constants associated with the type, as tokio-postgres spells them
    # (`SqlState::UNIQUE_VIOLATION`): code written against it compiles against ours.
    out.append("\n/// Every code as an associated constant too, as tokio-postgres spells them\n")
    out.append("/// (`SqlState::UNIQUE_VIOLATION`): each is the module's constant of that name.\n")
    out.append("impl SqlState {\n")
    for entry in entries:
        out.append(f"    /// [`{names[entry]}`].\n")
        line = f"    pub const {names[entry]}: SqlState = {names[entry]};"
        if len(line) > 100:  # rustfmt's width: the value goes on a line of its own
            line = f"    pub const {names[entry]}: SqlState =\n        {names[entry]};"
        out.append(line + "\n")
    # tokio-postgres names its constants after PostgreSQL's C macros; where a macro name
    # differs from ours (`T_R_SERIALIZATION_FAILURE`), it is an alias here.
    taken = set(names.values())
    for entry in entries:
        macro_name = entry.macro.removeprefix("ERRCODE_")
        if macro_name in taken:
            continue
        taken.add(macro_name)
        out.append(f"    /// tokio-postgres's name for [`{names[entry]}`].\n")
        line = f"    pub const {macro_name}: SqlState = {names[entry]};"
        if len(line) > 100:
            line = f"    pub const {macro_name}: SqlState =\n        {names[entry]};"
        out.append(line + "\n")
    out.append("}\n")

    out.append("\n/// PostgreSQL's condition name for `code`.\n")
    out.append("fn condition_name(code: [u8; 5]) -> Option<&'static str> {\n")
    out.append("    let name = match &code {\n")
    for code in sorted(named):
        out.append(f'        b"{code}" => "{named[code].condition}",\n')
    out.append("        _ => return None,\n    };\n    Some(name)\n}\n")
    out.append(RUST_TESTS)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Python


def python_class_name(entry: Entry) -> str:
    """The exception class name of a named entry (rule in the module docstring)."""
    assert entry.condition is not None
    override = CLASS_NAME_OVERRIDES.get(entry.code)
    if override is not None:
        return override
    words = [UPPER_WORDS.get(w, w.capitalize()) for w in entry.condition.split("_")]
    if entry.kind == "E":
        if words[-1] in ("Exception", "Failure"):
            words[-1] = "Error"
        elif words[-1] != "Error":
            words.append("Error")
    name = "".join(words)
    if hasattr(builtins, name):
        name = "Postgres" + name
    return name


def base_exports(path: Path) -> list[str]:
    """The names in ``_base.py``'s ``__all__`` (read without importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            return list(value)
    raise SystemExit(f"{path}: no __all__")


PY_HEADER = '''\
# Generated by tools/gen_sqlstate.py from tools/errcodes.txt and tools/errcodes-extra.txt;
# do not edit.
"""Exceptions: one class per SQLSTATE, with the names and bases of asyncpg's.

Each SQLSTATE class has a ``sqlstate`` class attribute; its parent is the class of the first
two characters of the code (``UniqueViolationError`` derives from
``IntegrityConstraintViolationError``), and class-level classes derive from
:class:`PostgresError` (warnings from ``PostgresWarning``).
"""

from . import _base
'''


def render_python(sections: list[Section], base_names: list[str]) -> str:
    classes: list[tuple[str, str, str | None, str]] = []  # name, bases, sqlstate, docstring
    by_code: dict[str, str] = {}
    for section in sections:
        entries = [e for e in section.entries if e.condition is not None and e.kind != "S"]
        entries.sort(key=lambda e: not e.is_class_level)  # stable: class level first
        class_level = f"{section.class_code}000"
        for entry in entries:
            name = python_class_name(entry)
            is_warning = entry.kind == "W"
            if entry.code == WARNING_ROOT:
                bases = "_base.PostgresLogMessage, Warning"
            elif not entry.is_class_level and class_level in by_code:
                bases = by_code[class_level]
            elif is_warning:
                bases = by_code[WARNING_ROOT]
            else:
                bases = "_base.PostgresError"
            doc = f"SQLSTATE {entry.code}: ``{entry.condition}``."
            classes.append((name, bases, entry.code, doc))
            by_code[entry.code] = name
            for extra_name, extra_doc in EXTRA_CLASSES.get(entry.code, []):
                classes.append((extra_name, name, None, extra_doc))

    names = [c[0] for c in classes]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SystemExit(f"duplicate class names: {dupes}")
    clashes = set(names) & set(base_names)
    if clashes:
        raise SystemExit(f"classes clash with _base exports: {sorted(clashes)}")

    out = [PY_HEADER]
    out.append("from ._base import (\n")
    for name in sorted(base_names):
        out.append(f"    {name},\n")
    out.append(")\n")
    # Not in __all__ (asyncpg has no such names), so re-exported with a redundant alias.
    for name in ("error_from_fields", "message_from_fields"):
        out.append(f"from ._base import {name} as {name}\n")
    for name, bases, code, doc in classes:
        out.append(f'\n\nclass {name}({bases}):\n    """{doc}"""\n')
        if code is not None:
            out.append(f'\n    sqlstate = "{code}"\n')
    out.append("\n\n__all__ = (\n")
    for name in sorted([*names, *base_names]):
        out.append(f'    "{name}",\n')
    out.append(")\n")
    return "".join(out)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report out-of-date files instead of writing them"
    )
    args = parser.parse_args(argv)

    sections = merge(parse_errcodes(ERRCODES), parse_errcodes(ERRCODES_EXTRA))
    outputs = {
        RUST_OUT: render_rust(sections),
        PY_OUT: render_python(sections, base_exports(PY_BASE)),
    }

    stale = []
    for path, text in outputs.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "out of date" if args.check else "written"
        print(f"{path.relative_to(ROOT)}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
