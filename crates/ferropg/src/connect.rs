//! Establishing a session: each address in turn, within `connect_timeout`.

use std::time::Duration;

use ferropg_core::conn::StartupParams;

use crate::config::{ClientSettings, Config, Host};
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
    config.check_supported()?;
    let params = config.startup_params()?;
    let settings = config.client_settings();
    let timeout = config.get_connect_timeout();
    let mut last = None;
    for (host, port) in config.addresses()? {
        let attempt = establish(&host, port, params.clone(), settings, timeout);
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

/// One attempt: connect the socket, then run startup and authentication.
async fn establish(
    host: &Host,
    port: u16,
    params: StartupParams,
    settings: ClientSettings,
    timeout: Option<Duration>,
) -> Result<Connection, Error> {
    let (socket, endpoint) = socket::connect(host, port).await?;
    let mut conn = Connection::new(socket, endpoint, params, settings, timeout);
    conn.startup().await?;
    Ok(conn)
}

fn describe(host: &Host, port: u16) -> String {
    match host {
        Host::Tcp(name) => format!("{name}:{port}"),
        Host::Unix(dir) => format!("{dir}/.s.PGSQL.{port}"),
    }
}
