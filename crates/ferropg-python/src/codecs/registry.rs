//! A connection's knowledge of types beyond the built-in ones: what introspection found
//! (composites, enums, domains, arrays, ranges) and the codecs the user set. It picks
//! the codec of each parameter and column when a statement is prepared.

use std::collections::HashMap;
use std::sync::Arc;

use ferropg_core::types::{array as framing, oid as oids};
use pyo3::prelude::*;

use super::dynamic::{Composite, DynDecoder, DynEncoder, WireTuple};
use super::{Decoder, Encoder};
use crate::record::RecordDesc;

/// OIDs below this are assigned by initdb: the built-in catalog types.
const FIRST_NORMAL_OID: u32 = 16384;

/// How deep composites, arrays and domains may nest before we give up (text instead).
const MAX_DEPTH: usize = 32;

/// The pg_type name of a built-in type (from the generated `ferropg._builtin_types`).
pub fn builtin_type_name(py: Python<'_>, oid: u32) -> Option<String> {
    let types = py
        .import("ferropg._builtin_types")
        .ok()?
        .getattr("BUILTIN_TYPES")
        .ok()?;
    let entry = types.get_item(oid).ok()?;
    entry.get_item(0).ok()?.extract().ok()
}

/// The kind of a type, as introspection reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A composite: attribute names and type OIDs, in order.
    Composite { names: Vec<String>, oids: Vec<u32> },
    /// An enum: its values travel as their labels.
    Enum,
    /// A domain over `base`.
    Domain { base: u32 },
    /// An array of `elem`.
    Array { elem: u32 },
    /// A range over `subtype`.
    Range { subtype: u32 },
    /// A multirange of the range type `range`.
    Multirange { range: u32 },
    /// Any other type: its values travel as text.
    Scalar,
}

/// One introspected type.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub shape: Shape,
}

/// The wire format of a user codec (`set_type_codec(format=...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The encoder returns `str`, the decoder takes `str`.
    Text,
    /// The encoder returns bytes, the decoder takes bytes.
    Binary,
    /// Composites only: the encoder returns a sequence of attribute values, the decoder
    /// takes a tuple of them.
    Tuple,
}

/// A codec the user set on one type.
#[derive(Debug)]
pub struct CustomCodec {
    /// The wire format its functions speak.
    pub format: Format,
    /// Python value → wire form.
    pub encoder: Py<PyAny>,
    /// Wire form → Python value.
    pub decoder: Py<PyAny>,
}

/// A built-in codec put on another type (`set_builtin_type_codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    /// Decode and encode as the built-in type with this OID.
    Builtin(u32),
    /// The same, declared for the text format only (`format='text'`): it then cannot
    /// be an attribute of a composite, which travels in binary.
    BuiltinText(u32),
    /// contrib's `hstore` (binary), as a dict of str to str or None.
    Hstore,
}

/// Types and user codecs of one connection.
#[derive(Default)]
pub struct Registry {
    types: HashMap<u32, TypeInfo>,
    custom: HashMap<u32, Arc<CustomCodec>>,
    aliases: HashMap<u32, Alias>,
}

/// The codecs picked for one statement, and the types still to introspect.
pub struct Resolution {
    /// Per parameter.
    pub encoders: Vec<Encoder>,
    /// Per column; `None` = text, returned as `str`.
    pub decoders: Vec<Option<Decoder>>,
    /// Types nothing is known of yet: introspect them, then resolve again.
    pub missing: Vec<u32>,
}

impl Registry {
    /// Records introspected types.
    pub fn add_types(&mut self, types: impl IntoIterator<Item = (u32, TypeInfo)>) {
        self.types.extend(types);
    }

    /// Forgets every introspected type (the schema may have changed); user codecs stay.
    pub fn clear_types(&mut self) {
        self.types.clear();
    }

    /// What is known of `oid`, if it was introspected.
    pub fn type_info(&self, oid: u32) -> Option<&TypeInfo> {
        self.types.get(&oid)
    }

    /// A type's name for messages: introspected, else built-in, else its OID.
    pub fn type_name(&self, py: Python<'_>, oid: u32) -> String {
        if let Some(t) = self.types.get(&oid) {
            return t.name.clone();
        }
        builtin_type_name(py, oid).unwrap_or_else(|| oid.to_string())
    }

    /// Sets a user codec on `oid`, replacing any codec set before.
    pub fn set_custom(&mut self, oid: u32, codec: CustomCodec) {
        self.aliases.remove(&oid);
        self.custom.insert(oid, Arc::new(codec));
    }

    /// Puts a built-in codec on `oid`.
    pub fn set_alias(&mut self, oid: u32, alias: Alias) {
        self.custom.remove(&oid);
        self.aliases.insert(oid, alias);
    }

