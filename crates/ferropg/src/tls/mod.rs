//! TLS for TCP connections: `sslmode`, the certificate files libpq reads for it
//! (`sslrootcert`, `sslcert`, `sslkey`, defaulting to `~/.postgresql/root.crt`,
//! `postgresql.crt` and `postgresql.key`), and the upgrade after an SSLRequest.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use ferropg_core::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;

use crate::Error;

/// libpq's `sslmode`, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// `None` (not given) is `prefer`, as in libpq.
    pub(crate) fn parse(mode: Option<&str>) -> Result<SslMode, Error> {
        Ok(match mode {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("allow") => SslMode::Allow,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => return Err(Error::config(format!("invalid sslmode {other:?}"))),
        })
    }
}

/// The certificate files of a connection, as given (`None`: libpq's default path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) root_cert: Option<PathBuf>,
    pub(crate) cert: Option<PathBuf>,
    pub(crate) key: Option<PathBuf>,
}

/// What a connection does about TLS: the mode and, unless it is `disable`, the
/// connector built for it.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) mode: SslMode,
    connector: Option<TlsConnector>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
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

fn load_roots(path: &PathBuf) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
        tls_error(
            &format!("cannot read root certificate {}", path.display()),
            e,
        )
    })?;
    for cert in certs {
        let cert =
            cert.map_err(|e| tls_error(&format!("bad certificate in {}", path.display()), e))?;
        roots
            .add(cert)
            .map_err(|e| tls_error(&format!("bad certificate in {}", path.display()), e))?;
    }
    Ok(roots)
}

impl Tls {
    /// Builds the connector for `mode`: no check of the server's certificate for
    /// `allow`, `prefer` and `require` (unless a root certificate is there, which
    /// makes `require` check the chain, libpq's rule), the chain for `verify-ca`, the
    /// chain and the host name for `verify-full`. A client certificate is sent when
    /// one is given or found.
    pub(crate) fn new(mode: SslMode, files: &TlsFiles) -> Result<Tls, Error> {
        if mode == SslMode::Disable {
            return Ok(Tls {
                mode,
                connector: None,
            });
        }
        let provider = Arc::new(crypto::ring::default_provider());
        let explicit_root = files.root_cert.is_some();
        let root_path = files
            .root_cert
            .clone()
            .or_else(|| dot_postgresql("root.crt"));
        let roots = match &root_path {
            Some(p) if mode >= SslMode::Require && (explicit_root || p.exists()) => {
                Some(load_roots(p)?)
            }
            _ => None,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            Some(roots) => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| tls_error("cannot use the root certificates", e))?;
                Arc::new(ChainCheck {
                    inner: webpki,
                    check_name: mode == SslMode::VerifyFull,
                })
            }
            None if mode >= SslMode::VerifyCa => {
                let shown = root_path.map_or_else(
                    || "~/.postgresql/root.crt".to_owned(),
                    |p| p.display().to_string(),
                );
                return Err(Error::config(format!(
                    "root certificate file \"{shown}\" does not exist or cannot be accessed \
                     (sslmode={})",
                    if mode == SslMode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    }
                )));
            }
            None => Arc::new(NoCheck(provider.clone())),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS configuration", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cert = files
            .cert
            .clone()
            .or_else(|| dot_postgresql("postgresql.crt").filter(|p| p.exists()));
        let mut config = match cert {
            Some(cert) => {
                let key = files
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
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls {
            mode,
            connector: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// Sends an SSLRequest on `tcp` and, if the server agrees, runs the handshake.
    /// `Ok(Err(tcp))`: the server declined and `prefer`/`allow` lets the stream go on
    /// without TLS.
    pub(crate) async fn upgrade(
        &self,
        mut tcp: TcpStream,
        host: &str,
    ) -> Result<Result<TlsStream<TcpStream>, TcpStream>, Error> {
        let Some(connector) = &self.connector else {
            return Ok(Err(tcp));
        };
        let mut request = BytesMut::with_capacity(8);
        frontend::ssl_request(&mut request);
        tcp.write_all(&request)
            .await
            .map_err(|e| Error::io("sending the SSLRequest", e))?;
        let answer = tcp
            .read_u8()
            .await
            .map_err(|e| Error::io("reading the answer to the SSLRequest", e))?;
        match answer {
            b'S' => {}
            b'N' if self.mode <= SslMode::Prefer => return Ok(Err(tcp)),
            b'N' => {
                return Err(Error::config(
                    "the server does not support TLS (sslmode requires it)",
                ))
            }
            // Nothing before the handshake can be trusted, an error's text included.
            _ => {
                return Err(Error::protocol(
                    "unexpected answer to the SSLRequest; check the server's log",
                ))
            }
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| tls_error(&format!("invalid server name {host:?}"), e))?;
        connector
            .connect(name, tcp)
            .await
            .map(Ok)
            .map_err(|e| Error::io("TLS handshake", e))
    }
}

/// `allow`, `prefer`, `require` without a root certificate: any certificate is
/// accepted (libpq's rule), but the handshake's signatures are still checked.
#[derive(Debug)]
struct NoCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` and `verify-full` (and `require` with a root certificate): the chain
/// must lead to a root certificate; the host name counts only for `verify-full`.
#[derive(Debug)]
struct ChainCheck {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for ChainCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
