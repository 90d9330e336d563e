//! Connection service files (`pg_service.conf`): named sets of connection
//! parameters, chosen with `service=` or `PGSERVICE`. Which files to look in and
//! what a file says are decided here; reading the files is the faces' (they own
//! the I/O).
//!
//! ```
//! use ferropg_core::config::service;
//!
//! let text = "# ours\n[shop]\nhost=db.example\nport = 5433\n\n[other]\nuser=x\n";
//! let shop = service::lookup(text, "shop").unwrap().unwrap();
//! assert_eq!(shop, [("host".into(), "db.example".into()), ("port".into(), "5433".into())]);
//! assert_eq!(service::lookup(text, "none").unwrap(), None);
//! ```

use super::ConfigError;

/// The files that may define a service, in the order libpq looks at them:
/// `servicefile` (the `servicefile=` option) alone when given; else
/// `$PGSERVICEFILE`, or `~/.pg_service.conf` under `home`; then
/// `$PGSYSCONFDIR/pg_service.conf`. `env` reads the environment.
pub fn candidates(
    servicefile: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    home: Option<&str>,
) -> Vec<String> {
    if let Some(path) = servicefile {
        return vec![path.to_owned()];
    }
    let mut paths = Vec::new();
    match env("PGSERVICEFILE") {
        Some(path) => paths.push(path),
        None => paths.extend(home.map(|h| format!("{}/.pg_service.conf", h.trim_end_matches('/')))),
    }
    if let Some(dir) = env("PGSYSCONFDIR") {
        paths.push(format!("{}/pg_service.conf", dir.trim_end_matches('/')));
    }
    paths
}

/// The parameters of service `name` in a service file's text, in the order written,
/// or `None` when the file does not define it.
///
/// The format is libpq's: `[name]` starts a service; `key=value` lines (spaces
/// around both trimmed) belong to the service above them; blank lines and lines
/// starting with `#` are skipped. In the service asked for, a line that is neither
/// is an error naming its number (not its text: it may hold a password), as is a
/// nested `service=`.
pub fn lookup(text: &str, name: &str) -> Result<Option<Vec<(String, String)>>, ConfigError> {
    let mut found: Option<Vec<(String, String)>> = None;
    let mut in_wanted = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let Some(section) = section.strip_suffix(']') else {
                return Err(syntax_error(i));
            };
            if found.is_some() {
                // The service ended: libpq takes its first definition.
                break;
            }
            in_wanted = section == name;
            if in_wanted {
                found = Some(Vec::new());
            }
            continue;
        }
        if !in_wanted {
            // Other services' lines are not looked at, as in libpq.
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax_error(i));
        };
        let key = key.trim();
        if key == "service" {
            return Err(ConfigError(format!(
                "nested service specifications are not supported (line {})",
                i + 1
            )));
        }
        if let Some(params) = &mut found {
            params.push((key.to_owned(), value.trim().to_owned()));
        }
    }
    Ok(found)
}

fn syntax_error(index: usize) -> ConfigError {
    ConfigError(format!("syntax error in service file, line {}", index + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_definition_wins_and_others_are_skipped() {
        let text = "[a]\nhost=one\n[b]\nhost=two\n[a]\nhost=three\n";
        assert_eq!(
            lookup(text, "a").unwrap().unwrap(),
            [("host".to_owned(), "one".to_owned())]
        );
        assert_eq!(lookup(text, "b").unwrap().unwrap()[0].1, "two");
    }

    #[test]
    fn values_keep_their_inner_spaces_and_equals_signs() {
        let text = "[s]\noptions = -c search_path=a,b \n";
        assert_eq!(
            lookup(text, "s").unwrap().unwrap(),
            [("options".to_owned(), "-c search_path=a,b".to_owned())]
        );
    }

    #[test]
    fn malformed_lines_are_errors_without_their_text() {
        let e = lookup("[s]\npassword secret\n", "s").unwrap_err();
        assert_eq!(e.0, "syntax error in service file, line 2");
        assert!(lookup("[s\n", "s").is_err());
        assert!(lookup("[t]\nnot a pair\n[s]\nhost=h\n", "s").is_ok());
        assert!(lookup("[s]\nservice=t\n", "s")
            .unwrap_err()
            .0
            .contains("nested"));
        // A nested service= in another service is not looked at.
        assert!(lookup("[t]\nservice=u\n[s]\nhost=h\n", "s").is_ok());
    }

    #[test]
    fn candidates_follow_libpq() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            candidates(Some("/x"), env(&[("PGSERVICEFILE", "/y")]), None),
            ["/x"]
        );
        assert_eq!(
            candidates(None, env(&[]), Some("/home/u/")),
            ["/home/u/.pg_service.conf"]
        );
        assert_eq!(
            candidates(
                None,
                env(&[("PGSERVICEFILE", "/y"), ("PGSYSCONFDIR", "/etc/pg")]),
                Some("/h")
            ),
            ["/y", "/etc/pg/pg_service.conf"]
        );
    }
}