    /// Removes what the user set on `oid`.
    pub fn reset(&mut self, oid: u32) {
        self.custom.remove(&oid);
        self.aliases.remove(&oid);
    }

    /// The user codec on `oid`, if any.
    pub fn custom(&self, oid: u32) -> Option<&Arc<CustomCodec>> {
        self.custom.get(&oid)
    }

    /// Picks the codecs of a statement's parameters and columns.
    pub fn resolve(
        &self,
        py: Python<'_>,
        params: &[u32],
        columns: &[u32],
        ignore_custom: bool,
    ) -> PyResult<Resolution> {
        let mut r = Resolver {
            reg: self,
            py,
            ignore_custom,
            missing: Vec::new(),
        };
        let encoders = params
            .iter()
            .map(|&oid| r.encoder(oid, 0))
            .collect::<PyResult<Vec<_>>>()?;
        let decoders = columns
            .iter()
            .map(|&oid| r.decoder(oid, 0))
            .collect::<PyResult<Vec<_>>>()?;
        let mut missing = r.missing;
        missing.sort_unstable();
        missing.dedup();
        Ok(Resolution {
            encoders,
            decoders,
            missing,
        })
    }
}

/// How a type without a built-in codec is exchanged, in either direction.
enum Class {
    /// An array of the element type.
    Array(u32),
    /// A range of the subtype.
    Range(u32),
    /// A multirange, of ranges of the subtype.
    Multirange(u32),
    /// A named composite.
    Composite,
    /// An enum (its labels).
    Enum,
    /// A domain over the base type.
    Domain(u32),
    /// Text: a type nothing more is known of (or not yet: see `unknown`).
    Text,
}

struct Resolver<'a, 'py> {
    reg: &'a Registry,
    py: Python<'py>,
    ignore_custom: bool,
    missing: Vec<u32>,
}

impl Resolver<'_, '_> {
    fn custom(&self, oid: u32) -> Option<&Arc<CustomCodec>> {
        if self.ignore_custom {
            None
        } else {
            self.reg.custom.get(&oid)
        }
    }

    fn alias(&self, oid: u32) -> Option<Alias> {
        if self.ignore_custom {
            None
        } else {
            self.reg.aliases.get(&oid).copied()
        }
    }

    /// True when `oid` (or what it is built of) has a codec of the user's.
    fn customised(&self, oid: u32, depth: usize) -> bool {
        if self.ignore_custom || depth > MAX_DEPTH {
            return false;
        }
        if self.reg.custom.contains_key(&oid) || self.reg.aliases.contains_key(&oid) {
            return true;
        }
        match self.reg.types.get(&oid).map(|t| &t.shape) {
            Some(Shape::Domain { base }) => self.customised(*base, depth + 1),
            Some(Shape::Array { elem }) => self.customised(*elem, depth + 1),
            Some(Shape::Composite { oids, .. }) => {
                oids.iter().any(|&o| self.customised(o, depth + 1))
            }
            _ => framing::element_type(oid).is_some_and(|e| self.customised(e, depth + 1)),
        }
    }

    /// True for a type the user declared exchangeable in text only.
    fn text_only(&self, oid: u32) -> bool {
        matches!(self.alias(oid), Some(Alias::BuiltinText(_)))
            || self
                .custom(oid)
                .is_some_and(|c| c.format == Format::Text && !self.text_like(oid))
    }

    /// True when the type's binary form is its text (text, varchar, json, enums...):
    /// a text codec on it can then take part in binary arrays and composites.
    fn text_like(&self, oid: u32) -> bool {
        Decoder::binary_for(oid) == Some(Decoder::Text)
            || matches!(
                self.reg.types.get(&oid).map(|t| &t.shape),
                Some(Shape::Enum)
            )
    }

    fn unknown(&mut self, oid: u32) {
        if oid >= FIRST_NORMAL_OID && !self.reg.types.contains_key(&oid) {
            self.missing.push(oid);
        }
    }

