//! Connection settings: parsed from a libpq URI or keyword/value string, or built
//! with setters, with libpq's `PG*` environment fallback.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ferropg_core::auth::ChannelBindingMode;
use ferropg_core::config::{self as core, Environment};
use ferropg_core::conn::StartupParams;

use crate::environment::Process;

pub use ferropg_core::config::session::TargetSessionAttrs;
pub use ferropg_core::config::Host;

/// libpq's client options the Rust face implements; [`Config::parse`] refuses the
/// others. (`host`, `port`, `user`, `password`, `dbname`, `connect_timeout`,
/// `sslmode`, `application_name` and `options` are read as well.)
pub const SUPPORTED_OPTIONS: &[&str] = &[
    "channel_binding",
    "fallback_application_name",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "load_balance_hosts",
    "passfile",
    "service",
    "servicefile",
    "sslcert",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslnegotiation",
    "sslrootcert",
    "target_session_attrs",
];

/// Refuses a client option the Rust face does not implement, and values of the
/// implemented ones that are invalid or that it cannot honour.
fn check_supported(config: &core::Config) -> Result<(), Error> {
    for (key, _) in &config.client_options {
        if !SUPPORTED_OPTIONS.contains(&key.as_str()) {
            return Err(Error::config(format!(
                "the connection option {key} is not supported by ferropg's Rust client yet"
            )));
        }
    }
    let invalid = |e: core::ConfigError| Error::config(e.0);
    channel_binding(config)?;
    config.target_session_attrs().map_err(invalid)?;
    config.load_balance_hosts().map_err(invalid)?;
    config.keepalives().map_err(invalid)?;
    config.ssl_mode().map_err(invalid)?;
    config.sslnegotiation().map_err(invalid)?;
    Ok(())
}

/// `channel_binding` (default `prefer`).
fn channel_binding(config: &core::Config) -> Result<ChannelBindingMode, Error> {
    config
        .client_option("channel_binding")
        .map_or(Ok(ChannelBindingMode::Prefer), ChannelBindingMode::parse)
        .map_err(Error::config)
}

/// Randomness for `load_balance_hosts=random`: the standard library's randomly
/// keyed hasher, stepped with xorshift.
struct Random(u64);

impl Random {
    fn new() -> Random {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Random(seed | 1)
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

use crate::tls::{Tls, TlsSettings};
use crate::Error;
use tokio_rustls::rustls::ClientConfig;

/// Connection settings.
///
/// ```
/// use ferropg::Config;
///
/// let from_uri: Config = "postgresql://app:secret@db.example:5433/shop".parse()?;
/// let from_keywords = Config::parse("host=db.example port=5433 user=app password=secret dbname=shop")?;
/// let mut built = Config::new();
/// built.host("db.example").port(5433).user("app").password("secret").dbname("shop");
/// assert_eq!(from_uri, from_keywords);
/// assert_eq!(from_uri, built);
/// # Ok::<(), ferropg::Error>(())
/// ```
///
/// [`connect`](crate::connect) fills every setting still unset from the `PG*`
/// environment variables (as libpq does), then uses the defaults: the user is
/// `$USER`, the database the user's name, the host the usual Unix socket
/// directories and then `localhost`, the port 5432.
///
/// TLS over TCP follows libpq's `sslmode` (default `prefer`): `disable`; `allow`
/// and `prefer` try without TLS first or with it first, and the other way once if
/// the server turns the first away before authentication; `require` insists on TLS
/// but checks no certificate, unless a root certificate is there; `verify-ca`
/// checks the chain; `verify-full` the chain and the host name. The files come
/// from `sslrootcert`, `sslcert`, `sslkey`, `sslcrl` and `sslcrldir` (or
/// `PGSSLROOTCERT`, `PGSSLCERT`, ...), else `~/.postgresql/root.crt`,
/// `postgresql.crt`, `postgresql.key` and `root.crl`. `sslrootcert=system` trusts
/// the platform's roots instead and makes `verify-full` the default and the only
/// mode allowed; `sslnegotiation=direct` starts TLS without an SSLRequest
/// (PostgreSQL 17). [`tls_config`](Config::tls_config) replaces the files with a
/// rustls configuration of one's own. Unix sockets never use TLS. A connection
/// that uses TLS sends its cancel requests over TLS too, started the same way. The
/// crate docs' "TLS" section says more.
///
/// Settings of the client itself, not sent to the server: the statement cache
/// ([`statement_cache_size`](Config::statement_cache_size),
/// [`max_cached_statement_lifetime`](Config::max_cached_statement_lifetime),
/// [`max_cacheable_statement_size`](Config::max_cacheable_statement_size), with
/// asyncpg's defaults) and the [`command_timeout`](Config::command_timeout).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    inner: core::Config,
    client: ClientSettings,
    tls_config: Option<CallerTls>,
}

/// The caller's rustls configuration; two are equal when they are the same one.
#[derive(Clone)]
struct CallerTls(Arc<ClientConfig>);

impl PartialEq for CallerTls {
    fn eq(&self, other: &CallerTls) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for CallerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientConfig { .. }")
    }
}

