//! Establishing a session: each address in turn, within `connect_timeout`.

use std::time::Duration;

use ferropg_core::conn::StartupParams;

use crate::config::{ClientSettings, Config, Host};
use crate::socket::Socket;
use crate::tls::{SslMode, Tls};
use crate::{socket, Connection, Error, ErrorKind};

/// Connects with `config`, after filling its unset settings from the `PG*`
/// environment (as libpq does).
///
/// The hosts are tried in order: TCP host names (every address they resolve to)
/// and Unix socket directories (`<dir>/.s.PGSQL.<port>`). `connect_timeout` bounds
/// each attempt, authentication included. A failure to reach a host (refused,
/// unreachable, timed out) moves on to the next one; an error from the server
/// itself, such as a rejected password, is returned at once.
///
/// ```no_run
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://app@localhost/shop".parse()?;
/// let mut conn = ferropg::connect(&config).await?;
/// # Ok(()) }
/// ```
pub async fn connect(config: &Config) -> Result<Connection, Error> {
    let mut config = config.clone();
    config.apply_env()?;
    let tls = config.tls()?;
    let params = config.startup_params()?;
    let settings = config.client_settings();
    let timeout = config.get_connect_timeout();
    let mut last = None;
    for (host, port) in config.addresses()? {
        let mut params = params.clone();
        if params.password.is_none() {
            params.password = config.passfile_password(&host, port, &params.user);
        }
        let attempt = establish(&host, port, params, settings, timeout, &tls);
        let result = match timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::timeout(format!(
                        "could not connect to {} within {limit:?}",
                        describe(&host, port)
                    )))
                }),
            None => attempt.await,
        };
        match result {
            Ok(conn) => return Ok(conn),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Io | ErrorKind::Timeout | ErrorKind::Closed
                ) =>
            {
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::config("no host to connect to")))
}

/// Connects to one host. `allow` starts without TLS and `prefer` with it; either
/// goes the other way once when the server turns the first attempt away before
/// authentication (its `pg_hba.conf` may want the other).
async fn establish(
    host: &Host,
    port: u16,
    params: StartupParams,
    settings: ClientSettings,
    timeout: Option<Duration>,
    tls: &Tls,
) -> Result<Connection, Error> {
    let first = (tls.mode >= SslMode::Prefer).then_some(tls);
    let failed = match attempt(host, port, params.clone(), settings, timeout, first).await {
        Ok(conn) => return Ok(conn),
        Err(failed) => failed,
    };
    let fallback = matches!(tls.mode, SslMode::Allow | SslMode::Prefer)
        && matches!(host, Host::Tcp(_))
        && failed.error.kind() == ErrorKind::Db
        && !failed.authenticated
        && failed.on_tls == first.is_some();
    if !fallback {
        return Err(failed.error);
    }
    let second = if first.is_some() { None } else { Some(tls) };
    attempt(host, port, params, settings, timeout, second)
        .await
        .map_err(|f| f.error)
}

/// How an attempt failed: the error, whether the server had accepted the
/// credentials, and whether the stream was using TLS.
struct Failed {
    error: Error,
    authenticated: bool,
    on_tls: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            authenticated: false,
            on_tls: false,
        }
    }
}

/// One attempt: connect the socket, upgrade it to TLS when `tls` is given (and the
/// host is TCP), then run startup and authentication.
async fn attempt(
    host: &Host,
    port: u16,
    params: StartupParams,
    settings: ClientSettings,
    timeout: Option<Duration>,
    tls: Option<&Tls>,
) -> Result<Connection, Failed> {
    let (socket, endpoint) = socket::connect(host, port).await?;
    let (socket, used_tls) = match (socket, tls, host) {
        (Socket::Tcp(tcp), Some(tls), Host::Tcp(name)) => match tls.upgrade(tcp, name).await? {
            Ok(stream) => (
                Socket::Tls(Box::new(stream)),
                Some((tls.clone(), name.clone())),
            ),
            Err(plain) => (Socket::Tcp(plain), None),
        },
        (socket, ..) => (socket, None),
    };
    let mut conn = Connection::new(socket, endpoint, params, settings, timeout);
    conn.tls = used_tls;
    match conn.startup().await {
        Ok(()) => Ok(conn),
        Err(error) => Err(Failed {
            error,
            authenticated: conn.core.authenticated(),
            on_tls: conn.tls.is_some(),
        }),
    }
}

fn describe(host: &Host, port: u16) -> String {
    match host {
        Host::Tcp(name) => format!("{name}:{port}"),
        Host::Unix(dir) => format!("{dir}/.s.PGSQL.{port}"),
    }
}
