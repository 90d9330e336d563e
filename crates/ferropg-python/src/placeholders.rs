//! PEP 249's `pyformat` placeholders numbered for PostgreSQL, by the core's rule
//! (`ferropg_core::placeholders`), for `ferropg.dbapi`.

use ferropg_core::placeholders::{self, Parameters};
use pyo3::prelude::*;

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
    m.add_function(wrap_pyfunction!(has_numbered_parameters, m)?)?;
    m.add_function(wrap_pyfunction!(is_script, m)?)?;
    Ok(())
}