/// The settings a [`Connection`](crate::Connection) keeps for itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClientSettings {
    pub(crate) statement_cache_size: usize,
    pub(crate) max_cached_statement_lifetime: Duration,
    pub(crate) max_cacheable_statement_size: usize,
    pub(crate) command_timeout: Option<Duration>,
}

/// asyncpg's default statement cache size.
const DEFAULT_STATEMENT_CACHE_SIZE: usize = 100;
/// asyncpg's default statement lifetime in the cache.
const DEFAULT_MAX_CACHED_STATEMENT_LIFETIME: Duration = Duration::from_secs(300);
/// asyncpg's default for the longest query text that is cached.
const DEFAULT_MAX_CACHEABLE_STATEMENT_SIZE: usize = 15 * 1024;

impl Default for ClientSettings {
    fn default() -> ClientSettings {
        ClientSettings {
            statement_cache_size: DEFAULT_STATEMENT_CACHE_SIZE,
            max_cached_statement_lifetime: DEFAULT_MAX_CACHED_STATEMENT_LIFETIME,
            max_cacheable_statement_size: DEFAULT_MAX_CACHEABLE_STATEMENT_SIZE,
            command_timeout: None,
        }
    }
}

impl Config {
    /// Empty settings: everything comes from the environment and the defaults.
    pub fn new() -> Config {
        Config::default()
    }

    /// Parses a `postgresql://` (or `postgres://`) URI or a libpq `key=value` string.
    ///
    /// As in libpq, a key that is not a connection option is an error naming it;
    /// run-time settings go through `options` or
    /// [`server_setting`](Config::server_setting). Of libpq's client options, those
    /// in [`SUPPORTED_OPTIONS`] are implemented; another one is refused rather than
    /// ignored.
    pub fn parse(dsn: &str) -> Result<Config, Error> {
        let inner = core::Config::parse(dsn).map_err(|e| Error::config(e.0))?;
        if let Some(key) = inner.unknown_keys().next() {
            return Err(Error::config(format!(
                "invalid connection option \"{key}\""
            )));
        }
        check_supported(&inner)?;
        Ok(Config::from(inner))
    }

    /// Adds a host, tried in order. A value starting with `/` is the directory of a
    /// Unix socket.
    pub fn host(&mut self, host: &str) -> &mut Config {
        self.inner.hosts.push(Host::from_libpq(host));
        self
    }

    /// Adds a Unix socket directory, tried in order with the other hosts.
    pub fn host_path(&mut self, dir: impl AsRef<Path>) -> &mut Config {
        let dir = dir.as_ref().to_string_lossy().into_owned();
        self.inner.hosts.push(Host::Unix(dir));
        self
    }

    /// Adds a port: one port for every host, or one port per host in order.
    pub fn port(&mut self, port: u16) -> &mut Config {
        self.inner.ports.push(port);
        self
    }

    /// Sets the role to log in as.
    pub fn user(&mut self, user: &str) -> &mut Config {
        self.inner.user = Some(user.to_owned());
        self
    }

    /// Sets the password, for the methods that need one.
    pub fn password(&mut self, password: &str) -> &mut Config {
        self.inner.password = Some(password.to_owned());
        self
    }

    /// Sets the database; the server defaults it to the user's name.
    pub fn dbname(&mut self, dbname: &str) -> &mut Config {
        self.inner.database = Some(dbname.to_owned());
        self
    }

