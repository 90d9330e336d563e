//! Connection settings with libpq's semantics: a `postgresql://` URI or a
//! `key=value` string, then a connection service, then the `PG*` environment for
//! whatever is still unset; and libpq's decisions on what they mean (host lists,
//! `target_session_attrs`, `load_balance_hosts`, keepalives, and TLS: `sslmode`,
//! `sslrootcert`, `sslnegotiation`, the default TLS files).
//!
//! Sans-IO like the rest of the core: the environment, file contents and whether a
//! socket exists are passed in by the face, never read here.

pub mod passfile;
mod resolve;
pub mod service;
pub mod session;
mod tls;

pub use resolve::{passfile_entries, resolve, service_settings, Environment, FileKind};
pub use tls::{
    default_tls_file, is_crl_dir_entry, RootCert, SslMode, SslNegotiation, ALPN_PROTOCOL,
};

use std::fmt;

/// Where to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address, for TCP.
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Unix(String),
}

impl Host {
    /// A host as libpq reads it: a value starting with `/` is a socket directory. An
    /// IPv6 address may keep the brackets of URI syntax (`?host=[::1]`, as asyncpg
    /// accepts); they are not part of the name.
    pub fn from_libpq(value: &str) -> Host {
        if value.starts_with('/') || value.starts_with('@') {
            Host::Unix(value.to_owned())
        } else if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Host::Tcp(inner.to_owned())
        } else {
            Host::Tcp(value.to_owned())
        }
    }
}

/// Parsed connection settings; `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// The hosts, tried in order.
    pub hosts: Vec<Host>,
    /// One port for all hosts, or one per host.
    pub ports: Vec<u16>,
    /// Ports written into a `host=` value (`db1:5433,db2`), one per host: a port
    /// given as such in the same or a higher-precedence source wins over them
    /// ([`resolve`] settles them into `ports`).
    pub host_ports: Vec<Option<u16>>,
    /// The role.
    pub user: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// The database.
    pub database: Option<String>,
    /// `connect_timeout` in seconds.
    pub connect_timeout: Option<f64>,
    /// `sslmode` as written.
    pub sslmode: Option<String>,
    /// `application_name`.
    pub application_name: Option<String>,
    /// Further parameters, sent to the server as run-time settings (`options` is kept raw).
    pub server_settings: Vec<(String, String)>,
    /// libpq's client-side keywords ([`CLIENT_KEYWORDS`]) as written: each face
    /// implements or refuses them; none is ever sent to the server.
    pub client_options: Vec<(String, String)>,
}

/// libpq's connection keywords that configure the client, not the server session:
/// a DSN may carry them, and sending one to the server as a setting would end the
/// connection (FATAL 42704). The ones [`Config`] reads itself (host, port, user,
/// password, dbname, connect_timeout, sslmode, application_name) are not listed.
pub const CLIENT_KEYWORDS: &[&str] = &[
    "channel_binding",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "passfile",
    "require_auth",
    "requirepeer",
    "service",
    "servicefile",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslnegotiation",
    "sslpassword",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
];

/// Whether `key` is one of libpq's client-side keywords ([`CLIENT_KEYWORDS`]).
pub fn is_client_keyword(key: &str) -> bool {
    CLIENT_KEYWORDS.contains(&key)
}

/// A DSN that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The default port.
pub const DEFAULT_PORT: u16 = 5432;

impl Config {
    /// Parses a `postgres://` / `postgresql://` URI or a libpq keyword/value string.
    pub fn parse(dsn: &str) -> Result<Config, ConfigError> {
        let trimmed = dsn.trim();
        if let Some(rest) = trimmed
            .strip_prefix("postgresql://")
            .or_else(|| trimmed.strip_prefix("postgres://"))
        {
            parse_uri(rest)
        } else if let Some(scheme) = uri_scheme(trimmed) {
            Err(ConfigError(format!(
                "invalid DSN: scheme is expected to be either \"postgresql\" or \"postgres\", \
                 got {scheme:?}"
            )))
        } else {
            parse_keywords(trimmed)
        }
    }

