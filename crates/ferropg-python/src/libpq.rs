//! libpq's connection rules, as the core decides them, for the Python layer's
//! `connect_utils`: the DSN, the default hosts, the password file, service files
//! and `target_session_attrs`. The Python side reads the files and the environment
//! and passes them in; the decisions are the core's.

use ferropg_core::config::session::{ServerState, TargetSessionAttrs, STATE_QUERY};
use ferropg_core::config::{passfile, service, Config, Host, CLIENT_KEYWORDS};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::errors::{self, ClientError};

fn config_error(py: Python<'_>, e: ferropg_core::config::ConfigError) -> PyErr {
    errors::client_error(py, ClientError::ClientConfiguration, e.0)
}

fn host_name(host: Host) -> String {
    match host {
        Host::Tcp(s) | Host::Unix(s) => s,
    }
}

/// Parses a DSN with libpq's rules; returns a dict of what it set.
#[pyfunction]
fn parse_dsn<'py>(py: Python<'py>, dsn: &str) -> PyResult<Bound<'py, PyDict>> {
    let cfg = Config::parse(dsn).map_err(|e| config_error(py, e))?;
    let d = PyDict::new(py);
    let hosts: Vec<String> = cfg.hosts.into_iter().map(host_name).collect();
    if !hosts.is_empty() {
        d.set_item("host", hosts)?;
    }
    if !cfg.ports.is_empty() {
        d.set_item("port", cfg.ports)?;
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

/// The hosts to try when none is given: each socket directory holding a server
/// socket for `port`, then `localhost`.
#[pyfunction]
fn default_hosts(port: u16) -> Vec<String> {
    ferropg_core::config::default_hosts(port, |path| std::path::Path::new(path).exists())
        .into_iter()
        .map(host_name)
        .collect()
}

/// The password a password file's `text` gives for the first of `addrs` (each
/// `(host, port)`; a Unix socket's host is `localhost`) that an entry serves, with
/// `database` and `user`.
#[pyfunction]
fn passfile_password(
    text: &str,
    addrs: Vec<(String, u16)>,
    database: &str,
    user: &str,
) -> Option<String> {
    let entries = passfile::parse(text);
    addrs.iter().find_map(|(host, port)| {
        passfile::lookup(&entries, host, *port, database, user).map(str::to_owned)
    })
}

/// The service files that may define a service, in libpq's order: `servicefile`
/// alone when given, else `PGSERVICEFILE` or `~/.pg_service.conf` (under `home`),
/// then `$PGSYSCONFDIR/pg_service.conf`; `env` is a mapping such as `os.environ`.
#[pyfunction]
#[pyo3(signature = (servicefile, env, home=None))]
fn service_candidates(
    servicefile: Option<&str>,
    env: &Bound<'_, PyAny>,
    home: Option<&str>,
) -> Vec<String> {
    let read = |name: &str| -> Option<String> {
        env.get_item(name)
            .ok()
            .and_then(|v| v.extract::<String>().ok())
            .filter(|v| !v.is_empty())
    };
    service::candidates(servicefile, read, home)
}

/// The parameters of service `name` in a service file's `text`, or None when the
/// file does not define it; ClientConfigurationError for a malformed file (the
/// message names the line, never its text).
#[pyfunction]
fn service_lookup(
    py: Python<'_>,
    text: &str,
    name: &str,
) -> PyResult<Option<Vec<(String, String)>>> {
    service::lookup(text, name).map_err(|e| config_error(py, e))
}

/// `(in hot standby, read-only)` from the run-time parameters a server reported
/// (`in_hot_standby`, `default_transaction_read_only`; PostgreSQL 14+), or None
/// when they are missing: then run `SESSION_STATE_QUERY` and pass its row to
/// `server_state_from_row`.
#[pyfunction]
fn server_state(parameters: &Bound<'_, PyDict>) -> Option<(bool, bool)> {
    let values: Vec<(String, String)> = parameters
        .iter()
        .filter_map(|(k, v)| Some((k.extract().ok()?, v.extract().ok()?)))
        .collect();
    let state = ServerState::from_parameters(|name| {
        values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    })?;
    Some((state.hot_standby, state.read_only))
}

/// `(in hot standby, read-only)` from `SESSION_STATE_QUERY`'s two text values.
#[pyfunction]
fn server_state_from_row(in_recovery: &str, transaction_read_only: &str) -> (bool, bool) {
    let state = ServerState::from_query(in_recovery, transaction_read_only);
    (state.hot_standby, state.read_only)
}

/// Whether a server `(in hot standby, read-only)` is of the kind
/// `target_session_attrs` asks for (`prefer-standby`: a standby; the fallback to
/// any server is the caller's).
#[pyfunction]
fn session_accepts(py: Python<'_>, target: &str, state: (bool, bool)) -> PyResult<bool> {
    let target: TargetSessionAttrs = target.parse().map_err(|e| config_error(py, e))?;
    Ok(target.accepts(ServerState {
        hot_standby: state.0,
        read_only: state.1,
    }))
}

/// Adds this module's functions and constants to `_native`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_dsn, m)?)?;
    m.add_function(wrap_pyfunction!(default_hosts, m)?)?;
    m.add_function(wrap_pyfunction!(passfile_password, m)?)?;
    m.add_function(wrap_pyfunction!(service_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(service_lookup, m)?)?;
    m.add_function(wrap_pyfunction!(server_state, m)?)?;
    m.add_function(wrap_pyfunction!(server_state_from_row, m)?)?;
    m.add_function(wrap_pyfunction!(session_accepts, m)?)?;
    m.add("CLIENT_KEYWORDS", PyTuple::new(m.py(), CLIENT_KEYWORDS)?)?;
    m.add("SESSION_STATE_QUERY", STATE_QUERY)?;
    Ok(())
}