    /// Sets `application_name`.
    pub fn application_name(&mut self, name: &str) -> &mut Config {
        self.inner.application_name = Some(name.to_owned());
        self
    }

    /// Sets the time allowed to connect to each host, authentication included.
    /// A zero duration means no limit.
    pub fn connect_timeout(&mut self, timeout: Duration) -> &mut Config {
        self.inner.connect_timeout = Some(timeout.as_secs_f64());
        self
    }

    /// Sets the `sslmode` (see the type's documentation for what is supported).
    pub fn sslmode(&mut self, mode: &str) -> &mut Config {
        self.inner.sslmode = Some(mode.to_owned());
        self
    }

    /// Makes TLS connections with `config`, the caller's own rustls configuration,
    /// instead of one built from `sslrootcert`, `sslcert`, `sslkey`, `sslcrl` and
    /// `sslcrldir`, which are then not read: the certificate checks, the client
    /// certificate, the protocol versions and the crypto provider are the
    /// config's. `sslmode` still decides whether TLS is used (`disable`: never;
    /// `allow`/`prefer`: with the same fallbacks; `require` and stronger: TLS or
    /// nothing), and `sslnegotiation` how it starts. The config's ALPN protocols
    /// are replaced by `postgresql`, which direct TLS needs. SCRAM channel binding
    /// binds to the certificate the server presents, whatever checked it.
    ///
    /// Name the types through [`crate::rustls`], the version ferropg uses.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use ferropg::rustls::{ClientConfig, RootCertStore};
    ///
    /// # fn f(roots: RootCertStore) -> Result<(), ferropg::Error> {
    /// let tls = ClientConfig::builder()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let mut config: ferropg::Config = "host=db.example sslmode=require".parse()?;
    /// config.tls_config(Arc::new(tls));
    /// # Ok(()) }
    /// ```
    pub fn tls_config(&mut self, config: Arc<ClientConfig>) -> &mut Config {
        self.tls_config = Some(CallerTls(config));
        self
    }

    /// The caller's rustls configuration, if one was given
    /// ([`tls_config`](Config::tls_config)).
    pub fn get_tls_config(&self) -> Option<&Arc<ClientConfig>> {
        self.tls_config.as_ref().map(|c| &c.0)
    }

