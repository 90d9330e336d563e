//! libpq's connection rules, as the core decides them, for the Python layer's
//! `connect_utils`: `resolve_connect` merges `connect()`'s arguments, the DSN, the
//! connection service and the `PG*` variables, and finds the password file's
//! password; `target_session_attrs` is judged here too. The environment comes from
//! Python (`os.environ`, as asyncpg reads it); the decisions are the core's.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;

use ferropg_core::config::session::{ServerState, TargetSessionAttrs, STATE_QUERY};
use ferropg_core::config::{self as core, passfile, Config, Environment, FileKind, Host};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{self, ClientError};

fn config_error(py: Python<'_>, e: ferropg_core::config::ConfigError) -> PyErr {
    errors::client_error(py, ClientError::ClientConfiguration, e.0)
}

/// The environment as `connect()` sees it: the variables Python passed (those
/// asyncpg reads, from `os.environ`) and the file system.
struct Given {
    vars: HashMap<String, String>,
    home: Option<String>,
}

impl Environment for Given {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    fn home(&self) -> Option<String> {
        self.home.clone()
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            // A path through a file, or a directory: nothing to read there.
            Err(e) if matches!(e.raw_os_error(), Some(20 | 21)) => Ok(None),
            Err(e) => Err(e.kind().to_string()),
        }
    }

    fn file_kind(&self, path: &str) -> Option<FileKind> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileKind {
            regular: meta.is_file(),
            mode: meta.permissions().mode() & 0o777,
        })
    }

    fn socket_exists(&self, path: &str) -> bool {
        std::path::Path::new(path).exists()
    }
}

/// `connect()`'s own arguments as the highest-precedence source: hosts are taken
/// as written (no ports inside them), each value only when given.
fn arguments(explicit: &Bound<'_, PyDict>) -> PyResult<Config> {
    let mut c = Config::default();
    let given = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        Ok(explicit.get_item(key)?.filter(|v| !v.is_none()))
    };
    if let Some(hosts) = given("host")? {
        let hosts: Vec<String> = hosts.extract()?;
        c.hosts = hosts.iter().map(|h| Host::from_libpq(h)).collect();
    }
    if let Some(ports) = given("port")? {
        c.ports = ports.extract()?;
    }
    let text =
        |key: &str| -> PyResult<Option<String>> { given(key)?.map(|v| v.extract()).transpose() };
    c.user = text("user")?;
    c.password = text("password")?;
    c.database = text("database")?;
    for key in [
        "passfile",
        "service",
        "servicefile",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    ] {
        if let Some(value) = text(key)? {
            c.client_options.push((key.to_owned(), value));
        }
    }
    if let Some(settings) = given("server_settings")? {
        c.server_settings = settings
            .cast::<PyDict>()?
            .iter()
            .map(|(k, v)| Ok((k.extract()?, v.extract()?)))
            .collect::<PyResult<_>>()?;
    }
    Ok(c)
}

/// Where `connect()` goes and with what: `explicit` (the arguments, see
/// `connect_utils.resolve_params`) over `dsn` over the connection service over
/// `env`'s `PG*` variables. Returns a dict: `addrs` (a socket path, or `(host,
/// port)`), `user` (`os_user()` when no source names one), `password` (the
/// password file's when no source gives one), `passfile_warning` (why a password
/// file was passed over), `database`, `connect_timeout`, `server_settings`
/// (`application_name` included) and `options` (libpq's client keywords, `sslmode`
/// among them).
#[pyfunction]
#[pyo3(signature = (dsn, explicit, env, home, os_user))]
fn resolve_connect<'py>(
    py: Python<'py>,
    dsn: Option<&str>,
    explicit: &Bound<'py, PyDict>,
    env: HashMap<String, String>,
    home: Option<String>,
    os_user: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let given = Given { vars: env, home };
    let mut layers = vec![arguments(explicit)?];
    if let Some(dsn) = dsn.filter(|d| !d.is_empty()) {
        layers.push(Config::parse(dsn).map_err(|e| config_error(py, e))?);
    }
    let c = core::resolve(&layers, &given).map_err(|e| config_error(py, e))?;
    let addresses = c
        .addresses(|path| given.socket_exists(path))
        .map_err(|e| config_error(py, e))?;
    let user: String = match &c.user {
        Some(user) => user.clone(),
        None => os_user.call0()?.extract()?,
    };
    let database = c.database.clone().unwrap_or_else(|| user.clone());
    let mut password = c.password.clone();
    let mut warning = None;
    if password.is_none() {
        match core::passfile_entries(&c, &given) {
            Ok(Some(entries)) => {
                password = addresses.iter().find_map(|(host, port)| {
                    let host = match host {
                        Host::Unix(_) => "localhost",
                        Host::Tcp(h) => h,
                    };
                    passfile::lookup(&entries, host, *port, &database, &user).map(str::to_owned)
                });
            }
            Ok(None) => {}
            Err(why) => warning = Some(why),
        }
    }
    let addrs = PyList::empty(py);
    for (host, port) in &addresses {
        match host {
            // A path naming the socket itself is kept as it is.
            Host::Unix(path)
                if path
                    .rsplit('/')
                    .next()
                    .is_some_and(|f| f.contains(".s.PGSQL.")) =>
            {
                addrs.append(path)?
            }
            Host::Unix(dir) => addrs.append(core::socket_path(dir, *port))?,
            Host::Tcp(name) => addrs.append((name, *port))?,
        }
    }
    let settings = PyDict::new(py);
    if let Some(app) = &c.application_name {
        settings.set_item("application_name", app)?;
    }
    for (k, v) in &c.server_settings {
        settings.set_item(k, v)?;
    }
    let options = PyDict::new(py);
    for (k, v) in &c.client_options {
        options.set_item(k, v)?;
    }
    options.set_item("sslmode", &c.sslmode)?;
    let d = PyDict::new(py);
    d.set_item("addrs", addrs)?;
    d.set_item("user", user)?;
    d.set_item("password", password)?;
    d.set_item("passfile_warning", warning)?;
    d.set_item("database", database)?;
    d.set_item("connect_timeout", c.connect_timeout)?;
    d.set_item("server_settings", settings)?;
    d.set_item("options", options)?;
    Ok(d)
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
    m.add_function(wrap_pyfunction!(resolve_connect, m)?)?;
    m.add_function(wrap_pyfunction!(server_state, m)?)?;
    m.add_function(wrap_pyfunction!(server_state_from_row, m)?)?;
    m.add_function(wrap_pyfunction!(session_accepts, m)?)?;
    m.add("SESSION_STATE_QUERY", STATE_QUERY)?;
    Ok(())
}
