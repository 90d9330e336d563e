//! Building the exceptions of `ferropg.exceptions` from Rust.

use ferropg_core::DbError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

static EXCEPTIONS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    EXCEPTIONS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("ferropg.exceptions")?.unbind())
        })
        .map(|m| m.bind(py))
}

/// An instance of the named class of `ferropg.exceptions`, built from one message.
pub fn client_error(py: Python<'_>, class: &str, message: impl Into<String>) -> PyErr {
    let message = message.into();
    match module(py)
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message.clone(),)))
    {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Whether `err` is an instance of the named class of `ferropg.exceptions`.
pub fn is_instance_of(py: Python<'_>, err: &PyErr, class: &str) -> bool {
    module(py)
        .and_then(|m| m.getattr(class))
        .is_ok_and(|c| err.value(py).is_instance(&c).unwrap_or(false))
}

/// Like [`client_error`], with asyncpg's `hint=` keyword.
pub fn client_error_with_hint(py: Python<'_>, class: &str, message: String, hint: &str) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("hint", hint)?;
        module(py)?
            .getattr(class)?
            .call((message.clone(),), Some(&kwargs))
    };
    match build() {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The server's error as the PostgresError subclass for its SQLSTATE.
pub fn server_error(py: Python<'_>, err: &DbError, query: Option<&str>) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let fields = PyDict::new(py);
        for (code, value) in err.fields() {
            fields.set_item(char::from(code).to_string(), value)?;
        }
        module(py)?
            .getattr("error_from_fields")?
            .call1((fields, query))
    };
    match build() {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A NoticeResponse as a `PostgresLogMessage`.
pub fn log_message<'py>(py: Python<'py>, err: &DbError) -> PyResult<Bound<'py, PyAny>> {
    let fields = PyDict::new(py);
    for (code, value) in err.fields() {
        fields.set_item(char::from(code).to_string(), value)?;
    }
    module(py)?.getattr("message_from_fields")?.call1((fields,))
}

/// A core error as the matching Python exception.
pub fn core_error(py: Python<'_>, err: &ferropg_core::Error, query: Option<&str>) -> PyErr {
    use ferropg_core::Error;
    match err {
        Error::Db(db) => server_error(py, db, query),
        Error::Parse(_) | Error::Unexpected(_) => {
            client_error(py, "ProtocolError", err.to_string())
        }
        Error::Auth(m) => client_error(py, "InterfaceError", m.clone()),
        Error::Encode(m) => client_error(py, "InterfaceError", m.clone()),
    }
}
