//! libpq's TLS keywords and what they mean: `sslmode` (with the default and the
//! floor that `sslrootcert=system` sets), `sslrootcert`, `sslnegotiation`, where the
//! TLS files are looked for when not given, and which files of an `sslcrldir` count.
//! The faces run TLS with their own libraries; these rules are shared.

use super::{Config, ConfigError};

/// The ALPN protocol name PostgreSQL 17 requires of a direct TLS handshake, and
/// which a client offers on every TLS connection (harmless after an SSLRequest).
pub const ALPN_PROTOCOL: &[u8] = b"postgresql";

/// libpq's `sslmode`, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Without TLS first, with it if the server turns the first attempt away.
    Allow,
    /// With TLS first (when the server offers it), without it if turned away.
    Prefer,
    /// TLS or nothing; the certificate is checked only against a root certificate
    /// that is there.
    Require,
    /// TLS, with the chain checked up to a root certificate.
    VerifyCa,
    /// TLS, with the chain and the host name checked.
    VerifyFull,
}

impl SslMode {
    /// Parses one of libpq's six names.
    pub fn parse(name: &str) -> Result<SslMode, ConfigError> {
        Ok(match name {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(ConfigError(format!("invalid sslmode value: {other:?}"))),
        })
    }

    /// libpq's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the root certificates come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// Not given: `~/.postgresql/root.crt` ([`default_tls_file`]), if it exists.
    Default,
    /// A PEM file of certificates, which must exist.
    File(String),
    /// `sslrootcert=system` (libpq 16): the roots the platform trusts.
    System,
}

/// How TLS starts (`sslnegotiation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslNegotiation {
    /// An SSLRequest first, and TLS if the server agrees (every server version).
    Postgres,
    /// A TLS handshake straight away, with ALPN [`ALPN_PROTOCOL`] (PostgreSQL 17
    /// and later, or a TLS-terminating proxy).
    Direct,
}

impl Config {
    /// `sslrootcert`; an empty value is no value, as in libpq.
    pub fn sslrootcert(&self) -> RootCert {
        match self.client_option("sslrootcert") {
            None | Some("") => RootCert::Default,
            Some("system") => RootCert::System,
            Some(path) => RootCert::File(path.to_owned()),
        }
    }

    /// `sslmode`: `prefer` when not given, but `verify-full` with
    /// `sslrootcert=system`, which refuses any weaker mode (libpq 16's rule: anyone
    /// can get a publicly trusted certificate for a name they control, so only the
    /// host name check means anything with the platform's roots).
    pub fn ssl_mode(&self) -> Result<SslMode, ConfigError> {
        let system = self.sslrootcert() == RootCert::System;
        let mode = match self.sslmode.as_deref() {
            None => {
                return Ok(if system {
                    SslMode::VerifyFull
                } else {
                    SslMode::Prefer
                })
            }
            Some(name) => SslMode::parse(name)?,
        };
        if system && mode != SslMode::VerifyFull {
            return Err(ConfigError(format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system \
                 (use \"verify-full\")",
                mode.as_str()
            )));
        }
        Ok(mode)
    }

    /// `sslnegotiation` (default `postgres`); `direct` needs an `sslmode` that
    /// insists on TLS, since a server that cannot do TLS cannot answer it at all.
    pub fn sslnegotiation(&self) -> Result<SslNegotiation, ConfigError> {
        match self.client_option("sslnegotiation") {
            None | Some("postgres") => Ok(SslNegotiation::Postgres),
            Some("direct") => {
                let mode = self.ssl_mode()?;
                if mode >= SslMode::Require {
                    Ok(SslNegotiation::Direct)
                } else {
                    Err(ConfigError(format!(
                        "weak sslmode \"{}\" may not be used with sslnegotiation=direct \
                         (use \"require\", \"verify-ca\" or \"verify-full\")",
                        mode.as_str()
                    )))
                }
            }
            Some(other) => Err(ConfigError(format!(
                "invalid sslnegotiation value: {other:?} (expected postgres or direct)"
            ))),
        }
    }
}

