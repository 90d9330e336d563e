//! What a certificate chain is checked against: root certificates from a file or
//! from the platform (`sslrootcert=system`), and revocation lists (`sslcrl`,
//! `sslcrldir`).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use tokio_rustls::rustls::RootCertStore;

use crate::Error;

/// Root certificates, and how to name them in an error.
pub(super) struct Roots {
    pub(super) store: Arc<RootCertStore>,
    /// "the root certificates in <file>", "... of sslrootcert=system (...)".
    pub(super) described: String,
}

fn tls_error(what: &str, e: impl fmt::Display) -> Error {
    Error::config(format!("{what}: {e}"))
}

/// Every certificate of a PEM file; an explicit file must exist.
pub(super) fn from_file(path: &Path) -> Result<Roots, Error> {
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
        tls_error(
            &format!("cannot read root certificate {}", path.display()),
            e,
        )
    })?;
    for cert in certs {
        let cert =
            cert.map_err(|e| tls_error(&format!("bad certificate in {}", path.display()), e))?;
        store
            .add(cert)
            .map_err(|e| tls_error(&format!("bad certificate in {}", path.display()), e))?;
    }
    Ok(Roots {
        store: Arc::new(store),
        described: format!("the root certificates in {}", path.display()),
    })
}

/// `sslrootcert=system`: the roots of each root feature turned on. Read once per
/// process: the platform's store can be a large file to parse, and a pool opens
/// many connections.
pub(super) fn system() -> Result<Roots, Error> {
    static SYSTEM: OnceLock<Result<(Arc<RootCertStore>, String), String>> = OnceLock::new();
    match SYSTEM.get_or_init(load_system) {
        Ok((store, described)) => Ok(Roots {
            store: Arc::clone(store),
            described: described.clone(),
        }),
        Err(why) => Err(Error::config(why.clone())),
    }
}

fn load_system() -> Result<(Arc<RootCertStore>, String), String> {
    #[allow(unused_mut)]
    let mut store = RootCertStore::empty();
    #[allow(unused_mut)]
    let mut sources: Vec<String> = Vec::new();
    #[allow(unused_mut)]
    let mut problems: Vec<String> = Vec::new();
    #[cfg(feature = "native-roots")]
    {
        let found = rustls_native_certs::load_native_certs();
        let (added, _unusable) = store.add_parsable_certificates(found.certs);
        sources.push(format!("{added} from the platform's store"));
        problems.extend(found.errors.iter().map(ToString::to_string));
    }
    #[cfg(feature = "webpki-roots")]
    {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        sources.push(format!(
            "{} from webpki-roots",
            webpki_roots::TLS_SERVER_ROOTS.len()
        ));
    }
    if sources.is_empty() {
        return Err(
            "sslrootcert=system needs ferropg's \"native-roots\" or \"webpki-roots\" \
                    feature, which this build has not"
                .to_owned(),
        );
    }
    let sources = sources.join(", ");
    if store.is_empty() {
        let mut why = format!("sslrootcert=system: no root certificates found ({sources})");
        if !problems.is_empty() {
            why.push_str(": ");
            why.push_str(&problems.join("; "));
        }
        return Err(why);
    }
    Ok((
        Arc::new(store),
        format!("the root certificates of sslrootcert=system ({sources})"),
    ))
}

/// The revocation lists of `sslcrl` (a PEM file) and `sslcrldir` (a directory
/// prepared with `openssl rehash`: only its hashed names count, as for OpenSSL).
/// Given ones must be readable: a revocation check that silently went away would
/// let a revoked certificate through.
pub(super) fn crls(
    file: Option<&Path>,
    dir: Option<&Path>,
) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let mut crls = Vec::new();
    if let Some(file) = file {
        crls.extend(crl_file(file)?);
    }
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| tls_error(&format!("cannot read CRL directory {}", dir.display()), e))?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(ferropg_core::config::is_crl_dir_entry)
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in files {
            crls.extend(crl_file(&file)?);
        }
    }
    Ok(crls)
}

fn crl_file(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, Error> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(&format!("cannot read CRL {}", path.display()), e))?;
    if crls.is_empty() {
        return Err(Error::config(format!(
            "no certificate revocation list in {}",
            path.display()
        )));
    }
    Ok(crls)
}
