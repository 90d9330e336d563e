"""Small SQL helpers: identifier and literal quoting, and client-side argument inlining."""

from __future__ import annotations

import re
from typing import Any

from . import _native
from .exceptions import _base

__all__ = ()

_PARAM = re.compile(r"\$(\d+)")


def _quote_ident(ident: str) -> str:
    """An SQL identifier in double quotes (the core's rule); DataError for an empty
    name or a NUL."""
    return _quoted(_native.quote_ident, ident, "identifier")


def _quote_literal(string: str) -> str:
    """An SQL string literal that reads the same whatever ``standard_conforming_strings``
    says (the core's rule: ``E'...'``); DataError for a NUL."""
    return _quoted(_native.quote_literal, string, "string")


def _quoted(quote: Any, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _base.DataError(f"expected a str for an SQL {what}, got {type(value).__name__}")
    try:
        return quote(value)
    except (ValueError, UnicodeEncodeError) as e:
        raise _base.DataError(f"invalid SQL {what} {value!r}: {e}") from None


async def _mogrify(conn: Any, query: str, args: Any) -> str:
    """``query`` with its ``$n`` parameters replaced by quoted literals of ``args``.

    COPY takes no parameters, so its queries get their arguments inlined. The server
    renders each value as text in the parameter's own type, so nothing is formatted
    client-side; the literal keeps the query's own casts.
    """
    args = list(args)
    if not args:
        return query
    stmt = await conn._get_statement(query, None, use_cache=False)
    oids = list(stmt.param_types)
    if len(oids) != len(args):
        raise _native.argument_count_error(len(oids), len(args))
    names = await conn.fetchrow(
        "SELECT " + ", ".join(f"pg_catalog.format_type({int(oid)}, NULL)" for oid in oids)
    )
    texts = await conn.fetchrow(
        "SELECT " + ", ".join(f"${i + 1}::{names[i]}::text" for i in range(len(oids))),
        *args,
    )
    literals = [None if t is None else _quote_literal(t) for t in texts]

    def replace(m: re.Match) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(literals):
            return m.group(0)
        lit = literals[n - 1]
        return "NULL" if lit is None else lit

    return _PARAM.sub(replace, query)
