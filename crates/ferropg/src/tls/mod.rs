//! TLS for TCP connections: `sslmode`, the files libpq reads for it (`sslrootcert`,
//! `sslcert`, `sslkey`, `sslcrl`, `sslcrldir`, defaulting to `~/.postgresql/`),
//! `sslrootcert=system`, a caller's own rustls `ClientConfig`, and how TLS starts:
//! after an SSLRequest, or at once (`sslnegotiation=direct`).

mod provider;
mod roots;
mod verify;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use ferropg_core::config::{RootCert, SslNegotiation, ALPN_PROTOCOL};
use ferropg_core::message::frontend;
use ferropg_core::message::{ssl_answer, SslAnswer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::ServerCertVerifier;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

pub(crate) use ferropg_core::config::SslMode;

use crate::Error;
use roots::Roots;
use verify::{ChainCheck, NoCheck};

/// Everything a connection's TLS is built from, as the settings give it (`None`:
/// not given).
#[derive(Debug, Clone)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    pub(crate) negotiation: SslNegotiation,
    pub(crate) root_cert: RootCert,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
    pub(crate) crl: Option<PathBuf>,
    pub(crate) crl_dir: Option<PathBuf>,
    /// The caller's own configuration, used instead of all the files.
    pub(crate) client_config: Option<Arc<ClientConfig>>,
}

/// What a connection does about TLS: the mode, how TLS starts and, unless the mode
/// is `disable`, the connector built for it.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    negotiation: SslNegotiation,
    connector: Option<TlsConnector>,
    /// What the server's certificate was checked against, for a failed handshake's
    /// error (`None`: nothing worth naming).
    trusting: Option<Arc<str>>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("negotiation", &self.negotiation)
            .finish()
    }
}

/// Where libpq looks for a TLS file it was not given (the core's rule).
fn dot_postgresql(name: &str) -> Option<PathBuf> {
    let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
    ferropg_core::config::default_tls_file(home.as_deref(), name).map(PathBuf::from)
}

fn tls_error(what: &str, e: impl fmt::Display) -> Error {
    Error::config(format!("{what}: {e}"))
}

impl Tls {
    /// Builds the connector for the settings. With the caller's `ClientConfig`, that
    /// is used as it is, with ALPN `postgresql` set. Otherwise: no check of the
    /// server's certificate for `allow`, `prefer` and `require` (unless a root
    /// certificate is there, which makes `require` check the chain, libpq's rule),
    /// the chain for `verify-ca`, the chain and the host name for `verify-full`; a
    /// chain checked is also checked against the revocation lists given (or
    /// `~/.postgresql/root.crl`). A client certificate is sent when one is given or
    /// found.
    pub(crate) fn new(settings: &TlsSettings) -> Result<Tls, Error> {
        let mode = settings.mode;
        let negotiation = settings.negotiation;
        if mode == SslMode::Disable {
            return Ok(Tls {
                mode,
                negotiation,
                connector: None,
                trusting: None,
            });
        }
        let (mut config, trusting) = match &settings.client_config {
            Some(theirs) => (
                ClientConfig::clone(theirs),
                Some("the rustls ClientConfig given to Config::tls_config".into()),
            ),
            None => {
                let (config, roots) = from_files(settings)?;
                (config, roots.map(|r| r.described.into()))
            }
        };
        // The only protocol spoken; PostgreSQL 17 refuses direct TLS without it.
        config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
        Ok(Tls {
            mode,
            negotiation,
            connector: Some(TlsConnector::from(Arc::new(config))),
            trusting,
        })
    }

    /// Runs TLS on `tcp`: after an SSLRequest, or at once with
    /// `sslnegotiation=direct`. `Ok(Err(tcp))`: the server declined the SSLRequest
    /// and `prefer`/`allow` lets the stream go on without TLS.
    pub(crate) async fn upgrade(
        &self,
        mut tcp: TcpStream,
        host: &str,
    ) -> Result<Result<TlsStream<TcpStream>, TcpStream>, Error> {
        let Some(connector) = &self.connector else {
            return Ok(Err(tcp));
        };
        let direct = self.negotiation == SslNegotiation::Direct;
        if !direct {
            match ssl_request(&mut tcp).await? {
                true => {}
                false if self.mode <= SslMode::Prefer => return Ok(Err(tcp)),
                false => {
                    return Err(Error::config(
                        "the server does not support TLS (sslmode requires it)",
                    ))
                }
            }
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| tls_error(&format!("invalid server name {host:?}"), e))?;
        let stream = connector.connect(name, tcp).await.map_err(|e| {
            let context = match &self.trusting {
                Some(roots) => format!("TLS handshake (trusting {roots})"),
                None => "TLS handshake".to_owned(),
            };
            Error::io(context, e)
        })?;
        // libpq 17's check: a server that skipped ALPN may not know that the
        // bytes after the handshake are PostgreSQL's protocol.
        if direct && stream.get_ref().1.alpn_protocol() != Some(ALPN_PROTOCOL) {
            return Err(Error::protocol(
                "direct TLS connection established without ALPN protocol \"postgresql\"",
            ));
        }
        Ok(Ok(stream))
    }
}