    /// Sends a run-time setting in the startup message (`search_path`, `TimeZone`,
    /// `options`, ...).
    pub fn server_setting(&mut self, name: &str, value: &str) -> &mut Config {
        let settings = &mut self.inner.server_settings;
        match settings.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => settings.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Sets how many statements the per-connection statement cache keeps (default
    /// 100). Query methods given SQL text then prepare it once as a named
    /// statement and reuse it, least recently used first out. 0 turns the cache
    /// off: SQL text is sent as the unnamed statement and parsed again every time,
    /// which is what a pooler in transaction mode (pgbouncer) needs.
    pub fn statement_cache_size(&mut self, size: usize) -> &mut Config {
        self.client.statement_cache_size = size;
        self
    }

    /// Sets how long a cached statement is kept, counted from when it was
    /// prepared, not from its last use (default 300 s; zero: no limit).
    pub fn max_cached_statement_lifetime(&mut self, lifetime: Duration) -> &mut Config {
        self.client.max_cached_statement_lifetime = lifetime;
        self
    }

    /// Sets the longest query text, in characters, that the statement cache takes
    /// (default 15 KiB, as asyncpg; 0: no limit). Longer queries are sent as the
    /// unnamed statement.
    pub fn max_cacheable_statement_size(&mut self, chars: usize) -> &mut Config {
        self.client.max_cacheable_statement_size = chars;
        self
    }

    /// Sets the initial [`Connection::set_timeout`](crate::Connection::set_timeout)
    /// of connections made with these settings: how long each call may wait for
    /// the server before its query is cancelled. A zero duration means no limit
    /// (the default).
    pub fn command_timeout(&mut self, timeout: Duration) -> &mut Config {
        self.client.command_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// The statement cache size (0: no cache).
    pub fn get_statement_cache_size(&self) -> usize {
        self.client.statement_cache_size
    }

    /// The longest a statement stays cached (zero: no limit).
    pub fn get_max_cached_statement_lifetime(&self) -> Duration {
        self.client.max_cached_statement_lifetime
    }

    /// The longest query text the cache takes, in characters (0: no limit).
    pub fn get_max_cacheable_statement_size(&self) -> usize {
        self.client.max_cacheable_statement_size
    }

    /// The command timeout; `None` means no limit.
    pub fn get_command_timeout(&self) -> Option<Duration> {
        self.client.command_timeout
    }

    /// The client-side settings, for a new connection.
    pub(crate) fn client_settings(&self) -> ClientSettings {
        self.client
    }

    /// Fills the settings still unset from libpq's `PG*` environment variables
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGPASSFILE`,
    /// `PGTARGETSESSIONATTRS`, `PGSSLMODE`, ...: the list is
    /// `ferropg_core::config::ENV_VARS`). [`connect`](crate::connect) does this on
    /// its own copy of the settings, after the connection service.
    pub fn apply_env(&mut self) -> Result<&mut Config, Error> {
        self.inner
            .apply_env(|name| Process.var(name))
            .map_err(|e| Error::config(e.0))?;
        Ok(self)
    }

    /// Fills the settings still unset from the connection service named by
    /// `service=` (or `PGSERVICE`), read from `servicefile=`, else `PGSERVICEFILE`
    /// or `~/.pg_service.conf`, then `$PGSYSCONFDIR/pg_service.conf`. Nothing to do
    /// without a service; a service defined nowhere is an error.
    /// [`connect`](crate::connect) does this on its own copy of the settings.
    pub fn apply_service(&mut self) -> Result<&mut Config, Error> {
        let found = core::service_settings(std::slice::from_ref(&self.inner), &Process)
            .map_err(|e| Error::config(e.0))?;
        if let Some(params) = found {
            self.inner
                .apply_service(&params)
                .map_err(|e| Error::config(e.0))?;
            check_supported(&self.inner)?;
        }
        Ok(self)
    }

    /// These settings with the connection service's and the `PG*` variables'
    /// filled in ([`ferropg_core::config::resolve`]): what a connection uses.
    pub(crate) fn resolved(&self) -> Result<Config, Error> {
        let inner = core::resolve(std::slice::from_ref(&self.inner), &Process)
            .map_err(|e| Error::config(e.0))?;
        check_supported(&inner)?;
        Ok(Config {
            inner,
            client: self.client,
            tls_config: self.tls_config.clone(),
        })
    }

    /// The hosts, in order.
    pub fn get_hosts(&self) -> &[Host] {
        &self.inner.hosts
    }

    /// The ports, in order.
    pub fn get_ports(&self) -> &[u16] {
        &self.inner.ports
    }

    /// The user, if set.
    pub fn get_user(&self) -> Option<&str> {
        self.inner.user.as_deref()
    }

    /// The password, if set.
    pub fn get_password(&self) -> Option<&str> {
        self.inner.password.as_deref()
    }

    /// The database, if set.
    pub fn get_dbname(&self) -> Option<&str> {
        self.inner.database.as_deref()
    }

    /// The connect timeout; `None` when unset or not positive (no limit).
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.inner
            .connect_timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
    }

    /// The parsed settings as the sans-IO core holds them.
    pub fn as_core(&self) -> &core::Config {
        &self.inner
    }

    /// Connects with these settings; the same as [`crate::connect`].
    pub async fn connect(&self) -> Result<crate::Connection, Error> {
        crate::connect(self).await
    }

    /// The `(host, port)` pairs to try, in order (shuffled for
    /// `load_balance_hosts=random`).
    pub(crate) fn addresses(&self) -> Result<Vec<(Host, u16)>, Error> {
        let mut addresses = self
            .inner
            .addresses(|path| Process.socket_exists(path))
            .map_err(|e| Error::config(e.0))?;
        if self
            .inner
            .load_balance_hosts()
            .map_err(|e| Error::config(e.0))?
        {
            let mut random = Random::new();
            core::shuffle(&mut addresses, |n| random.below(n));
        }
        Ok(addresses)
    }

    /// `target_session_attrs`.
    pub(crate) fn target_session_attrs(&self) -> Result<TargetSessionAttrs, Error> {
        self.inner
            .target_session_attrs()
            .map_err(|e| Error::config(e.0))
    }

    /// The TCP keepalive settings.
    pub(crate) fn keepalives(&self) -> Result<core::Keepalives, Error> {
        self.inner.keepalives().map_err(|e| Error::config(e.0))
    }

    /// The TLS settings (the DSN's, else the `PGSSL*` variables'), with the
    /// connector built for them.
    pub(crate) fn tls(&self) -> Result<Tls, Error> {
        let invalid = |e: core::ConfigError| Error::config(e.0);
        let file = |key: &str| {
            self.inner
                .client_option(key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Tls::new(&TlsSettings {
            mode: self.inner.ssl_mode().map_err(invalid)?,
            negotiation: self.inner.sslnegotiation().map_err(invalid)?,
            root_cert: self.inner.sslrootcert(),
            cert: file("sslcert"),
            key: file("sslkey"),
            crl: file("sslcrl"),
            crl_dir: file("sslcrldir"),
            client_config: self.tls_config.as_ref().map(|c| Arc::clone(&c.0)),
        })
    }

    /// The password the password file gives for `user` at `host`:`port`, when no
    /// password is set: the file is `passfile=`, else `$PGPASSFILE`, else
    /// `~/.pgpass`; like libpq, one that others may read is ignored. Its rules are
    /// the core's (`ferropg_core::config::passfile`).
    pub(crate) fn passfile_password(&self, host: &Host, port: u16, user: &str) -> Option<String> {
        // A file that is not used is passed over in silence: a library has no
        // terminal to warn on.
        let entries = core::passfile_entries(&self.inner, &Process).ok()??;
        let host = match host {
            Host::Unix(_) => "localhost",
            Host::Tcp(h) => h.as_str(),
        };
        let database = self.inner.database.as_deref().unwrap_or(user);
        core::passfile::lookup(&entries, host, port, database, user).map(str::to_owned)
    }

    /// The startup message's contents: the user (falling back to `$USER`), the
    /// database, the password and the run-time settings, with `client_encoding`
    /// forced to UTF8 (text values are decoded as UTF-8).
    pub(crate) fn startup_params(&self) -> Result<StartupParams, Error> {
        let c = &self.inner;
        let user = match &c.user {
            Some(u) => u.clone(),
            None => ["USER", "LOGNAME"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
                .ok_or_else(|| {
                    Error::config("no user name given and neither $PGUSER nor $USER is set")
                })?,
        };
        let mut options: Vec<(String, String)> = Vec::new();
        let app = c
            .application_name
            .as_deref()
            .or_else(|| c.client_option("fallback_application_name"));
        if let Some(app) = app {
            options.push(("application_name".into(), app.to_owned()));
        }
        for (name, value) in &c.server_settings {
            if name.eq_ignore_ascii_case("client_encoding") || core::is_client_keyword(name) {
                continue;
            }
            options.push((name.clone(), value.clone()));
        }
        options.push(("client_encoding".into(), "UTF8".into()));
        Ok(StartupParams {
            user,
            database: c.database.clone(),
            password: c.password.clone(),
            options,
            channel_binding: channel_binding(c)?,
        })
    }
}

impl From<core::Config> for Config {
    /// Wraps parsed libpq settings, with the default client settings.
    fn from(inner: core::Config) -> Config {
        Config {
            inner,
            client: ClientSettings::default(),
            tls_config: None,
        }
    }
}

impl FromStr for Config {
    type Err = Error;

    fn from_str(s: &str) -> Result<Config, Error> {
        Config::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn uri_keywords_and_builder_agree() {
        let a: Config = "postgres://u:p@h:6000/d?application_name=x"
            .parse()
            .unwrap();
        let b = Config::parse("host=h port=6000 user=u password=p dbname=d application_name=x")
            .unwrap();
        let mut c = Config::new();
        c.host("h")
            .port(6000)
            .user("u")
            .password("p")
            .dbname("d")
            .application_name("x");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.get_hosts(), &[Host::Tcp("h".into())]);
        assert_eq!(a.get_ports(), &[6000]);
        assert_eq!(a.get_user(), Some("u"));
        assert_eq!(a.get_password(), Some("p"));
        assert_eq!(a.get_dbname(), Some("d"));
    }

    #[test]
    fn socket_dirs_and_timeouts() {
        let mut c = Config::new();
        c.host("/tmp/x")
            .host_path("/run/y")
            .connect_timeout(Duration::ZERO);
        assert_eq!(
            c.get_hosts(),
            &[Host::Unix("/tmp/x".into()), Host::Unix("/run/y".into())]
        );
        assert_eq!(c.get_connect_timeout(), None);
        c.connect_timeout(Duration::from_millis(1500));
        assert_eq!(c.get_connect_timeout(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn client_settings_default_to_asyncpg_values() {
        let mut c = Config::new();
        assert_eq!(c.get_statement_cache_size(), 100);
        assert_eq!(
            c.get_max_cached_statement_lifetime(),
            Duration::from_secs(300)
        );
        assert_eq!(c.get_max_cacheable_statement_size(), 15 * 1024);
        assert_eq!(c.get_command_timeout(), None);
        c.statement_cache_size(0)
            .max_cached_statement_lifetime(Duration::ZERO)
            .max_cacheable_statement_size(10)
            .command_timeout(Duration::from_millis(250));
        assert_eq!(c.get_statement_cache_size(), 0);
        assert_eq!(c.get_max_cached_statement_lifetime(), Duration::ZERO);
        assert_eq!(c.get_max_cacheable_statement_size(), 10);
        assert_eq!(c.get_command_timeout(), Some(Duration::from_millis(250)));
        c.command_timeout(Duration::ZERO);
        assert_eq!(c.get_command_timeout(), None);
        // They are part of equality, and a parsed DSN starts from the defaults.
        assert_ne!(c, Config::new());
        assert_eq!(
            Config::parse("host=h").unwrap().get_statement_cache_size(),
            100
        );
    }

    #[test]
    fn bad_dsn_is_a_config_error() {
        let err = Config::parse("host").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(
            Config::parse("port=x").unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn startup_params_force_utf8() {
        let mut c = Config::parse("user=u dbname=d client_encoding=LATIN1").unwrap();
        c.server_setting("search_path", "s");
        let p = c.startup_params().unwrap();
        assert_eq!(p.user, "u");
        assert_eq!(p.database.as_deref(), Some("d"));
        assert!(p.options.contains(&("search_path".into(), "s".into())));
        assert!(p
            .options
            .contains(&("client_encoding".into(), "UTF8".into())));
        assert!(!p.options.iter().any(|(_, v)| v == "LATIN1"));
    }

    #[test]
    fn sslmodes_and_their_files() {
        for mode in ["disable", "allow", "prefer", "require"] {
            let c = Config::parse(&format!("sslmode={mode}")).unwrap();
            assert!(c.tls().is_ok(), "{mode}");
        }
        let err = Config::parse("sslmode=sometimes").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        // A mode set later is checked when the connector is built.
        let err = Config::new().sslmode("sometimes").tls().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let err = Config::parse("sslrootcert=system sslmode=verify-ca").unwrap_err();
        assert!(err.to_string().contains("weak sslmode"), "{err}");
        let err = Config::parse("sslmode=verify-ca sslrootcert=/nonexistent/root.crt")
            .unwrap()
            .tls()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        // The file options are the client's: never sent as settings.
        let c = Config::parse("user=u sslrootcert=/r sslcert=/c sslkey=/k").unwrap();
        let p = c.startup_params().unwrap();
        assert!(!p.options.iter().any(|(k, _)| k.starts_with("ssl")));
    }

    #[test]
    fn client_keywords_this_face_lacks_are_refused_not_sent() {
        for dsn in [
            "postgresql://h/db?gssencmode=disable",
            "host=h require_auth=password",
        ] {
            let err = Config::parse(dsn).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{dsn}");
            assert!(err.to_string().contains("not supported"), "{dsn}: {err}");
        }
        // The ones it implements are the client's: never sent to the server.
        let c = Config::parse(
            "host=h user=u options='-c search_path=x' passfile=/p target_session_attrs=primary \
             keepalives=1 load_balance_hosts=random service=s",
        )
        .unwrap();
        let p = c.startup_params().unwrap();
        let sent: Vec<&str> = p.options.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(sent, ["options", "client_encoding"]);
    }
}