    /// Fills what is still unset from the `PG*` environment variables, read through
    /// `env` ([`ENV_VARS`] lists them and the keyword each sets).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (var, key) in ENV_VARS {
            if let Some(value) = env(var) {
                self.fill(key, value)?;
            }
        }
        Ok(())
    }

    /// Fills what is still unset from a connection service's parameters (see
    /// [`service::lookup`]): libpq applies them after the connection string and
    /// before the environment. A parameter libpq does not know is an error.
    pub fn apply_service(&mut self, params: &[(String, String)]) -> Result<(), ConfigError> {
        for (key, value) in params {
            // `database` is asyncpg's spelling of dbname in a service, and harmless.
            if !is_libpq_keyword(key) && key != "database" {
                return Err(ConfigError(format!(
                    "invalid connection option {key:?} in the service definition"
                )));
            }
            self.fill(key, value.clone())?;
        }
        Ok(())
    }

    /// Sets `key` unless it is set already.
    fn fill(&mut self, key: &str, value: String) -> Result<(), ConfigError> {
        let unset = match key {
            "host" | "hostaddr" => self.hosts.is_empty(),
            "port" => self.ports.is_empty(),
            "user" => self.user.is_none(),
            "password" => self.password.is_none(),
            "dbname" | "database" => self.database.is_none(),
            "connect_timeout" => self.connect_timeout.is_none(),
            "sslmode" => self.sslmode.is_none(),
            "application_name" => self.application_name.is_none(),
            _ if is_client_keyword(key) => self.client_option(key).is_none(),
            _ => !self.server_settings.iter().any(|(k, _)| k == key),
        };
        if unset && !value.is_empty() {
            self.set(key, value)?;
        }
        Ok(())
    }

    /// A client keyword's value ([`CLIENT_KEYWORDS`]): the last one given.
    pub fn client_option(&self, key: &str) -> Option<&str> {
        self.client_options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The keys of the connection string that libpq does not know (the Python face
    /// sends them to the server as settings, as asyncpg does; the Rust face refuses
    /// them, as libpq does).
    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.server_settings
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !SESSION_KEYWORDS.contains(k))
    }

    /// `target_session_attrs` (default `any`).
    pub fn target_session_attrs(&self) -> Result<session::TargetSessionAttrs, ConfigError> {
        self.client_option("target_session_attrs")
            .map_or(Ok(session::TargetSessionAttrs::Any), str::parse)
    }

    /// Whether `load_balance_hosts=random` asks for the hosts in random order
    /// ([`shuffle`]); `disable` (the default) keeps them in order.
    pub fn load_balance_hosts(&self) -> Result<bool, ConfigError> {
        match self.client_option("load_balance_hosts") {
            None | Some("disable") => Ok(false),
            Some("random") => Ok(true),
            Some(other) => Err(ConfigError(format!(
                "invalid load_balance_hosts value: {other:?} (expected disable or random)"
            ))),
        }
    }

    /// The TCP keepalive settings: libpq turns keepalives on unless `keepalives=0`,
    /// and leaves the operating system's timings unless told otherwise.
    pub fn keepalives(&self) -> Result<Keepalives, ConfigError> {
        let number = |key: &str| -> Result<Option<u32>, ConfigError> {
            self.client_option(key)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| ConfigError(format!("invalid integer value {v:?} for {key}")))
                })
                .transpose()
        };
        Ok(Keepalives {
            enabled: number("keepalives")?.is_none_or(|n| n != 0),
            idle: number("keepalives_idle")?.filter(|&n| n > 0),
            interval: number("keepalives_interval")?.filter(|&n| n > 0),
            count: number("keepalives_count")?.filter(|&n| n > 0),
        })
    }

    /// The `(host, port)` pairs to try, with libpq's pairing rules and defaults
    /// ([`default_hosts`] when no host is set; `socket_exists` tells whether a
    /// socket file exists).
    pub fn addresses(
        &self,
        socket_exists: impl Fn(&str) -> bool,
    ) -> Result<Vec<(Host, u16)>, ConfigError> {
        let hosts = if self.hosts.is_empty() {
            default_hosts(
                self.ports.first().copied().unwrap_or(DEFAULT_PORT),
                socket_exists,
            )
        } else {
            self.hosts.clone()
        };
        let ports = match self.ports.len() {
            0 => vec![DEFAULT_PORT; hosts.len()],
            1 => vec![self.ports[0]; hosts.len()],
            n if n == hosts.len() => self.ports.clone(),
            n => {
                return Err(ConfigError(format!(
                    "could not match {n} port numbers to {} hosts",
                    hosts.len()
                )))
            }
        };
        Ok(hosts.into_iter().zip(ports).collect())
    }

    fn set(&mut self, key: &str, value: String) -> Result<(), ConfigError> {
        match key {
            "host" => {
                let specs = split_list(&value)
                    .map(split_host_spec)
                    .collect::<Result<Vec<_>, _>>()?;
                (self.hosts, self.host_ports) = specs.into_iter().unzip();
                if self.host_ports.iter().all(Option::is_none) {
                    self.host_ports.clear();
                }
            }
            "hostaddr" => {
                self.hosts = split_list(&value).map(Host::from_libpq).collect();
                self.host_ports.clear();
            }
            "port" => self.ports = parse_ports(&value)?,
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" | "database" => self.database = Some(value),
            "connect_timeout" => self.connect_timeout = Some(parse_timeout(&value)?),
            "sslmode" => self.sslmode = Some(value),
            "application_name" => self.application_name = Some(value),
            _ if is_client_keyword(key) => self.client_options.push((key.to_owned(), value)),
            _ => self.server_settings.push((key.to_owned(), value)),
        }
        Ok(())
    }
}

