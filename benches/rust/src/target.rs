//! Where the server is, read once from a DSN with ferropg's parser, then handed to
//! each driver in the form that driver takes, so that all three connect alike.

use std::path::PathBuf;

use ferropg::config::Host;

/// A server address and login.
#[derive(Debug, Clone)]
pub struct Target {
    /// A Unix socket directory or a TCP host.
    pub host: Endpoint,
    /// The port (for a socket, the number in `.s.PGSQL.<port>`).
    pub port: u16,
    /// The user name.
    pub user: String,
    /// The password, if any.
    pub password: Option<String>,
    /// The database.
    pub dbname: String,
}

/// How to reach the server.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// The directory holding the server's Unix socket.
    Socket(PathBuf),
    /// A host name or address, over TCP.
    Tcp(String),
}

impl Target {
    /// Reads a libpq URI or keyword/value string; unset fields take libpq's
    /// defaults (`localhost`, 5432, `$USER`, the user's name for the database).
    pub fn from_dsn(dsn: &str) -> Result<Target, String> {
        let config = ferropg::Config::parse(dsn).map_err(|e| format!("--dsn {dsn:?}: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(Host::Unix(dir)) => Endpoint::Socket(PathBuf::from(dir)),
            Some(Host::Tcp(name)) => Endpoint::Tcp(name.clone()),
            None => Endpoint::Tcp("localhost".into()),
        };
        let user = config
            .get_user()
            .map(str::to_owned)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "postgres".into());
        Ok(Target {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            dbname: config.get_dbname().unwrap_or(&user).to_owned(),
            password: config.get_password().map(str::to_owned),
            user,
        })
    }

    /// Whether the server is reached over its Unix socket.
    pub fn is_socket(&self) -> bool {
        matches!(self.host, Endpoint::Socket(_))
    }
}
