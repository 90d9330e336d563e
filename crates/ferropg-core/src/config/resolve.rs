//! Settings from every source merged into one [`Config`], in libpq's order of
//! precedence: what the caller gave (a face may have several sources of its own, such
//! as asyncpg's keyword arguments above the DSN), then the connection service, then
//! the `PG*` environment.
//!
//! Still sans-IO: what lies outside the process's memory (variables, files, sockets)
//! is asked of an [`Environment`] the face provides.

use super::{passfile, service, Config, ConfigError, DEFAULT_PORT};

/// What a file is, as far as the password-file rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKind {
    /// A regular file (not a directory, a device, a pipe).
    pub regular: bool,
    /// Its permission bits (`st_mode & 0o777`).
    pub mode: u32,
}

/// The outside world, as connection settings need to see it. Each face answers
/// from its own process (the Python face from `os.environ`, restricted to the
/// variables asyncpg reads).
pub trait Environment {
    /// An environment variable; `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
    /// The home directory, where `~/.pgpass`, `~/.pg_service.conf` and
    /// `~/.postgresql/` live.
    fn home(&self) -> Option<String>;
    /// A file's text: `Ok(None)` when there is no such file, `Err` with the reason
    /// when it exists but cannot be read.
    fn read_file(&self, path: &str) -> Result<Option<String>, String>;
    /// What `path` is; `None` when there is nothing there.
    fn file_kind(&self, path: &str) -> Option<FileKind>;
    /// Whether a Unix socket file exists at `path`.
    fn socket_exists(&self, path: &str) -> bool;
}

/// Merges `given` (highest precedence first), the connection service they or
/// `PGSERVICE` name, and the `PG*` variables ([`super::ENV_VARS`]) into one
/// `Config`: each setting comes from the first source that has it, and the hosts'
/// ports are settled (see [`Config::host_ports`]). A port given as such in the same
/// source as the hosts, or a higher one, wins over ports written into the hosts;
/// the service's and `PGPORT`'s ports only fill in hosts written without one.
pub fn resolve(given: &[Config], env: &impl Environment) -> Result<Config, ConfigError> {
    let mut from_service = Config::default();
    if let Some(params) = service_settings(given, env)? {
        from_service.apply_service(&params)?;
    }
    let mut from_env = Config::default();
    from_env.apply_env(|name| env.var(name))?;
    let mut layers: Vec<&Config> = given.iter().collect();
    layers.push(&from_service);
    layers.push(&from_env);
    // The last two only give defaults for ports written into the hosts.
    merge(&layers, given.len())
}

/// The parameters of the connection service that `given` (or `PGSERVICE`) names:
/// `None` when none is named; an error when no service file defines it, or one
/// cannot be read or parsed.
pub fn service_settings(
    given: &[Config],
    env: &impl Environment,
) -> Result<Option<Vec<(String, String)>>, ConfigError> {
    let option = |key: &str| given.iter().find_map(|c| c.client_option(key));
    let Some(name) = option("service")
        .map(str::to_owned)
        .or_else(|| env.var("PGSERVICE").filter(|s| !s.is_empty()))
    else {
        return Ok(None);
    };
    let home = env.home();
    for file in service::candidates(option("servicefile"), |v| env.var(v), home.as_deref()) {
        let text = match env.read_file(&file) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(why) => {
                return Err(ConfigError(format!(
                    "cannot read service file \"{file}\": {why}"
                )))
            }
        };
        let found = service::lookup(&text, &name)
            .map_err(|e| ConfigError(format!("service file \"{file}\": {e}")))?;
        if found.is_some() {
            return Ok(found);
        }
    }
    Err(ConfigError(format!(
        "definition of service \"{name}\" not found"
    )))
}

