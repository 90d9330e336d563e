"""Catalog queries that tell the driver what a type is.

One query resolves a batch of type OIDs together with everything they are built of
(array elements, domain bases, composite attributes, range subtypes), so a statement
needs at most one round trip of introspection however deeply its types nest.
"""

from __future__ import annotations

from . import _native


def types_query(server_version_num: int) -> str:
    """The introspection query for a server (shared with the Rust face): see
    ``ferropg_core::introspect`` for its columns."""
    return _native.types_query(server_version_num)


# $1: type name, $2: schema. oid, elemtype (raw typelem), kind (typtype).
TYPE_BY_NAME = """\
SELECT t.oid, t.typelem AS elemtype, t.typtype AS kind
FROM pg_catalog.pg_type AS t
JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
WHERE t.typname = $1 AND ns.nspname = $2
"""

# The kinds a user codec may be set on directly: base types, domains (refused later,
# with a better message) and enums.
SCALAR_KINDS = (b"b", b"d", b"e")


def is_scalar_type(typeinfo) -> bool:
    """A base type, domain or enum that is not an array."""
    return typeinfo["kind"] in SCALAR_KINDS and not typeinfo["elemtype"]


def is_domain_type(typeinfo) -> bool:
    """A domain."""
    return typeinfo["kind"] == b"d"


def is_composite_type(typeinfo) -> bool:
    """A composite (row) type."""
    return typeinfo["kind"] == b"c"
