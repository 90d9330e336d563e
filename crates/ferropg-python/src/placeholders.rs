//! PEP 249's `pyformat` placeholders numbered for PostgreSQL, by the core's rule
//! (`ferropg_core::placeholders`), for `ferropg.dbapi`.

use ferropg_core::placeholders::{self, Parameters, PlaceholderError, Slot};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, ClientError};

/// `(sql, names)`: `sql` with `$n` for each `%s`/`%(name)s` and `%` for each `%%`;
/// `names` is the number of positional placeholders (an int) or the list of names,
/// `$1` first. Raises InterfaceError for a malformed placeholder or a mix of the two
/// kinds. `standard_conforming_strings` is the session's setting.
#[pyfunction]
fn convert_placeholders<'py>(
    py: Python<'py>,
    sql: &str,
    standard_conforming_strings: bool,
) -> PyResult<(String, Bound<'py, PyAny>)> {
    let converted = placeholders::convert(sql, standard_conforming_strings)
        .map_err(|e| errors::client_error(py, ClientError::Interface, e.0))?;
    let names = match converted.parameters {
        Parameters::None => 0usize.into_pyobject(py)?.into_any(),
        Parameters::Positional(n) => n.into_pyobject(py)?.into_any(),
        Parameters::Named(names) => names.into_pyobject(py)?.into_any(),
        Parameters::Mixed => {
            return Err(errors::client_error(
                py,
                ClientError::Interface,
                "a statement cannot mix %s and %(name)s placeholders",
            ))
        }
    };
    Ok((converted.sql, names))
}

/// `sql` with each `%s` replaced by the next of `literals` (a list), or each
/// `%(name)s` by `literals[name]` (a dict), and `%%` by `%`: SQL text the caller
/// already rendered safely (`ClientCursor`). InterfaceError when they do not match.
#[pyfunction]
fn bind_placeholders(
    py: Python<'_>,
    sql: &str,
    standard_conforming_strings: bool,
    literals: &Bound<'_, PyAny>,
) -> PyResult<String> {
    let by_name = literals.cast::<PyDict>().ok();
    let in_order: Vec<String> = match by_name {
        Some(_) => Vec::new(),
        None => literals.extract()?,
    };
    let mut used = 0usize;
    let mut failure: Option<PyErr> = None;
    let converted = placeholders::substitute(sql, standard_conforming_strings, |slot| {
        let found = match (slot.name, by_name) {
            (Some(name), Some(d)) => match d.get_item(name) {
                Ok(Some(v)) => v.extract::<String>().map_err(|e| failure = Some(e)).ok(),
                Ok(None) => None,
                Err(e) => {
                    failure = Some(e);
                    None
                }
            },
            (None, None) => {
                used = used.max(slot.number);
                in_order.get(slot.number - 1).cloned()
            }
            _ => None,
        };
        found.ok_or_else(|| PlaceholderError(placeholder_mismatch(slot)))
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let converted = converted.map_err(|e| errors::client_error(py, ClientError::Interface, e.0))?;
    if by_name.is_none() && used != in_order.len() {
        return Err(errors::client_error(
            py,
            ClientError::Interface,
            format!(
                "the statement has {used} placeholders but {} values were given",
                in_order.len()
            ),
        ));
    }
    if matches!(converted.parameters, Parameters::Mixed) {
        return Err(errors::client_error(
            py,
            ClientError::Interface,
            "a statement cannot mix %s and %(name)s placeholders",
        ));
    }
    Ok(converted.sql)
}

fn placeholder_mismatch(slot: Slot<'_>) -> String {
    match slot.name {
        Some(name) => format!("no value given for placeholder %({name})s"),
        None => format!(
            "no value given for placeholder {} (a %s takes a sequence of values)",
            slot.number
        ),
    }
}

/// Whether `sql` holds a `$n` parameter outside quotes and comments.
#[pyfunction]
fn has_numbered_parameters(sql: &str, standard_conforming_strings: bool) -> bool {
    placeholders::has_numbered(sql, standard_conforming_strings)
}

/// Whether `sql` holds more than one statement (outside quotes and comments).
#[pyfunction]
fn is_script(sql: &str, standard_conforming_strings: bool) -> bool {
    placeholders::is_script(sql, standard_conforming_strings)
}

/// Adds this module's functions to `_native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(convert_placeholders, m)?)?;
    m.add_function(wrap_pyfunction!(bind_placeholders, m)?)?;
    m.add_function(wrap_pyfunction!(has_numbered_parameters, m)?)?;
    m.add_function(wrap_pyfunction!(is_script, m)?)?;
    Ok(())
}