/// Where libpq looks for a server's Unix socket when no host is given: Debian's
/// directory, its older name, `/tmp`, and macOS's `/private/tmp`.
pub const SOCKET_DIRS: [&str; 4] = [
    "/run/postgresql",
    "/var/run/postgresql",
    "/tmp",
    "/private/tmp",
];

/// The hosts to try when none is given: each of [`SOCKET_DIRS`] that holds a server
/// socket for `port` (`socket_exists` is asked about each socket's path), then
/// `localhost`. Both faces take this list.
pub fn default_hosts(port: u16, socket_exists: impl Fn(&str) -> bool) -> Vec<Host> {
    let mut hosts: Vec<Host> = SOCKET_DIRS
        .into_iter()
        .filter(|d| socket_exists(&socket_path(d, port)))
        .map(|d| Host::Unix(d.to_owned()))
        .collect();
    hosts.push(Host::Tcp("localhost".into()));
    hosts
}

/// The path of the server socket for `port` in directory `dir`.
pub fn socket_path(dir: &str, port: u16) -> String {
    format!("{}/.s.PGSQL.{port}", dir.trim_end_matches('/'))
}

/// The `PG*` environment variables libpq reads, and the keyword each one sets when
/// the connection string and the service left it unset.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGSERVICE", "service"),
    ("PGSERVICEFILE", "servicefile"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
    ("PGSSLCOMPRESSION", "sslcompression"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLCERTMODE", "sslcertmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGSSLSNI", "sslsni"),
    ("PGREQUIREPEER", "requirepeer"),
    ("PGSSLMINPROTOCOLVERSION", "ssl_min_protocol_version"),
    ("PGSSLMAXPROTOCOLVERSION", "ssl_max_protocol_version"),
    ("PGGSSENCMODE", "gssencmode"),
    ("PGKRBSRVNAME", "krbsrvname"),
    ("PGGSSLIB", "gsslib"),
    ("PGGSSDELEGATION", "gssdelegation"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGCLIENTENCODING", "client_encoding"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
    ("PGDATESTYLE", "datestyle"),
    ("PGTZ", "timezone"),
    ("PGGEQO", "geqo"),
];

/// libpq's keywords that configure the server session rather than the client, apart
/// from the ones [`Config`] has fields for: they travel in the startup message (the
/// last three only from `PGDATESTYLE`, `PGTZ` and `PGGEQO`).
pub const SESSION_KEYWORDS: &[&str] = &[
    "options",
    "client_encoding",
    "replication",
    "datestyle",
    "timezone",
    "geqo",
];

/// Whether libpq knows `key` as a connection keyword.
pub fn is_libpq_keyword(key: &str) -> bool {
    matches!(
        key,
        "host"
            | "hostaddr"
            | "port"
            | "user"
            | "password"
            | "dbname"
            | "connect_timeout"
            | "sslmode"
            | "application_name"
            | "options"
            | "client_encoding"
            | "replication"
    ) || is_client_keyword(key)
}

/// TCP keepalive settings (`keepalives`, `keepalives_idle`, `keepalives_interval`,
/// `keepalives_count`); `None` leaves the operating system's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalives {
    /// Keepalives are on (libpq's default).
    pub enabled: bool,
    /// Seconds of silence before the first probe.
    pub idle: Option<u32>,
    /// Seconds between probes.
    pub interval: Option<u32>,
    /// Probes lost before the connection is given up.
    pub count: Option<u32>,
}

/// Shuffles `items` for `load_balance_hosts=random`; `random(n)` must return a
/// number below `n` (the face brings the randomness: the core has none).
pub fn shuffle<T>(items: &mut [T], mut random: impl FnMut(usize) -> usize) {
    for i in (1..items.len()).rev() {
        let j = random(i + 1).min(i);
        items.swap(i, j);
    }
}

/// One item of a `host=` list, with the port written after it if any: `db:5433`,
/// `[::1]:5433`, or a bare IPv6 address (more than one colon), a socket directory or
/// an abstract socket taken whole (asyncpg reads `host=` and `PGHOST` this way; libpq
/// has no ports there, so nothing it accepts changes meaning).
pub fn split_host_spec(item: &str) -> Result<(Host, Option<u16>), ConfigError> {
    let port = |p: &str| -> Result<Option<u16>, ConfigError> {
        if p.is_empty() {
            return Ok(None);
        }
        p.parse()
            .map(Some)
            .map_err(|_| ConfigError(format!("invalid port: {p:?}")))
    };
    if item.starts_with('/') || item.starts_with('@') {
        return Ok((Host::Unix(item.to_owned()), None));
    }
    if let Some(inner) = item.strip_prefix('[') {
        let bad = || ConfigError(format!("invalid IPv6 address: {item:?}"));
        let (address, tail) = inner.split_once(']').ok_or_else(bad)?;
        let written = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or_else(bad)?),
        };
        return Ok((Host::Tcp(address.to_owned()), port(written.unwrap_or(""))?));
    }
    match item.split_once(':') {
        Some((host, p)) if !p.contains(':') => Ok((Host::Tcp(host.to_owned()), port(p)?)),
        _ => Ok((Host::Tcp(item.to_owned()), None)),
    }
}