    fn decoder(&mut self, oid: u32, depth: usize) -> PyResult<Option<Decoder>> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        if let Some(codec) = self.custom(oid) {
            let codec = codec.clone();
            let inner = match codec.format {
                Format::Tuple => match WireTuple::for_type(oid) {
                    Some(kind) => Some(Decoder::dynamic(DynDecoder::WireTuple(kind))),
                    None => match self.composite_decoder(oid, depth, true)? {
                        Some(c) => Some(c),
                        None => return Ok(None),
                    },
                },
                _ => None,
            };
            let text_like = self.text_like(oid);
            return Ok(Some(Decoder::dynamic(DynDecoder::Custom {
                codec,
                inner,
                text_like,
            })));
        }
        match self.alias(oid) {
            Some(Alias::Builtin(b) | Alias::BuiltinText(b)) => return self.decoder(b, depth + 1),
            Some(Alias::Hstore) => return Ok(Some(Decoder::dynamic(DynDecoder::Hstore))),
            None => {}
        }
        if !self.customised(oid, depth) {
            if let Some(d) = Decoder::binary_for(oid) {
                return Ok(Some(d));
            }
        }
        match self.classify(oid) {
            Class::Array(elem) => self.array_decoder(elem, depth),
            Class::Range(sub) => self.range_decoder(oid, sub, depth, false),
            Class::Multirange(sub) => self.range_decoder(oid, sub, depth, true),
            Class::Composite => self.composite_decoder(oid, depth, false),
            Class::Enum => Ok(Some(Decoder::Text)),
            Class::Domain(base) => self.decoder(base, depth + 1),
            Class::Text => Ok(None),
        }
    }

    fn classify(&mut self, oid: u32) -> Class {
        if let Some(elem) = framing::element_type(oid) {
            return Class::Array(elem);
        }
        if let Some(sub) = self.range_subtype(oid) {
            return Class::Range(sub);
        }
        if let Some(sub) = self.multirange_subtype(oid) {
            return Class::Multirange(sub);
        }
        match self.reg.types.get(&oid).map(|t| &t.shape) {
            None => {
                self.unknown(oid);
                Class::Text
            }
            Some(Shape::Composite { .. }) => Class::Composite,
            Some(Shape::Enum) => Class::Enum,
            Some(Shape::Domain { base }) => Class::Domain(*base),
            Some(Shape::Array { elem }) => Class::Array(*elem),
            Some(Shape::Range { .. } | Shape::Multirange { .. } | Shape::Scalar) => Class::Text,
        }
    }

    /// The subtype of a range type, built-in or introspected.
    fn range_subtype(&self, oid: u32) -> Option<u32> {
        oids::range_subtype(oid).or_else(|| match self.reg.types.get(&oid)?.shape {
            Shape::Range { subtype } => Some(subtype),
            _ => None,
        })
    }

    /// The subtype of a multirange type's range type.
    fn multirange_subtype(&self, oid: u32) -> Option<u32> {
        let range =
            oids::multirange_range(oid).or_else(|| match self.reg.types.get(&oid)?.shape {
                Shape::Multirange { range } => Some(range),
                _ => None,
            })?;
        self.range_subtype(range)
    }

    /// What to call a type in messages: `"schema"."name"` when known.
    fn describe(&self, oid: u32) -> String {
        match self.reg.types.get(&oid) {
            Some(t) => format!("\"{}\".\"{}\"", t.schema, t.name),
            None => format!("OID {oid}"),
        }
    }

    fn range_decoder(
        &mut self,
        oid: u32,
        sub: u32,
        depth: usize,
        multi: bool,
    ) -> PyResult<Option<Decoder>> {
        Ok(Some(match self.decoder(sub, depth + 1)? {
            Some(d) if d.format() == 1 => Decoder::dynamic(if multi {
                DynDecoder::Multirange(d)
            } else {
                DynDecoder::Range(d)
            }),
            _ => Decoder::dynamic(DynDecoder::Refused(format!(
                "cannot decode type {}: text encoding of range types is not supported",
                self.describe(oid)
            ))),
        }))
    }

    fn array_decoder(&mut self, elem: u32, depth: usize) -> PyResult<Option<Decoder>> {
        let delim = if elem == oids::BOX { b';' } else { b',' };
        Ok(Some(match self.decoder(elem, depth + 1)? {
            Some(d) if d.format() == 1 => Decoder::dynamic(DynDecoder::Array {
                elem_oid: elem,
                elem: d,
            }),
            // Elements with a text codec only: the array comes in text form too.
            other => Decoder::dynamic(DynDecoder::TextArray { delim, elem: other }),
        }))
    }

    /// The composite type `oid` as the connection knows it, if it is one.
    fn composite(&mut self, oid: u32, as_tuple: bool) -> PyResult<Option<Composite>> {
        let Some(info) = self.reg.types.get(&oid) else {
            self.unknown(oid);
            return Ok(None);
        };
        let Shape::Composite { names, oids } = &info.shape else {
            return Ok(None);
        };
        Ok(Some(Composite {
            schema: info.schema.clone(),
            name: info.name.clone(),
            oids: oids.clone(),
            names: names.clone(),
            desc: RecordDesc::from_names(self.py, names)?,
            as_tuple,
        }))
    }

    fn composite_decoder(
        &mut self,
        oid: u32,
        depth: usize,
        as_tuple: bool,
    ) -> PyResult<Option<Decoder>> {
        let Some(composite) = self.composite(oid, as_tuple)? else {
            return Ok(None);
        };
        let oids = composite.oids.clone();
        let mut fields = Vec::with_capacity(oids.len());
        let mut binary = true;
        for &field in &oids {
            match self.decoder(field, depth + 1)? {
                Some(d) if d.format() == 1 && !self.text_only(field) => fields.push(d),
                _ => binary = false,
            }
        }
        if !binary {
            // A field without a binary decoder: the value would have to come as text,
            // which asyncpg does not parse either.
            return Ok(Some(Decoder::dynamic(DynDecoder::Refused(format!(
                "cannot decode type {}: text encoding of composite types is not supported",
                self.describe(oid)
            )))));
        }
        Ok(Some(Decoder::dynamic(DynDecoder::Composite(
            composite, fields,
        ))))
    }

    fn encoder(&mut self, oid: u32, depth: usize) -> PyResult<Encoder> {
        if depth > MAX_DEPTH {
            return Ok(Encoder::TextFallback);
        }
        if let Some(codec) = self.custom(oid) {
            let codec = codec.clone();
            let inner = match codec.format {
                Format::Tuple => match WireTuple::for_type(oid) {
                    Some(kind) => Some(Encoder::dynamic(DynEncoder::WireTuple(kind))),
                    None => match self.composite_encoder(oid, depth)? {
                        Some(e) => Some(e),
                        None => return Ok(Encoder::TextFallback),
                    },
                },
                _ => None,
            };
            let text_like = self.text_like(oid);
            return Ok(Encoder::dynamic(DynEncoder::Custom {
                codec,
                inner,
                text_like,
            }));
        }
        match self.alias(oid) {
            Some(Alias::Builtin(b) | Alias::BuiltinText(b)) => return self.encoder(b, depth + 1),
            Some(Alias::Hstore) => return Ok(Encoder::dynamic(DynEncoder::Hstore)),
            None => {}
        }
        if oid == oids::RECORD {
            return Ok(Encoder::dynamic(DynEncoder::Refused(
                "input of anonymous composite types is not supported".into(),
            )));
        }
        let builtin = Encoder::for_type(oid);
        if builtin != Encoder::TextFallback && !self.customised(oid, depth) {
            return Ok(builtin);
        }
        match self.classify(oid) {
            Class::Array(elem) => self.array_encoder(elem, depth),
            Class::Range(sub) => self.range_encoder(oid, sub, depth, false),
            Class::Multirange(sub) => self.range_encoder(oid, sub, depth, true),
            Class::Composite => Ok(self
                .composite_encoder(oid, depth)?
                .unwrap_or(Encoder::TextFallback)),
            Class::Enum => Ok(Encoder::Text),
            Class::Domain(base) => self.encoder(base, depth + 1),
            Class::Text => Ok(Encoder::TextFallback),
        }
    }

    fn range_encoder(
        &mut self,
        oid: u32,
        sub: u32,
        depth: usize,
        multi: bool,
    ) -> PyResult<Encoder> {
        let e = self.encoder(sub, depth + 1)?;
        Ok(Encoder::dynamic(if e.format() != 1 {
            DynEncoder::Refused(format!(
                "cannot encode type {}: text encoding of range types is not supported",
                self.describe(oid)
            ))
        } else if multi {
            DynEncoder::Multirange(e)
        } else {
            DynEncoder::Range(e)
        }))
    }

    fn array_encoder(&mut self, elem: u32, depth: usize) -> PyResult<Encoder> {
        let delim = if elem == oids::BOX { b';' } else { b',' };
        let e = self.encoder(elem, depth + 1)?;
        Ok(if e.format() == 1 {
            Encoder::dynamic(DynEncoder::Array {
                elem_oid: elem,
                elem: e,
            })
        } else {
            Encoder::dynamic(DynEncoder::TextArray { delim, elem: e })
        })
    }

    fn composite_encoder(&mut self, oid: u32, depth: usize) -> PyResult<Option<Encoder>> {
        let Some(composite) = self.composite(oid, false)? else {
            return Ok(None);
        };
        let oids = composite.oids.clone();
        let mut fields = Vec::with_capacity(oids.len());
        for &field in &oids {
            let e = self.encoder(field, depth + 1)?;
            if e.format() != 1 || self.text_only(field) {
                return Ok(Some(Encoder::dynamic(DynEncoder::Refused(format!(
                    "cannot encode type {}: text encoding of composite types is not supported",
                    self.describe(oid)
                )))));
            }
            fields.push(e);
        }
        Ok(Some(Encoder::dynamic(DynEncoder::Composite(
            composite, fields,
        ))))
    }
}