/// The password file's entries, read where `config` says (`passfile`, which
/// `PGPASSFILE` fills, else `~/.pgpass`): `Ok(None)` when there is no file, `Err`
/// with the warning to give when it is not used (not a plain file, or others may
/// read it: libpq's rule).
pub fn passfile_entries(
    config: &Config,
    env: &impl Environment,
) -> Result<Option<Vec<passfile::Entry>>, String> {
    let path = match config.client_option("passfile") {
        Some(path) => path.to_owned(),
        None => match env.home() {
            Some(home) => format!("{}/.pgpass", home.trim_end_matches('/')),
            None => return Ok(None),
        },
    };
    let Some(kind) = env.file_kind(&path) else {
        return Ok(None);
    };
    if !kind.regular {
        return Err(format!("password file {path:?} is not a plain file"));
    }
    if kind.mode & 0o077 != 0 {
        return Err(format!(
            "password file {path:?} has group or world access; \
             permissions should be u=rw (0600) or less"
        ));
    }
    Ok(env
        .read_file(&path)
        .ok()
        .flatten()
        .map(|text| passfile::parse(&text)))
}

/// `layers[..explicit]` may set ports that override ports written into the hosts;
/// the layers after them only fill in hosts written without one.
fn merge(layers: &[&Config], explicit: usize) -> Result<Config, ConfigError> {
    let first = |has: &dyn Fn(&Config) -> bool| layers.iter().position(|c| has(c));
    let mut out = Config::default();
    let hosts_at = first(&|c| !c.hosts.is_empty());
    let ports_at = first(&|c| !c.ports.is_empty());
    if let Some(h) = hosts_at {
        out.hosts.clone_from(&layers[h].hosts);
    }
    let written = hosts_at.map_or(&[][..], |h| &layers[h].host_ports[..]);
    let ports_win = match (ports_at, hosts_at) {
        (Some(p), Some(h)) => p <= h && p < explicit,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let defaults = ports_at.map_or(&[][..], |p| &layers[p].ports[..]);
    out.ports = if written.is_empty() || ports_win {
        defaults.to_vec()
    } else {
        let n = out.hosts.len();
        let default = |i: usize| match defaults.len() {
            0 => Ok(DEFAULT_PORT),
            1 => Ok(defaults[0]),
            len if len == n => Ok(defaults[i]),
            len => Err(ConfigError(format!(
                "could not match {len} port numbers to {n} hosts"
            ))),
        };
        written
            .iter()
            .enumerate()
            .map(|(i, p)| p.map_or_else(|| default(i), Ok))
            .collect::<Result<_, _>>()?
    };
    let pick =
        |get: &dyn Fn(&Config) -> Option<&String>| layers.iter().find_map(|c| get(c).cloned());
    out.user = pick(&|c| c.user.as_ref());
    // An empty password is no password (libpq's rule): the next source may give one.
    out.password = pick(&|c| c.password.as_ref().filter(|p| !p.is_empty()));
    out.database = pick(&|c| c.database.as_ref());
    out.sslmode = pick(&|c| c.sslmode.as_ref());
    out.application_name = pick(&|c| c.application_name.as_ref());
    out.connect_timeout = layers.iter().find_map(|c| c.connect_timeout);
    for layer in layers {
        for (key, _) in &layer.client_options {
            if out.client_option(key).is_none() {
                let value = layer.client_option(key).unwrap_or_default().to_owned();
                out.client_options.push((key.clone(), value));
            }
        }
        // A setting given twice in one source is the last one written.
        for (key, value) in layer.server_settings.iter().rev() {
            if !out.server_settings.iter().any(|(k, _)| k == key) {
                out.server_settings.push((key.clone(), value.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Host;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        vars: HashMap<&'static str, &'static str>,
        files: HashMap<String, (u32, &'static str)>,
    }

    impl Environment for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| (*v).to_owned())
        }
        fn home(&self) -> Option<String> {
            Some("/home/u".into())
        }
        fn read_file(&self, path: &str) -> Result<Option<String>, String> {
            Ok(self.files.get(path).map(|(_, text)| (*text).to_owned()))
        }
        fn file_kind(&self, path: &str) -> Option<FileKind> {
            self.files.get(path).map(|(mode, _)| FileKind {
                regular: true,
                mode: *mode,
            })
        }
        fn socket_exists(&self, _: &str) -> bool {
            false
        }
    }

    fn env(vars: &[(&'static str, &'static str)]) -> Fake {
        Fake {
            vars: vars.iter().copied().collect(),
            ..Fake::default()
        }
    }

    fn tcp(hosts: &[&str]) -> Vec<Host> {
        hosts.iter().map(|h| Host::Tcp((*h).to_owned())).collect()
    }

    #[test]
    fn the_first_source_that_has_a_setting_gives_it() {
        let args = Config {
            user: Some("arg".into()),
            ..Config::default()
        };
        let dsn =
            Config::parse("postgresql://dsn:pw@h/db?sslmode=require&work_mem=2MB&work_mem=1MB")
                .unwrap();
        let c = resolve(
            &[args, dsn],
            &env(&[("PGUSER", "env"), ("PGDATABASE", "envdb"), ("PGPORT", "7")]),
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("arg"));
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.database.as_deref(), Some("db"));
        assert_eq!(c.sslmode.as_deref(), Some("require"));
        assert_eq!(c.ports, [7]);
        assert_eq!(c.server_settings, [("work_mem".into(), "1MB".into())]);
    }

    #[test]
    fn ports_written_into_hosts_yield_only_to_ports_given_as_such() {
        let dsn = Config::parse("host=a:1111,b port=5").unwrap();
        assert_eq!(resolve(&[dsn], &env(&[])).unwrap().ports, [5]);

        let dsn = Config::parse("host=a:1111,b").unwrap();
        let c = resolve(&[dsn], &env(&[("PGPORT", "7")])).unwrap();
        assert_eq!(c.hosts, tcp(&["a", "b"]));
        assert_eq!(c.ports, [1111, 7]);

        let c = resolve(&[], &env(&[("PGHOST", "a:1,[::1]:2,::1"), ("PGPORT", "9")])).unwrap();
        assert_eq!(c.hosts, tcp(&["a", "::1", "::1"]));
        assert_eq!(c.ports, [1, 2, 9]);

        let args = Config {
            ports: vec![3],
            ..Config::default()
        };
        let c = resolve(&[args, Config::parse("host=a:1").unwrap()], &env(&[])).unwrap();
        assert_eq!(c.ports, [3]);

        let dsn = Config::parse("host=a:1,b,c port=1,2").unwrap();
        assert_eq!(resolve(&[dsn], &env(&[])).unwrap().ports, [1, 2]);
        let dsn = Config::parse("host=a:1,b,c").unwrap();
        let e = resolve(&[dsn], &env(&[("PGPORT", "1,2")])).unwrap_err();
        assert!(e.0.contains("could not match 2 port numbers to 3 hosts"));
    }

    #[test]
    fn the_service_sits_between_the_caller_and_the_environment() {
        let mut fake = env(&[("PGSERVICEFILE", "/s.conf"), ("PGUSER", "env")]);
        fake.files.insert(
            "/s.conf".into(),
            (0o600, "[svc]\nhost=sh\nuser=su\ndatabase=sd\n"),
        );
        let dsn = Config::parse("service=svc user=du").unwrap();
        let c = resolve(&[dsn], &fake).unwrap();
        assert_eq!(c.hosts, tcp(&["sh"]));
        assert_eq!(c.user.as_deref(), Some("du"));
        assert_eq!(c.database.as_deref(), Some("sd"));

        let e = resolve(&[Config::parse("service=other").unwrap()], &fake).unwrap_err();
        assert_eq!(e.0, "definition of service \"other\" not found");
    }

    #[test]
    fn an_empty_password_lets_the_next_source_give_one() {
        let dsn = Config::parse("password=''").unwrap();
        let c = resolve(&[dsn], &env(&[("PGPASSWORD", "secret")])).unwrap();
        assert_eq!(c.password.as_deref(), Some("secret"));
    }

    #[test]
    fn a_password_file_others_may_read_is_refused() {
        let mut fake = env(&[]);
        fake.files
            .insert("/home/u/.pgpass".into(), (0o644, "*:*:*:*:pw\n"));
        let c = resolve(&[], &fake).unwrap();
        assert!(passfile_entries(&c, &fake)
            .unwrap_err()
            .contains("group or world access"));
        fake.files
            .insert("/home/u/.pgpass".into(), (0o600, "*:*:*:*:pw\n"));
        let entries = passfile_entries(&c, &fake).unwrap().unwrap();
        assert_eq!(passfile::lookup(&entries, "h", 1, "d", "u"), Some("pw"));
        let elsewhere = env(&[("PGPASSFILE", "/none")]);
        let c = resolve(&[], &elsewhere).unwrap();
        assert_eq!(passfile_entries(&c, &elsewhere), Ok(None));
    }
}