/// The scheme of a string that looks like a URI (`name://...`), which a keyword DSN
/// never does: a keyword is followed by `=` before any `:`.
fn uri_scheme(dsn: &str) -> Option<&str> {
    let (scheme, _) = dsn.split_once("://")?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_ports(value: &str) -> Result<Vec<u16>, ConfigError> {
    value
        .split(',')
        .map(|p| {
            let p = p.trim();
            if p.is_empty() {
                Ok(DEFAULT_PORT)
            } else {
                p.parse()
                    .map_err(|_| ConfigError(format!("invalid port {p:?}")))
            }
        })
        .collect()
}

fn parse_timeout(value: &str) -> Result<f64, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError(format!("invalid connect_timeout {value:?}")))
}

fn percent_decode(s: &str) -> Result<String, ConfigError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConfigError(format!("invalid percent-encoding in {s:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConfigError(format!("{s:?} is not UTF-8 once decoded")))
}

fn parse_uri(rest: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let (before_query, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (before_query, None),
    };
    // libpq ends the user information at the first '@' (an '@' in a password must be
    // percent-encoded), and so does asyncpg.
    let hostspec = match authority.split_once('@') {
        Some((userinfo, hosts)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                cfg.user = Some(percent_decode(user)?);
            }
            if let Some(p) = password {
                cfg.password = Some(percent_decode(p)?);
            }
            hosts
        }
        None => authority,
    };
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for part in hostspec.split(',').filter(|p| !p.is_empty()) {
        let (host, port) = if let Some(inner) = part.strip_prefix('[') {
            let (h, tail) = inner
                .split_once(']')
                .ok_or_else(|| ConfigError(format!("unterminated IPv6 address in {part:?}")))?;
            (h.to_owned(), tail.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((h, p)) => (percent_decode(h)?, Some(p)),
                None => (percent_decode(part)?, None),
            }
        };
        if !host.is_empty() {
            hosts.push(Host::from_libpq(&host));
        }
        if let Some(p) = port {
            // Percent-encoding is allowed anywhere in a URI, the port included.
            let p = percent_decode(p)?;
            ports.push(
                p.parse()
                    .map_err(|_| ConfigError(format!("invalid port {p:?}")))?,
            );
        } else {
            ports.push(DEFAULT_PORT);
        }
    }
    cfg.hosts = hosts;
    if ports.iter().any(|p| *p != DEFAULT_PORT) {
        cfg.ports = ports;
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        cfg.database = Some(percent_decode(db)?);
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            cfg.set(&percent_decode(k)?, percent_decode(v)?)?;
        }
    }
    Ok(cfg)
}