/// Where libpq looks for a TLS file it was not given: `~/.postgresql/<name>`
/// (`root.crt`, `root.crl`, `postgresql.crt`, `postgresql.key`), under `home`.
pub fn default_tls_file(home: Option<&str>, name: &str) -> Option<String> {
    home.map(|h| format!("{}/.postgresql/{name}", h.trim_end_matches('/')))
}

/// Whether a file of an `sslcrldir` directory is a CRL there: libpq hands the
/// directory to OpenSSL, which looks only at the names `openssl rehash` makes
/// (`<8 hex digits of the issuer's name hash>.r<n>`), so a face that reads the
/// directory itself takes those names and nothing else.
pub fn is_crl_dir_entry(name: &str) -> bool {
    let Some((hash, n)) = name.split_once(".r") else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dsn: &str) -> Config {
        Config::parse(dsn).unwrap()
    }

    #[test]
    fn sslmode_defaults_to_prefer_and_parses_libpqs_names() {
        assert_eq!(config("").ssl_mode().unwrap(), SslMode::Prefer);
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            let c = config(&format!("sslmode={}", mode.as_str()));
            assert_eq!(c.ssl_mode().unwrap(), mode);
        }
        let e = config("sslmode=sometimes").ssl_mode().unwrap_err();
        assert_eq!(e.0, "invalid sslmode value: \"sometimes\"");
    }

    #[test]
    fn system_roots_mean_verify_full() {
        let c = config("sslrootcert=system");
        assert_eq!(c.sslrootcert(), RootCert::System);
        assert_eq!(c.ssl_mode().unwrap(), SslMode::VerifyFull);
        for weak in ["disable", "allow", "prefer", "require", "verify-ca"] {
            let e = config(&format!("sslrootcert=system sslmode={weak}"))
                .ssl_mode()
                .unwrap_err();
            assert!(e.0.contains(&format!("weak sslmode \"{weak}\"")), "{e:?}");
        }
        assert_eq!(
            config("sslrootcert=/r.crt").sslrootcert(),
            RootCert::File("/r.crt".into())
        );
        assert_eq!(config("sslrootcert=''").sslrootcert(), RootCert::Default);
        assert_eq!(config("").sslrootcert(), RootCert::Default);
    }

    #[test]
    fn direct_negotiation_needs_a_mode_that_insists_on_tls() {
        for (dsn, ok) in [
            ("sslmode=require sslnegotiation=direct", true),
            ("sslmode=verify-full sslnegotiation=direct", true),
            // verify-full by way of the system roots.
            ("sslrootcert=system sslnegotiation=direct", true),
            ("sslnegotiation=direct", false),
            ("sslmode=allow sslnegotiation=direct", false),
        ] {
            let got = config(dsn).sslnegotiation();
            assert_eq!(got.is_ok(), ok, "{dsn}: {got:?}");
            if ok {
                assert_eq!(got.unwrap(), SslNegotiation::Direct);
            }
        }
        assert_eq!(
            config("sslnegotiation=postgres").sslnegotiation().unwrap(),
            SslNegotiation::Postgres
        );
        assert!(config("sslnegotiation=tls").sslnegotiation().is_err());
    }

    #[test]
    fn crl_directories_hold_rehash_names() {
        for name in ["5d6b8e3a.r0", "ABCDEF01.r12"] {
            assert!(is_crl_dir_entry(name), "{name}");
        }
        for name in [
            "5d6b8e3a.0",
            "5d6b8e3a.r",
            "5d6b8e3.r0",
            "root.crl",
            "5d6b8e3g.r0",
            "5d6b8e3a.r0x",
        ] {
            assert!(!is_crl_dir_entry(name), "{name}");
        }
        assert_eq!(
            default_tls_file(Some("/home/u/"), "root.crl").as_deref(),
            Some("/home/u/.postgresql/root.crl")
        );
    }
}
