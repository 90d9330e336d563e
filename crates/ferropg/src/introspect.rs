//! Types beyond the built-in ones (enums, composites, domains, arrays and ranges of
//! them), as the server's catalog describes them, so that `postgres-types`' derived
//! `FromSql`/`ToSql` and [`Value`](crate::types::Value) can tell what a column is.

use std::collections::HashMap;
use std::sync::Arc;

use postgres_types::{Field, Kind, Type};

use crate::statement::Column;
use crate::{Error, Row};

/// What one connection has learned of non-built-in types.
#[derive(Default)]
pub(crate) struct TypeCache {
    types: HashMap<u32, Type>,
}

/// The stand-in for a type nothing is known of yet: named after its OID.
pub(crate) fn placeholder(oid: u32) -> Type {
    Type::new(oid.to_string(), oid, Kind::Simple, String::new())
}

/// Whether `ty` is a [`placeholder`]: every real type has a schema.
pub(crate) fn is_placeholder(ty: &Type) -> bool {
    ty.schema().is_empty()
}

impl TypeCache {
    /// The type of `oid`: built in, learned, or a placeholder.
    pub(crate) fn get(&self, oid: u32) -> Type {
        Type::from_oid(oid)
            .or_else(|| self.types.get(&oid).cloned())
            .unwrap_or_else(|| placeholder(oid))
    }

    /// Of `oids`, those neither built in nor learned, without repeats.
    pub(crate) fn unknown(&self, oids: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut out: Vec<u32> = oids
            .into_iter()
            .filter(|oid| Type::from_oid(*oid).is_none() && !self.types.contains_key(oid))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// `columns` with the types learned since they were read, if any changed.
    pub(crate) fn retype(&self, columns: &Arc<[Column]>) -> Option<Arc<[Column]>> {
        let stale = columns
            .iter()
            .any(|c| is_placeholder(c.type_()) && !is_placeholder(&self.get(c.type_().oid())));
        stale.then(|| {
            columns
                .iter()
                .map(|c| c.with_type(self.get(c.type_().oid())))
                .collect()
        })
    }

    /// Forgets what was learned (the schema changed).
    pub(crate) fn clear(&mut self) {
        self.types.clear();
    }

    /// Learns the types of the rows of `ferropg_core::introspect::types_query`.
    pub(crate) fn learn(&mut self, rows: &[Row]) -> Result<(), Error> {
        let mut pending: Vec<Described> =
            rows.iter().map(Described::read).collect::<Result<_, _>>()?;
        // Dependencies come first, but types asked for together may refer to each other
        // in any order: build what can be built until nothing is left.
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for d in pending {
                if d.deps()
                    .iter()
                    .all(|o| Type::from_oid(*o).is_some() || self.types.contains_key(o))
                {
                    let ty = d.build(self);
                    self.types.insert(d.oid, ty);
                } else {
                    rest.push(d);
                }
            }
            if rest.len() == before {
                // Only an inconsistent catalog answer gets here: build with stand-ins.
                for d in rest {
                    let ty = d.build(self);
                    self.types.insert(d.oid, ty);
                }
                break;
            }
            pending = rest;
        }
        Ok(())
    }
}

/// One row of the introspection query.
struct Described {
    oid: u32,
    schema: String,
    name: String,
    kind: u8,
    elem: Option<u32>,
    base: Option<u32>,
    subtype: Option<u32>,
    range: Option<u32>,
    attr_names: Vec<String>,
    attr_types: Vec<u32>,
    labels: Vec<String>,
}

impl Described {
    fn read(row: &Row) -> Result<Described, Error> {
        Ok(Described {
            oid: row.try_get(0)?,
            schema: row.try_get(1)?,
            name: row.try_get(2)?,
            kind: row.try_get::<_, i8>(3)? as u8,
            elem: row.try_get(4)?,
            base: row.try_get(5)?,
            subtype: row.try_get(6)?,
            range: row.try_get(7)?,
            attr_names: row
                .try_get::<_, Option<Vec<String>>>(8)?
                .unwrap_or_default(),
            attr_types: row.try_get::<_, Option<Vec<u32>>>(9)?.unwrap_or_default(),
            labels: row
                .try_get::<_, Option<Vec<String>>>(10)?
                .unwrap_or_default(),
        })
    }

    fn deps(&self) -> Vec<u32> {
        let mut deps: Vec<u32> = [self.elem, self.base, self.subtype, self.range]
            .into_iter()
            .flatten()
            .collect();
        if self.kind == b'c' {
            deps.extend(&self.attr_types);
        }
        deps
    }

    fn build(&self, cache: &TypeCache) -> Type {
        let kind = match (self.kind, self.elem, self.base, self.subtype, self.range) {
            (b'e', ..) => Kind::Enum(self.labels.clone()),
            (b'c', ..) => Kind::Composite(
                self.attr_names
                    .iter()
                    .zip(&self.attr_types)
                    .map(|(n, t)| Field::new(n.clone(), cache.get(*t)))
                    .collect(),
            ),
            (b'd', _, Some(base), ..) => Kind::Domain(cache.get(base)),
            (b'r', _, _, Some(sub), _) => Kind::Range(cache.get(sub)),
            // postgres-types' multiranges name their bounds' type, not the range type.
            (b'm', .., Some(range)) => match cache.get(range).kind() {
                Kind::Range(sub) => Kind::Multirange(sub.clone()),
                _ => Kind::Multirange(cache.get(range)),
            },
            (b'p', ..) => Kind::Pseudo,
            (_, Some(elem), ..) => Kind::Array(cache.get(elem)),
            _ => Kind::Simple,
        };
        Type::new(self.name.clone(), self.oid, kind, self.schema.clone())
    }
}
