//! Which crypto provider rustls runs on: the process's default when one is
//! installed (as rustls itself decides), else the one ferropg's features name.

use std::sync::Arc;

use tokio_rustls::rustls::crypto::CryptoProvider;

use crate::Error;

/// The provider for a connector built from libpq's settings. aws-lc-rs wins over
/// ring when both features are on: ring is the default, so aws-lc-rs is the one a
/// user turned on by choice.
pub(super) fn provider() -> Result<Arc<CryptoProvider>, Error> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(Arc::clone(installed));
    }
    built_in()
}

#[cfg(feature = "aws-lc-rs")]
fn built_in() -> Result<Arc<CryptoProvider>, Error> {
    Ok(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn built_in() -> Result<Arc<CryptoProvider>, Error> {
    Ok(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
fn built_in() -> Result<Arc<CryptoProvider>, Error> {
    Err(Error::config(
        "no TLS crypto provider: turn on ferropg's \"ring\" or \"aws-lc-rs\" feature, or \
         install a process default with rustls::crypto::CryptoProvider::install_default",
    ))
}