fn parse_keywords(s: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(ConfigError(format!(
                "missing \"=\" after {key:?} in connection info string"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(ConfigError(
                            "unterminated quoted string in connection info string".into(),
                        ))
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        cfg.set(&key, value)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_with_everything() {
        let c = Config::parse(
            "postgresql://us%40r:p%3Ass@[::1]:5433,db2:5434/my%20db?sslmode=disable&search_path=x",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("us@r"));
        assert_eq!(c.password.as_deref(), Some("p:ss"));
        assert_eq!(
            c.hosts,
            vec![Host::Tcp("::1".into()), Host::Tcp("db2".into())]
        );
        assert_eq!(c.ports, vec![5433, 5434]);
        assert_eq!(c.database.as_deref(), Some("my db"));
        assert_eq!(c.sslmode.as_deref(), Some("disable"));
        assert_eq!(c.server_settings, vec![("search_path".into(), "x".into())]);
    }

    #[test]
    fn uri_with_socket_host_in_query() {
        let c = Config::parse("postgres:///db?host=/tmp/sock&port=6000").unwrap();
        assert_eq!(c.hosts, vec![Host::Unix("/tmp/sock".into())]);
        assert_eq!(c.ports, vec![6000]);
        assert_eq!(
            c.addresses(|_| false).unwrap(),
            vec![(Host::Unix("/tmp/sock".into()), 6000)]
        );
    }

    #[test]
    fn user_information_ends_at_the_first_at_sign() {
        let c = Config::parse("postgresql://user:p@ss@host/db").unwrap();
        assert_eq!(c.password.as_deref(), Some("p"));
        assert_eq!(c.hosts, vec![Host::Tcp("ss@host".into())]);
        let c = Config::parse("postgresql://user:p%40ss@host/db").unwrap();
        assert_eq!(c.password.as_deref(), Some("p@ss"));
    }

    #[test]
    fn other_uri_schemes_are_refused() {
        let e = Config::parse("pq:///dbname?host=/sock").unwrap_err();
        assert!(e.0.starts_with("invalid DSN: scheme"), "{e:?}");
        assert!(Config::parse("host=a options='-c x=y://z'").is_ok());
    }

    #[test]
    fn percent_encoded_uri_parts() {
        let c = Config::parse("postgresql://us%40r@h%40st1,h%40st2:543%33/d%62").unwrap();
        assert_eq!(
            c.hosts,
            vec![Host::Tcp("h@st1".into()), Host::Tcp("h@st2".into())]
        );
        assert_eq!(c.ports, vec![DEFAULT_PORT, 5433]);
        assert_eq!(c.database.as_deref(), Some("db"));
    }

    #[test]
    fn bracketed_ipv6_hosts_in_query() {
        let c = Config::parse("postgresql:///db?host=[2001:db8::1234],[::1]").unwrap();
        assert_eq!(
            c.hosts,
            vec![Host::Tcp("2001:db8::1234".into()), Host::Tcp("::1".into())]
        );
    }

    #[test]
    fn keyword_dsn() {
        let c = Config::parse("host=localhost port = 5433 user='a b' password='it\\'s' dbname=x")
            .unwrap();
        assert_eq!(c.hosts, vec![Host::Tcp("localhost".into())]);
        assert_eq!(c.ports, vec![5433]);
        assert_eq!(c.user.as_deref(), Some("a b"));
        assert_eq!(c.password.as_deref(), Some("it's"));
        assert!(Config::parse("host").is_err());
        assert!(Config::parse("port=abc").is_err());
    }

    #[test]
    fn env_fills_gaps_only() {
        let mut c = Config::parse("user=a").unwrap();
        c.apply_env(|k| match k {
            "PGUSER" => Some("b".into()),
            "PGPORT" => Some("7000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("a"));
        assert_eq!(c.ports, vec![7000]);
    }

    #[test]
    fn mismatched_ports_are_an_error() {
        let c = Config::parse("host=a,b,c port=1,2").unwrap();
        assert!(c.addresses(|_| false).is_err());
    }

    #[test]
    fn default_hosts_are_the_socket_directories_holding_the_port_then_localhost() {
        assert_eq!(
            default_hosts(5432, |_| false),
            vec![Host::Tcp("localhost".into())]
        );
        let hosts = default_hosts(5433, |path| path == "/tmp/.s.PGSQL.5433");
        assert_eq!(
            hosts,
            vec![Host::Unix("/tmp".into()), Host::Tcp("localhost".into())]
        );
    }

    #[test]
    fn every_pg_variable_fills_its_keyword() {
        for (var, key) in ENV_VARS {
            let mut c = Config::default();
            let value = if *key == "port" || *key == "connect_timeout" {
                "7"
            } else {
                "v"
            };
            c.apply_env(|k| (k == *var).then(|| value.to_owned()))
                .unwrap();
            let set = match *key {
                "host" | "hostaddr" => !c.hosts.is_empty(),
                "port" => c.ports == [7],
                "dbname" => c.database.as_deref() == Some("v"),
                "user" => c.user.as_deref() == Some("v"),
                "password" => c.password.as_deref() == Some("v"),
                "connect_timeout" => c.connect_timeout == Some(7.0),
                "sslmode" => c.sslmode.as_deref() == Some("v"),
                "application_name" => c.application_name.as_deref() == Some("v"),
                k if is_client_keyword(k) => c.client_option(k) == Some("v"),
                k => c.server_settings == [(k.to_owned(), "v".to_owned())],
            };
            assert!(set, "{var} did not set {key}: {c:?}");
            assert!(
                is_libpq_keyword(key) || SESSION_KEYWORDS.contains(key),
                "{key}"
            );
        }
        // What the connection string set stays; an empty variable counts as unset.
        let mut c = Config::parse("target_session_attrs=primary").unwrap();
        c.apply_env(|k| match k {
            "PGTARGETSESSIONATTRS" => Some("standby".into()),
            "PGUSER" => Some(String::new()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.client_option("target_session_attrs"), Some("primary"));
        assert_eq!(c.user, None);
    }

    #[test]
    fn a_service_fills_what_the_string_left_before_the_environment() {
        let mut c = Config::parse("service=shop user=me").unwrap();
        let params = service::lookup("[shop]\nhost=db\nuser=them\nport=5433\n", "shop")
            .unwrap()
            .unwrap();
        c.apply_service(&params).unwrap();
        c.apply_env(|k| (k == "PGHOST").then(|| "other".to_owned()))
            .unwrap();
        assert_eq!(c.hosts, vec![Host::Tcp("db".into())]);
        assert_eq!(c.user.as_deref(), Some("me"));
        assert_eq!(c.ports, vec![5433]);
        let bad = vec![("colour".to_owned(), "blue".to_owned())];
        assert!(c.apply_service(&bad).unwrap_err().0.contains("colour"));
    }

    #[test]
    fn keys_libpq_does_not_know_are_listed() {
        let c = Config::parse("host=h options=-cx=1 colour=blue client_encoding=UTF8").unwrap();
        assert_eq!(c.unknown_keys().collect::<Vec<_>>(), ["colour"]);
    }

    #[test]
    fn client_decisions() {
        let c = Config::parse(
            "load_balance_hosts=random keepalives_idle=30 target_session_attrs=standby",
        )
        .unwrap();
        assert!(c.load_balance_hosts().unwrap());
        assert_eq!(
            c.target_session_attrs().unwrap(),
            session::TargetSessionAttrs::Standby
        );
        let k = c.keepalives().unwrap();
        assert!(k.enabled);
        assert_eq!((k.idle, k.interval, k.count), (Some(30), None, None));
        assert!(
            !Config::parse("keepalives=0")
                .unwrap()
                .keepalives()
                .unwrap()
                .enabled
        );
        assert!(Config::parse("keepalives_count=x")
            .unwrap()
            .keepalives()
            .is_err());
        assert!(Config::parse("load_balance_hosts=yes")
            .unwrap()
            .load_balance_hosts()
            .is_err());
        assert!(Config::parse("target_session_attrs=master")
            .unwrap()
            .target_session_attrs()
            .is_err());
        assert_eq!(
            Config::parse("sslmode=require sslnegotiation=direct")
                .unwrap()
                .sslnegotiation()
                .unwrap(),
            SslNegotiation::Direct
        );
        assert!(Config::parse("sslnegotiation=direct")
            .unwrap()
            .sslnegotiation()
            .is_err());
        assert_eq!(
            default_tls_file(Some("/home/u"), "root.crt").as_deref(),
            Some("/home/u/.postgresql/root.crt")
        );
    }

    #[test]
    fn shuffle_is_a_permutation_driven_by_the_callers_randomness() {
        let mut v: Vec<u32> = (0..6).collect();
        shuffle(&mut v, |_| 0);
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..6).collect::<Vec<_>>());
        assert_ne!(v, (0..6).collect::<Vec<_>>());
        let mut same: Vec<u32> = (0..6).collect();
        shuffle(&mut same, |n| n - 1);
        assert_eq!(same, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn client_keywords_are_never_server_settings() {
        let c = Config::parse(
            "host=h target_session_attrs=read-write keepalives=1 sslrootcert=/r search_path=x",
        )
        .unwrap();
        assert_eq!(c.server_settings, vec![("search_path".into(), "x".into())]);
        assert_eq!(
            c.client_options,
            vec![
                ("target_session_attrs".into(), "read-write".into()),
                ("keepalives".into(), "1".into()),
                ("sslrootcert".into(), "/r".into()),
            ]
        );
        let c = Config::parse("postgresql://h/db?passfile=/p&application_name=a").unwrap();
        assert_eq!(c.client_options, vec![("passfile".into(), "/p".into())]);
        assert!(c.server_settings.is_empty());
    }
}
