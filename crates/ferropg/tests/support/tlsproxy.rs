//! A TLS-terminating proxy that stands in for a PostgreSQL 17 server's direct TLS
//! (`sslnegotiation=direct`) in front of an older server: it takes a TLS handshake
//! at once, as PostgreSQL 17 does (ALPN `postgresql` required), and pipes the
//! decrypted bytes to the server, in plain text or over TLS of its own after an
//! SSLRequest ([`Upstream`]).
//!
//! It runs on a thread of its own with its own runtime, like the fault proxy.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::support::listener::ListenerThread;

/// The crypto provider of the build (ferropg's own choice of feature).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = tokio_rustls::rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// A rustls client configuration trusting the CA in `ca` (PEM).
pub fn client_config_trusting(ca: &Path) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// How the proxy reaches the server.
#[derive(Clone)]
pub enum Upstream {
    /// A plain TCP connection: the server sees a client without TLS.
    Plain,
    /// An SSLRequest and then TLS with this configuration, to the name
    /// `localhost`: the server sees a TLS client.
    Tls(Arc<ClientConfig>),
}

/// The proxy; dropped, it stops.
pub struct TlsProxy {
    listener: ListenerThread,
    handshakes: Arc<AtomicUsize>,
}

impl TlsProxy {
    /// Starts a proxy on 127.0.0.1 forwarding to `target`, presenting the
    /// certificate `cert` with key `key` (PEM files). With `alpn`, it offers
    /// `postgresql` and turns away clients that do not ask for it, as PostgreSQL
    /// 17 does; without, it never answers ALPN.
    pub fn start(
        target: SocketAddr,
        cert: &Path,
        key: &Path,
        alpn: bool,
        upstream: Upstream,
    ) -> TlsProxy {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let mut config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        if alpn {
            config.alpn_protocols = vec![b"postgresql".to_vec()];
        }
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let listener = ListenerThread::start(move |client| {
            link(
                client,
                target,
                acceptor.clone(),
                alpn,
                upstream.clone(),
                Arc::clone(&counted),
            )
        });
        TlsProxy {
            listener,
            handshakes,
        }
    }

    /// The port clients connect to (on 127.0.0.1, or `localhost`).
    pub fn port(&self) -> u16 {
        self.listener.addr().port()
    }

    /// How many TLS handshakes clients completed (with ALPN `postgresql`, when the
    /// proxy asks for it).
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}

async fn link(
    client: TcpStream,
    target: SocketAddr,
    acceptor: TlsAcceptor,
    alpn: bool,
    upstream: Upstream,
    handshakes: Arc<AtomicUsize>,
) {
    let Ok(mut client) = acceptor.accept(client).await else {
        return;
    };
    if alpn && client.get_ref().1.alpn_protocol() != Some(b"postgresql") {
        return;
    }
    handshakes.fetch_add(1, Ordering::SeqCst);
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    match upstream {
        Upstream::Plain => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
        Upstream::Tls(config) => {
            // SSLRequest: length 8, code 1234.5679.
            if server
                .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
                .await
                .is_err()
                || server.read_u8().await.ok() != Some(b'S')
            {
                return;
            }
            let name = ServerName::try_from("localhost").unwrap();
            let Ok(mut server) = TlsConnector::from(config).connect(name, server).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        }
    }
}
