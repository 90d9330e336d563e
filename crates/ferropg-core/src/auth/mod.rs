//! Client-side authentication: cleartext, MD5 and SCRAM-SHA-256.
//!
//! SCRAM-SHA-256-PLUS needs the TLS server certificate for channel binding; the
//! [`ChannelBinding`] argument is where a TLS front end will pass it.

use postgres_protocol::authentication::{md5_hash, sasl};

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
    /// Without channel binding data only plain SCRAM-SHA-256 is chosen.
    pub fn start<'a>(
        offered: impl Iterator<Item = &'a str>,
        password: &[u8],
        channel_binding: Option<ChannelBinding>,
    ) -> Result<Self, String> {
        let mut plain = false;
        let mut plus = false;
        for m in offered {
            plain |= m == SCRAM_SHA_256;
            plus |= m == SCRAM_SHA_256_PLUS;
        }
        let (mechanism, binding) = match channel_binding {
            Some(b) if plus => (SCRAM_SHA_256_PLUS, b),
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
        assert!(Scram::start(["OTHER"].into_iter(), b"pw", None).is_err());
        let scram = Scram::start(
            ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"].into_iter(),
            b"pw",
            None,
        )
        .unwrap();
        assert_eq!(scram.mechanism(), SCRAM_SHA_256);
        assert!(scram.message().starts_with(b"n,,n=,r="));
    }
}
