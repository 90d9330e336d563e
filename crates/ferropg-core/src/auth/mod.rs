//! Client-side authentication: cleartext, MD5, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS.
//!
//! SCRAM-SHA-256-PLUS binds the exchange to the TLS connection: a TLS front end
//! hands the server's certificate to the core ([`tls_server_end_point`]), and
//! `channel_binding` ([`ChannelBindingMode`]) says whether binding is used, and
//! whether it is required.

mod binding;

use postgres_protocol::authentication::{md5_hash, sasl};

pub use binding::{tls_server_end_point, ChannelBindingMode};
pub use sasl::ChannelBinding;

/// The mechanism name of plain SCRAM-SHA-256.
pub const SCRAM_SHA_256: &str = sasl::SCRAM_SHA_256;
/// The mechanism name of SCRAM-SHA-256 with channel binding.
pub const SCRAM_SHA_256_PLUS: &str = sasl::SCRAM_SHA_256_PLUS;

/// The PasswordMessage payload for MD5 authentication: `md5` + hex digest.
pub fn md5_password(user: &str, password: &[u8], salt: [u8; 4]) -> String {
    md5_hash(user.as_bytes(), password, salt)
}

/// A SCRAM-SHA-256 exchange in progress.
pub struct Scram {
    inner: sasl::ScramSha256,
    mechanism: &'static str,
}

impl Scram {
    /// Chooses a mechanism from the server's offer and prepares the client-first message.
    ///
    /// `end_point` is the TLS server certificate's binding data, None without TLS (or
    /// for a certificate that cannot be bound). SCRAM-SHA-256-PLUS is chosen when the
    /// server offers it, there is binding data and `mode` allows it; `Require` fails
    /// when it cannot be chosen. Over TLS without the server offering it, the client
    /// says it could have bound (`y`), so that a server stripped of the offer on the
    /// way fails the exchange.
    pub fn start<'a>(
        offered: impl Iterator<Item = &'a str>,
        password: &[u8],
        mode: ChannelBindingMode,
        end_point: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut plain = false;
        let mut plus = false;
        for m in offered {
            plain |= m == SCRAM_SHA_256;
            plus |= m == SCRAM_SHA_256_PLUS;
        }
        let end_point = end_point.filter(|_| mode != ChannelBindingMode::Disable);
        let (mechanism, binding) = match end_point {
            Some(data) if plus => (
                SCRAM_SHA_256_PLUS,
                ChannelBinding::tls_server_end_point(data.to_vec()),
            ),
            _ if mode == ChannelBindingMode::Require => {
                return Err(if end_point.is_none() {
                    "channel binding is required, but the connection does not use TLS \
                     (or the server's certificate cannot be bound)"
                        .into()
                } else {
                    "channel binding is required, but the server did not offer \
                     SCRAM-SHA-256-PLUS"
                        .into()
                });
            }
            Some(_) if plain => (SCRAM_SHA_256, ChannelBinding::unrequested()),
            _ if plain => (SCRAM_SHA_256, ChannelBinding::unsupported()),
            _ => {
                return Err("the server offers no SASL mechanism this client supports".into());
            }
        };
        Ok(Scram {
            inner: sasl::ScramSha256::new(password, binding),
            mechanism,
        })
    }

    /// True when the exchange is bound to the TLS connection.
    pub fn is_bound(&self) -> bool {
        self.mechanism == SCRAM_SHA_256_PLUS
    }

    /// The chosen mechanism's name.
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// The message to send next.
    pub fn message(&self) -> &[u8] {
        self.inner.message()
    }

    /// Takes the server-first message.
    pub fn update(&mut self, server_message: &[u8]) -> Result<(), String> {
        self.inner
            .update(server_message)
            .map_err(|e| format!("SCRAM authentication failed: {e}"))
    }

    /// Verifies the server-final message.
    pub fn finish(&mut self, server_message: &[u8]) -> Result<(), String> {
        self.inner
            .finish(server_message)
            .map_err(|e| format!("SCRAM authentication failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_postgres_formula() {
        // md5(md5(password || user) || salt), as PostgreSQL documents.
        let hash = md5_password("u", b"p", [1, 2, 3, 4]);
        assert!(hash.starts_with("md5"));
        assert_eq!(hash.len(), 35);
    }

    #[test]
    fn scram_requires_a_known_mechanism() {
        let prefer = ChannelBindingMode::Prefer;
        assert!(Scram::start(["OTHER"].into_iter(), b"pw", prefer, None).is_err());
        let both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
        let scram = Scram::start(both.into_iter(), b"pw", prefer, None).unwrap();
        assert_eq!(scram.mechanism(), SCRAM_SHA_256);
        assert!(scram.message().starts_with(b"n,,n=,r="));
    }

    #[test]
    fn channel_binding_follows_the_mode_the_offer_and_tls() {
        use ChannelBindingMode::{Disable, Prefer, Require};
        let both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
        let plain = ["SCRAM-SHA-256"];
        let hash: &[u8] = &[1; 32];
        let start = |offer: &[&'static str], mode, end_point| {
            Scram::start(offer.iter().copied(), b"pw", mode, end_point)
        };
        // Bound: the GS2 header names the binding type.
        let s = start(&both, Prefer, Some(hash)).unwrap();
        assert!(s.is_bound());
        assert!(s.message().starts_with(b"p=tls-server-end-point,,n=,r="));
        assert!(start(&both, Require, Some(hash)).unwrap().is_bound());
        // Disabled: plain SCRAM saying the client does not bind.
        let s = start(&both, Disable, Some(hash)).unwrap();
        assert!(!s.is_bound() && s.message().starts_with(b"n,,"));
        // TLS, but no offer: the client could have bound ("y").
        let s = start(&plain, Prefer, Some(hash)).unwrap();
        assert!(!s.is_bound() && s.message().starts_with(b"y,,"));
        // Required but impossible: refused, with the reason.
        let e = start(&plain, Require, Some(hash)).err().unwrap();
        assert!(e.contains("did not offer"), "{e}");
        let e = start(&both, Require, None).err().unwrap();
        assert!(e.contains("does not use TLS"), "{e}");
    }
}