/// Sends an SSLRequest; `true` when the server agrees to TLS.
async fn ssl_request(tcp: &mut TcpStream) -> Result<bool, Error> {
    let mut request = BytesMut::with_capacity(8);
    frontend::ssl_request(&mut request);
    tcp.write_all(&request)
        .await
        .map_err(|e| Error::io("sending the SSLRequest", e))?;
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| Error::io("reading the answer to the SSLRequest", e))?;
    // One byte is read: whatever follows it stays in the socket, where the TLS
    // handshake refuses it.
    match ssl_answer(&[answer]) {
        SslAnswer::Tls => Ok(true),
        SslAnswer::Plain => Ok(false),
        // Nothing before the handshake can be trusted, an error's text included.
        SslAnswer::Error => Err(Error::protocol(
            "the server answered the SSLRequest with an error; check the server's log",
        )),
        SslAnswer::Unexpected => Err(Error::protocol(
            "unexpected answer to the SSLRequest; check the server's log",
        )),
    }
}

/// The configuration libpq's settings describe, and the roots it checks against
/// (`None`: the server's certificate is not checked).
fn from_files(settings: &TlsSettings) -> Result<(ClientConfig, Option<Roots>), Error> {
    let mode = settings.mode;
    let provider = provider::provider()?;
    let (roots, default_crl) = match &settings.root_cert {
        RootCert::System => (Some(roots::system()?), false),
        RootCert::File(path) if mode >= SslMode::Require => {
            (Some(roots::from_file(Path::new(path))?), true)
        }
        RootCert::Default if mode >= SslMode::Require => {
            match dot_postgresql("root.crt").filter(|p| p.exists()) {
                Some(path) => (Some(roots::from_file(&path)?), true),
                None => (None, false),
            }
        }
        _ => (None, false),
    };
    let verifier: Arc<dyn ServerCertVerifier> = match &roots {
        Some(roots) => {
            // libpq reads ~/.postgresql/root.crl only beside file roots.
            let crl_file = settings.crl.clone().or_else(|| {
                (default_crl && settings.crl_dir.is_none())
                    .then(|| dot_postgresql("root.crl").filter(|p| p.exists()))
                    .flatten()
            });
            let crls = roots::crls(crl_file.as_deref(), settings.crl_dir.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(roots.store.clone(), provider.clone())
                    .with_crls(crls)
                    // OpenSSL refuses a CRL past its next update; webpki would not.
                    .enforce_revocation_expiration()
                    .build()
                    .map_err(|e| tls_error("cannot use the root certificates", e))?;
            Arc::new(ChainCheck {
                inner: webpki,
                check_name: mode == SslMode::VerifyFull,
            })
        }
        None if mode >= SslMode::VerifyCa => {
            let shown = match &settings.root_cert {
                RootCert::File(path) => path.clone(),
                _ => dot_postgresql("root.crt").map_or_else(
                    || "~/.postgresql/root.crt".to_owned(),
                    |p| p.display().to_string(),
                ),
            };
            return Err(Error::config(format!(
                "root certificate file \"{shown}\" does not exist or cannot be accessed \
                 (sslmode={})",
                mode.as_str()
            )));
        }
        None => Arc::new(NoCheck(provider.clone())),
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS configuration", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let cert = settings
        .cert
        .clone()
        .or_else(|| dot_postgresql("postgresql.crt").filter(|p| p.exists()));
    let config = match cert {
        Some(cert) => {
            let key = settings
                .key
                .clone()
                .or_else(|| dot_postgresql("postgresql.key"))
                .ok_or_else(|| Error::config("no key for the client certificate"))?;
            let chain = CertificateDer::pem_file_iter(&cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(&format!("cannot read {}", cert.display()), e))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| tls_error(&format!("cannot read {}", key.display()), e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error("the client certificate", e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok((config, roots))
}
