//! Establishing a session: each address in turn, within `connect_timeout`.

use std::time::Duration;

use ferropg_core::config::session::{ServerState, STATE_QUERY};
use ferropg_core::config::Keepalives;
use ferropg_core::conn::StartupParams;

use crate::config::{ClientSettings, Config, Host, TargetSessionAttrs};
use crate::socket::Socket;
use crate::tls::{SslMode, Tls};
use crate::{socket, Connection, Error, ErrorKind};

/// Connects with `config`, after filling its unset settings from the connection
/// service and then the `PG*` environment (as libpq does).
///
/// The hosts are tried in order (in random order with `load_balance_hosts=random`):
/// TCP host names (every address they resolve to) and Unix socket directories
/// (`<dir>/.s.PGSQL.<port>`). `connect_timeout` bounds each attempt,
/// authentication included. A failure to reach a host (refused, unreachable, timed
/// out) moves on to the next one; an error from the server itself, such as a
/// rejected password, is returned at once. With `target_session_attrs`, a server
/// of the wrong kind is left for the next host; `prefer-standby` takes any server
/// when no standby answers.
///
/// ```no_run
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://app@localhost/shop".parse()?;
/// let mut conn = ferropg::connect(&config).await?;
/// # Ok(()) }
/// ```
pub async fn connect(config: &Config) -> Result<Connection, Error> {
    let config = config.resolved()?;
    let tls = config.tls()?;
    let params = config.startup_params()?;
    let link = Link {
        settings: config.client_settings(),
        timeout: config.get_connect_timeout(),
        keepalives: config.keepalives()?,
        tls,
    };
    let wanted = config.target_session_attrs()?;
    let mut last = None;
    // A server that is up but of the wrong kind; prefer-standby falls back on it.
    let mut fallback = None;
    for (host, port) in config.addresses()? {
        let mut params = params.clone();
        if params.password.is_none() {
            params.password = config.passfile_password(&host, port, &params.user);
        }
        let mut conn = match link.open(&host, port, params).await {
            Ok(conn) => conn,
            Err(e) if reaches_next_host(&e) => {
                last = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        if !wanted.needs_state() {
            return Ok(conn);
        }
        match server_state(&mut conn).await {
            Ok(state) if wanted.accepts(state) => return Ok(conn),
            Ok(_) => {
                last = Some(no_match(wanted));
                if fallback.is_none() && wanted.falls_back_to_any() {
                    fallback = Some(conn);
                }
            }
            Err(e) if reaches_next_host(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    if let Some(conn) = fallback {
        return Ok(conn);
    }
    Err(last.unwrap_or_else(|| Error::config("no host to connect to")))
}

/// Whether a failure to connect moves on to the next host (the host could not be
/// reached) rather than ending `connect` (the server refused us).
fn reaches_next_host(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Io | ErrorKind::Timeout | ErrorKind::Closed
    )
}

/// The error when no server is of the kind `target_session_attrs` asks for.
fn no_match(wanted: TargetSessionAttrs) -> Error {
    Error::no_matching_server(format!("no server matches target_session_attrs={wanted}"))
}

/// What a server is: from what it reported at startup (PostgreSQL 14 and later),
/// else by asking it.
async fn server_state(conn: &mut Connection) -> Result<ServerState, Error> {
    if let Some(state) = ServerState::from_parameters(|name| conn.parameter(name)) {
        return Ok(state);
    }
    let row = conn.query_one(STATE_QUERY, &[]).await?;
    Ok(ServerState::from_query(row.try_get(0)?, row.try_get(1)?))
}

/// How every host is reached: the same for each attempt.
struct Link {
    settings: ClientSettings,
    timeout: Option<Duration>,
    keepalives: Keepalives,
    tls: Tls,
}

impl Link {
    /// Connects to one host within `connect_timeout`.
    async fn open(
        &self,
        host: &Host,
        port: u16,
        params: StartupParams,
    ) -> Result<Connection, Error> {
        let attempt = establish(host, port, params, self);
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::timeout(format!(
                        "could not connect to {} within {limit:?}",
                        describe(host, port)
                    )))
                }),
            None => attempt.await,
        }
    }
}

/// Connects to one host. `allow` starts without TLS and `prefer` with it; either
/// goes the other way once when the server turns the first attempt away before
/// authentication (its `pg_hba.conf` may want the other).
async fn establish(
    host: &Host,
    port: u16,
    params: StartupParams,
    link: &Link,
) -> Result<Connection, Error> {
    let tls = &link.tls;
    let first = (tls.mode >= SslMode::Prefer).then_some(tls);
    let failed = match attempt(host, port, params.clone(), link, first).await {
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
    attempt(host, port, params, link, second)
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
    link: &Link,
    tls: Option<&Tls>,
) -> Result<Connection, Failed> {
    let (socket, endpoint) = socket::connect(host, port, &link.keepalives).await?;
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
    let mut conn = Connection::new(socket, endpoint, params, link.settings, link.timeout);
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
