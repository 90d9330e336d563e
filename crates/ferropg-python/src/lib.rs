//! `ferropg._native`: the asyncio protocol, codecs and Record type behind the
//! `ferropg` Python package.

mod codecs;
mod errors;
mod protocol;
mod record;
mod statement;

use pyo3::prelude::*;

/// The catalog query that describes types (see `ferropg_core::introspect`).
#[pyfunction]
fn types_query(server_version_num: u32) -> String {
    ferropg_core::introspect::types_query(server_version_num)
}

/// Parses a DSN with libpq's rules; returns a dict of what it set.
#[pyfunction]
fn parse_dsn<'py>(py: Python<'py>, dsn: &str) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    use ferropg_core::config::{Config, Host};
    let cfg = Config::parse(dsn)
        .map_err(|e| errors::client_error(py, "ClientConfigurationError", e.0))?;
    let d = pyo3::types::PyDict::new(py);
    let hosts: Vec<String> = cfg
        .hosts
        .iter()
        .map(|h| match h {
            Host::Tcp(s) | Host::Unix(s) => s.clone(),
        })
        .collect();
    if !hosts.is_empty() {
        d.set_item("host", hosts)?;
    }
    if !cfg.ports.is_empty() {
        d.set_item("port", cfg.ports.clone())?;
    }
    d.set_item("user", cfg.user)?;
    d.set_item("password", cfg.password)?;
    d.set_item("database", cfg.database)?;
    d.set_item("connect_timeout", cfg.connect_timeout)?;
    d.set_item("sslmode", cfg.sslmode)?;
    d.set_item("application_name", cfg.application_name)?;
    d.set_item("server_settings", cfg.server_settings)?;
    d.set_item("client_options", cfg.client_options)?;
    Ok(d)
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

/// Whether the statement cache takes a statement of this SQL text (the core's rule):
/// the cache is on and the text is at most `max_chars` characters (0: no limit).
#[pyfunction]
fn cacheable(sql: &str, cache_on: bool, max_chars: usize) -> bool {
    ferropg_core::statement_cache::takes(sql, cache_on, max_chars)
}

/// The hosts to try when none is given (the core's rule): each socket directory
/// holding a server socket for `port`, then `localhost`.
#[pyfunction]
fn default_hosts(port: u16) -> Vec<String> {
    use ferropg_core::config::Host;
    ferropg_core::config::default_hosts(port)
        .into_iter()
        .map(|h| match h {
            Host::Tcp(s) | Host::Unix(s) => s,
        })
        .collect()
}

/// The password a password file's `text` gives for the first of `addrs` (each
/// `(host, port)`; a Unix socket's host is `localhost`) that an entry serves, with
/// `database` and `user` (the core's rules).
#[pyfunction]
fn passfile_password(
    text: &str,
    addrs: Vec<(String, u16)>,
    database: &str,
    user: &str,
) -> Option<String> {
    use ferropg_core::config::passfile;
    let entries = passfile::parse(text);
    addrs.iter().find_map(|(host, port)| {
        passfile::lookup(&entries, host, *port, database, user).map(str::to_owned)
    })
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
    m.add_function(wrap_pyfunction!(parse_dsn, m)?)?;
    m.add_function(wrap_pyfunction!(types_query, m)?)?;
    m.add_function(wrap_pyfunction!(uuid_type, m)?)?;
    m.add_function(wrap_pyfunction!(quote_literal, m)?)?;
    m.add_function(wrap_pyfunction!(cancel_request, m)?)?;
    m.add_function(wrap_pyfunction!(ssl_request, m)?)?;
    m.add_function(wrap_pyfunction!(cacheable, m)?)?;
    m.add_function(wrap_pyfunction!(default_hosts, m)?)?;
    m.add_function(wrap_pyfunction!(passfile_password, m)?)?;
    m.add(
        "CLIENT_KEYWORDS",
        pyo3::types::PyTuple::new(m.py(), ferropg_core::config::CLIENT_KEYWORDS)?,
    )?;
    m.add_function(wrap_pyfunction!(quote_ident, m)?)?;
    Ok(())
}
