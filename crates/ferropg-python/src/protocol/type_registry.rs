//! The type-registry handle: what the Python layer asks of and tells the
//! connection's type registry (introspected types, the user's codecs).

use pyo3::prelude::*;

use crate::codecs::{Alias, CustomCodec, Format, Registry, Shape, TypeInfo};

/// Records introspected types: `(oid, schema, name, kind, elemtype, basetype,
/// range_subtype, multirange_range, attrnames, attrtypoids)` per row of `rows`,
/// `kind` being pg_type.typtype (the columns of the core's introspection query).
pub(super) fn add_types(registry: &mut Registry, rows: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut found = Vec::new();
    for row in rows.try_iter()? {
        let row = row?;
        let get = |i: usize| row.get_item(i);
        let oid: u32 = get(0)?.extract()?;
        let schema: String = get(1)?.extract()?;
        let name: String = get(2)?.extract()?;
        // pg_type.typtype is a "char": bytes as asyncpg decodes it, or str.
        let kind = get(3)?;
        let kind: String = match kind.extract::<Vec<u8>>() {
            Ok(b) if !kind.is_instance_of::<pyo3::types::PyString>() => {
                String::from_utf8_lossy(&b).into_owned()
            }
            _ => kind.extract()?,
        };
        let nonzero = |i: usize| -> PyResult<Option<u32>> {
            Ok(get(i)?.extract::<Option<u32>>()?.filter(|&o| o != 0))
        };
        let shape = match kind.as_str() {
            "c" => Shape::Composite {
                names: get(8)?
                    .extract::<Option<Vec<String>>>()?
                    .unwrap_or_default(),
                oids: get(9)?.extract::<Option<Vec<u32>>>()?.unwrap_or_default(),
            },
            "e" => Shape::Enum,
            "d" => nonzero(5)?.map_or(Shape::Scalar, |base| Shape::Domain { base }),
            "r" => nonzero(6)?.map_or(Shape::Scalar, |subtype| Shape::Range { subtype }),
            "m" => nonzero(7)?.map_or(Shape::Scalar, |range| Shape::Multirange { range }),
            _ => nonzero(4)?.map_or(Shape::Scalar, |elem| Shape::Array { elem }),
        };
        found.push((
            oid,
            TypeInfo {
                schema,
                name,
                shape,
            },
        ));
    }
    registry.add_types(found);
    Ok(())
}

/// The wire format of the codec for `oid` (1 binary, 0 text), or None while the
/// type is unknown (not built in and not introspected).
pub(super) fn codec_format(
    py: Python<'_>,
    registry: &Registry,
    oid: u32,
    ignore_custom_codec: bool,
) -> PyResult<Option<i16>> {
    let r = registry.resolve(py, &[], &[oid], ignore_custom_codec)?;
    if !r.missing.is_empty() {
        return Ok(None);
    }
    Ok(Some(r.decoders[0].as_ref().map_or(0, |d| d.format())))
}

/// What introspection found of `oid`: `(schema, name, kind, element OID)`, kind
/// being asyncpg's 'scalar', 'array', 'composite', 'range' or 'multirange'.
pub(super) fn type_info(
    registry: &Registry,
    oid: u32,
) -> Option<(String, String, &'static str, Option<u32>)> {
    let t = registry.type_info(oid)?;
    let (kind, elem) = match &t.shape {
        Shape::Composite { .. } => ("composite", None),
        Shape::Array { elem } => ("array", Some(*elem)),
        Shape::Range { .. } => ("range", None),
        Shape::Multirange { .. } => ("multirange", None),
        Shape::Enum | Shape::Domain { .. } | Shape::Scalar => ("scalar", None),
    };
    Some((t.schema.clone(), t.name.clone(), kind, elem))
}

/// Puts a user codec on `oid`: `format` is "text", "binary" or "tuple".
pub(super) fn set_type_codec(
    registry: &mut Registry,
    oid: u32,
    format: &str,
    encoder: Py<PyAny>,
    decoder: Py<PyAny>,
) -> PyResult<()> {
    let format = match format {
        "text" => Format::Text,
        "binary" => Format::Binary,
        "tuple" => Format::Tuple,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "invalid format: {other:?}"
            )))
        }
    };
    registry.set_custom(
        oid,
        CustomCodec {
            format,
            encoder,
            decoder,
        },
    );
    Ok(())
}

/// Makes `oid` use a built-in codec: that of the built-in type `target` (an OID),
/// or "hstore" for contrib's hstore.
pub(super) fn set_builtin_type_codec(
    registry: &mut Registry,
    oid: u32,
    target: &Bound<'_, PyAny>,
    text_only: bool,
) -> PyResult<()> {
    let alias = if let Ok(target) = target.extract::<u32>() {
        if text_only {
            Alias::BuiltinText(target)
        } else {
            Alias::Builtin(target)
        }
    } else if target.extract::<String>()? == "hstore" {
        Alias::Hstore
    } else {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown built-in codec: {target}"
        )));
    };
    registry.set_alias(oid, alias);
    Ok(())
}
