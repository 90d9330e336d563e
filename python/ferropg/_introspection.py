"""Catalog queries that tell the driver what a type is.

One query resolves a batch of type OIDs together with everything they are built of
(array elements, domain bases, composite attributes, range subtypes), so a statement
needs at most one round trip of introspection however deeply its types nest.
"""

from __future__ import annotations

# $1: oid[] of the types to describe. One row per type, the given ones and every type
# they depend on: oid, ns, name, kind (typtype), elemtype (arrays only), basetype
# (domains), range_subtype, multirange_range (the range of a multirange),
# attrnames / attrtypoids (composites, in attribute order).
_TYPES_QUERY = """\
WITH RECURSIVE deps(oid, depth) AS (
    SELECT t.oid, 0 FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::oid[])
  UNION
    SELECT d.dep, deps.depth + 1
    FROM deps, LATERAL (
        SELECT t.typelem AS dep FROM pg_catalog.pg_type t
        WHERE t.oid = deps.oid AND t.typlen = -1 AND t.typelem <> 0
      UNION ALL
        SELECT t.typbasetype FROM pg_catalog.pg_type t
        WHERE t.oid = deps.oid AND t.typbasetype <> 0
      UNION ALL
        SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = deps.oid
      {multirange_dep}
      UNION ALL
        SELECT a.atttypid FROM pg_catalog.pg_type t
        JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
        WHERE t.oid = deps.oid AND t.typrelid <> 0 AND a.attnum > 0
          AND NOT a.attisdropped
    ) d
    WHERE deps.depth < 32
)
SELECT
    t.oid AS oid,
    ns.nspname AS ns,
    t.typname AS name,
    t.typtype AS kind,
    CASE WHEN t.typlen = -1 AND t.typelem <> 0 THEN t.typelem END AS elemtype,
    NULLIF(t.typbasetype, 0) AS basetype,
    r.rngsubtype AS range_subtype,
    {multirange_col} AS multirange_range,
    CASE WHEN t.typrelid <> 0 THEN (
        SELECT array_agg(a.attname::text ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    ) END AS attrnames,
    CASE WHEN t.typrelid <> 0 THEN (
        SELECT array_agg(a.atttypid ORDER BY a.attnum)
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    ) END AS attrtypoids,
    (SELECT max(deps.depth) FROM deps WHERE deps.oid = t.oid) AS depth
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
{multirange_join}
WHERE t.oid IN (SELECT oid FROM deps)
ORDER BY depth DESC
"""


def types_query(server_version_num: int) -> str:
    """The introspection query for a server (multiranges exist from PostgreSQL 14)."""
    if server_version_num >= 140000:
        return _TYPES_QUERY.format(
            multirange_dep="UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r "
            "WHERE r.rngmultitypid = deps.oid",
            multirange_col="mr.rngtypid",
            multirange_join="LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid",
        )
    return _TYPES_QUERY.format(multirange_dep="", multirange_col="NULL::oid", multirange_join="")


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
