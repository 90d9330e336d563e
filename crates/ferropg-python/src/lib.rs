//! `ferropg._native`: the asyncio protocol, codecs and Record type behind the
//! `ferropg` Python package.

mod codecs;
mod errors;
mod libpq;
mod placeholders;
mod protocol;
mod record;
mod statement;

use pyo3::prelude::*;

/// The catalog query that describes types (see `ferropg_core::introspect`).
#[pyfunction]
fn types_query(server_version_num: u32) -> String {
    ferropg_core::introspect::types_query(server_version_num)
}

/// `value` as an SQL string literal that reads the same under every setting of
/// `standard_conforming_strings` (see `ferropg_core::quote`); ValueError for a NUL.
#[pyfunction]
fn quote_literal(value: &str) -> PyResult<String> {
    ferropg_core::quote::literal(value)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// `name` as a quoted SQL identifier; ValueError for an empty name or a NUL.
#[pyfunction]
fn quote_ident(name: &str) -> PyResult<String> {
    ferropg_core::quote::identifier(name)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// The CancelRequest for backend `process_id` with its secret `key` (the core's
/// encoder), to send alone on a new connection.
#[pyfunction]
fn cancel_request<'py>(
    py: Python<'py>,
    process_id: i32,
    key: &[u8],
) -> Bound<'py, pyo3::types::PyBytes> {
    let mut buf = bytes::BytesMut::new();
    ferropg_core::message::frontend::cancel_request_with_key(process_id, key, &mut buf);
    pyo3::types::PyBytes::new(py, &buf)
}

/// The SSLRequest that opens a connection asking for TLS (the core's encoder).
#[pyfunction]
fn ssl_request(py: Python<'_>) -> Bound<'_, pyo3::types::PyBytes> {
    let mut buf = bytes::BytesMut::new();
    ferropg_core::message::frontend::ssl_request(&mut buf);
    pyo3::types::PyBytes::new(py, &buf)
}

/// The answer to an SSLRequest in `received` (every byte read for it), by the
/// core's rule: `"tls"`, `"plain"`, `"error"` (an ErrorResponse, whose fields may
/// not be trusted) or `"unexpected"`.
#[pyfunction]
fn ssl_answer(received: &[u8]) -> &'static str {
    use ferropg_core::message::{ssl_answer, SslAnswer};
    match ssl_answer(received) {
        SslAnswer::Tls => "tls",
        SslAnswer::Plain => "plain",
        SslAnswer::Error => "error",
        SslAnswer::Unexpected => "unexpected",
    }
}

/// The pooler probe for a session whose backend key named `process_id` (the
/// core's rule).
#[pyfunction]
fn pooler_probe(process_id: i32) -> String {
    ferropg_core::pooler::probe_query(process_id)
}

/// Whether the pooler probe's command tag (`SELECT n`) means a pooler.
#[pyfunction]
fn probe_says_pooler(tag: &str) -> bool {
    ferropg_core::pooler::probe_tag_says_pooler(tag)
}

/// The `sslmode` in force (the core's rule): `sslmode` as given, else `prefer`, but
/// `verify-full` with `sslrootcert=system`, which refuses any weaker mode (libpq 16).
/// A name libpq does not know, or a weak mode with system roots, raises
/// ClientConfigurationError.
#[pyfunction]
#[pyo3(signature = (sslmode, sslrootcert))]
fn ssl_mode(
    py: Python<'_>,
    sslmode: Option<&str>,
    sslrootcert: Option<&str>,
) -> PyResult<&'static str> {
    let mut config = ferropg_core::config::Config {
        sslmode: sslmode.map(str::to_owned),
        ..Default::default()
    };
    if let Some(root) = sslrootcert {
        config
            .client_options
            .push(("sslrootcert".to_owned(), root.to_owned()));
    }
    config
        .ssl_mode()
        .map(|mode| mode.as_str())
        .map_err(|e| errors::client_error(py, errors::ClientError::ClientConfiguration, e.0))
}

/// Whether the statement cache takes a statement of this SQL text (the core's rule):
/// the cache is on and the text is at most `max_chars` characters (0: no limit).
#[pyfunction]
fn cacheable(sql: &str, cache_on: bool, max_chars: usize) -> bool {
    ferropg_core::statement_cache::takes(sql, cache_on, max_chars)
}

/// Name number `n` of a server-side object of `kind` (`stmt`, `portal`, ...), unique
/// to this process among the clients of a server (the core's rule).
#[pyfunction]
fn unique_name(kind: &str, n: u64) -> String {
    ferropg_core::names::unique_name(kind, n)
}

/// The InterfaceError (not raised) for `given` arguments to a statement that takes
/// `expected`: the one a Bind refuses them with, for Python code that counts them itself.
#[pyfunction]
#[pyo3(name = "argument_count_error")]
fn argument_count_error_py(py: Python<'_>, expected: usize, given: usize) -> Py<PyAny> {
    protocol::argument_count_error(py, expected, given)
        .into_value(py)
        .into_any()
}

/// The fast `uuid.UUID` subclass the codecs return.
#[pyfunction]
fn uuid_type(py: Python<'_>) -> PyResult<Py<pyo3::types::PyType>> {
    codecs::uuid_type(py)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<protocol::CoreProtocol>()?;
    m.add("Record", record::record_type(m.py())?)?;
    m.add_class::<record::RecordDesc>()?;
    m.add_class::<statement::Statement>()?;
    m.add_function(wrap_pyfunction!(record::_create_record, m)?)?;
    m.add_function(wrap_pyfunction!(record::_record_freelist_counts, m)?)?;
    m.add_function(wrap_pyfunction!(types_query, m)?)?;
    m.add_function(wrap_pyfunction!(uuid_type, m)?)?;
    m.add_function(wrap_pyfunction!(quote_literal, m)?)?;
    m.add_function(wrap_pyfunction!(cancel_request, m)?)?;
    m.add_function(wrap_pyfunction!(ssl_request, m)?)?;
    m.add_function(wrap_pyfunction!(ssl_mode, m)?)?;
    m.add_function(wrap_pyfunction!(pooler_probe, m)?)?;
    m.add_function(wrap_pyfunction!(probe_says_pooler, m)?)?;
    m.add_function(wrap_pyfunction!(ssl_answer, m)?)?;
    m.add_function(wrap_pyfunction!(cacheable, m)?)?;
    m.add_function(wrap_pyfunction!(unique_name, m)?)?;
    m.add("UNLOCK_ADVISORY", ferropg_core::reset::UNLOCK_ADVISORY)?;
    m.add_function(wrap_pyfunction!(argument_count_error_py, m)?)?;
    libpq::register(m)?;
    placeholders::register(m)?;
    m.add_function(wrap_pyfunction!(quote_ident, m)?)?;
    Ok(())
}
