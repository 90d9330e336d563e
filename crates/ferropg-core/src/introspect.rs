//! The catalog query that describes types, shared by both front ends.
//!
//! One query resolves a batch of type OIDs together with everything they are built of
//! (array elements, domain bases, composite attributes, range subtypes, multirange
//! ranges), deepest first, so a statement needs at most one round trip of
//! introspection however deeply its types nest.

/// The query's text for a server of `server_version_num` (multiranges exist from
/// PostgreSQL 14). `$1` is an `oid[]` of the types to describe; each row is one type,
/// the given ones and all they depend on, dependencies first:
///
/// | # | column | |
/// |---|---|---|
/// | 0 | `oid` | |
/// | 1 | `ns` | schema |
/// | 2 | `name` | |
/// | 3 | `kind` | `pg_type.typtype` (`"char"`) |
/// | 4 | `elemtype` | element type of an array, else NULL |
/// | 5 | `basetype` | base type of a domain, else NULL |
/// | 6 | `range_subtype` | subtype of a range, else NULL |
/// | 7 | `multirange_range` | range type of a multirange, else NULL |
/// | 8 | `attrnames` | a composite's attribute names, in order |
/// | 9 | `attrtypoids` | their type OIDs |
/// | 10 | `enumlabels` | an enum's labels, in order |
/// | 11 | `depth` | how far from the types asked for |
pub fn types_query(server_version_num: u32) -> String {
    let (dep, col, join) = if server_version_num >= 140000 {
        (
            "UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r \
             WHERE r.rngmultitypid = deps.oid",
            "mr.rngtypid",
            "LEFT JOIN pg_catalog.pg_range mr ON mr.rngmultitypid = t.oid",
        )
    } else {
        ("", "NULL::oid", "")
    };
    TEMPLATE
        .replace("{multirange_dep}", dep)
        .replace("{multirange_col}", col)
        .replace("{multirange_join}", join)
}

const TEMPLATE: &str = "\
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
    CASE WHEN t.typtype = 'e' THEN (
        SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid
    ) END AS enumlabels,
    (SELECT max(deps.depth) FROM deps WHERE deps.oid = t.oid) AS depth
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
{multirange_join}
WHERE t.oid IN (SELECT oid FROM deps)
ORDER BY depth DESC
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiranges_only_from_14() {
        assert!(types_query(150000).contains("rngmultitypid"));
        assert!(!types_query(130000).contains("rngmultitypid"));
        assert!(!types_query(130000).contains('{'));
    }
}
