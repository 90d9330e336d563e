//! Connection settings with libpq's semantics: a `postgresql://` URI or a
//! `key=value` string, then the `PG*` environment for whatever is still unset.

pub mod passfile;

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

    /// Fills what is still unset from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
    /// `PGDATABASE`, `PGCONNECT_TIMEOUT`, `PGSSLMODE` and `PGAPPNAME`, read through `env`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if self.hosts.is_empty() {
            if let Some(h) = env("PGHOST") {
                self.hosts = split_list(&h).map(Host::from_libpq).collect();
            }
        }
        if self.ports.is_empty() {
            if let Some(p) = env("PGPORT") {
                self.ports = parse_ports(&p)?;
            }
        }
        fill(&mut self.user, env("PGUSER"));
        fill(&mut self.password, env("PGPASSWORD"));
        fill(&mut self.database, env("PGDATABASE"));
        fill(&mut self.sslmode, env("PGSSLMODE"));
        fill(&mut self.application_name, env("PGAPPNAME"));
        if self.connect_timeout.is_none() {
            if let Some(t) = env("PGCONNECT_TIMEOUT") {
                self.connect_timeout = Some(parse_timeout(&t)?);
            }
        }
        Ok(())
    }

    /// The `(host, port)` pairs to try, with libpq's pairing rules and defaults
    /// ([`default_hosts`] when no host is set).
    pub fn addresses(&self) -> Result<Vec<(Host, u16)>, ConfigError> {
        let hosts = if self.hosts.is_empty() {
            default_hosts(self.ports.first().copied().unwrap_or(DEFAULT_PORT))
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
            "host" | "hostaddr" => self.hosts = split_list(&value).map(Host::from_libpq).collect(),
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
/// socket for `port`, then `localhost`. Both faces take this list.
pub fn default_hosts(port: u16) -> Vec<Host> {
    let mut hosts: Vec<Host> = SOCKET_DIRS
        .into_iter()
        .filter(|d| {
            std::path::Path::new(d)
                .join(format!(".s.PGSQL.{port}"))
                .exists()
        })
        .map(|d| Host::Unix(d.to_owned()))
        .collect();
    hosts.push(Host::Tcp("localhost".into()));
    hosts
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
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
            c.addresses().unwrap(),
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
        assert!(c.addresses().is_err());
    }

    #[test]
    fn default_hosts_are_the_socket_directories_holding_the_port_then_localhost() {
        // A port no server here uses, and a socket file for it in /tmp.
        let port = 47_000 + (std::process::id() % 1000) as u16;
        assert_eq!(default_hosts(port), vec![Host::Tcp("localhost".into())]);
        let socket = std::path::Path::new("/tmp").join(format!(".s.PGSQL.{port}"));
        std::fs::write(&socket, b"").unwrap();
        let hosts = default_hosts(port);
        std::fs::remove_file(&socket).unwrap();
        assert_eq!(
            hosts,
            vec![Host::Unix("/tmp".into()), Host::Tcp("localhost".into())]
        );
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
