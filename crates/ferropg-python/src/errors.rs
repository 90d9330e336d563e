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

/// The client-side exception classes of `ferropg.exceptions` that the extension
/// raises: one variant per class, so a misspelt name cannot reach run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    /// `InterfaceError`: the call was wrong (a closed statement, bad arguments).
    Interface,
    /// `ProtocolError`: the server's bytes made no sense.
    Protocol,
    /// `DataError`: a value could not be encoded.
    Data,
    /// `ClientConfigurationError`: connection settings that cannot work.
    ClientConfiguration,
    /// `ConnectionDoesNotExistError`: the connection is gone.
    ConnectionDoesNotExist,
    /// `UnsupportedClientFeatureError`: something this client cannot do.
    UnsupportedClientFeature,
    /// `InternalClientError`: a state the client should never reach.
    InternalClient,
    /// `InvalidCachedStatementError`: a statement's result columns changed under it.
    InvalidCachedStatement,
}

impl ClientError {
    /// The class name in `ferropg.exceptions`.
    pub fn class_name(self) -> &'static str {
        match self {
            ClientError::Interface => "InterfaceError",
            ClientError::Protocol => "ProtocolError",
            ClientError::Data => "DataError",
            ClientError::ClientConfiguration => "ClientConfigurationError",
            ClientError::ConnectionDoesNotExist => "ConnectionDoesNotExistError",
            ClientError::UnsupportedClientFeature => "UnsupportedClientFeatureError",
            ClientError::InternalClient => "InternalClientError",
            ClientError::InvalidCachedStatement => "InvalidCachedStatementError",
        }
    }
}

impl ClientError {
    /// The class itself.
    fn class(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        module(py)?.getattr(self.class_name())
    }
}

/// The exception `built`, or the error that kept it from being built.
fn raised(built: PyResult<Bound<'_, PyAny>>) -> PyErr {
    match built {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// An error's fields, keyed by their one-letter codes (`C`, `M`, `D`, ...).
fn fields_dict<'py>(py: Python<'py>, err: &DbError) -> PyResult<Bound<'py, PyDict>> {
    let fields = PyDict::new(py);
    for (code, value) in err.fields() {
        fields.set_item(char::from(code).to_string(), value)?;
    }
    Ok(fields)
}

/// An exception of class `kind`, built from one message.
pub fn client_error(py: Python<'_>, kind: ClientError, message: impl Into<String>) -> PyErr {
    raised(kind.class(py).and_then(|c| c.call1((message.into(),))))
}

/// Whether `err` is an instance of class `kind`.
pub fn is_instance_of(py: Python<'_>, err: &PyErr, kind: ClientError) -> bool {
    kind.class(py)
        .is_ok_and(|c| err.value(py).is_instance(&c).unwrap_or(false))
}

/// Like [`client_error`], with asyncpg's `hint=` keyword.
pub fn client_error_with_hint(
    py: Python<'_>,
    kind: ClientError,
    message: String,
    hint: &str,
) -> PyErr {
    raised((|| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("hint", hint)?;
        kind.class(py)?.call((message,), Some(&kwargs))
    })())
}

/// The server's error as the PostgresError subclass for its SQLSTATE.
pub fn server_error(py: Python<'_>, err: &DbError, query: Option<&str>) -> PyErr {
    raised((|| {
        // Whether the plan went stale is the core's rule; the class follows from it.
        let kwargs = PyDict::new(py);
        kwargs.set_item("stale_plan", err.is_stale_plan())?;
        module(py)?
            .getattr("error_from_fields")?
            .call((fields_dict(py, err)?, query), Some(&kwargs))
    })())
}

/// A NoticeResponse as a `PostgresLogMessage`.
pub fn log_message<'py>(py: Python<'py>, err: &DbError) -> PyResult<Bound<'py, PyAny>> {
    module(py)?
        .getattr("message_from_fields")?
        .call1((fields_dict(py, err)?,))
}

/// A core error as the matching Python exception.
pub fn core_error(py: Python<'_>, err: &ferropg_core::Error, query: Option<&str>) -> PyErr {
    use ferropg_core::Error;
    match err {
        Error::Db(db) => server_error(py, db, query),
        Error::Parse(_) | Error::Unexpected(_) => {
            client_error(py, ClientError::Protocol, err.to_string())
        }
        Error::Auth(m) => client_error(py, ClientError::Interface, m.clone()),
        Error::Encode(m) => client_error(py, ClientError::Interface, m.clone()),
    }
}
