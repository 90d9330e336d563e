//! SCRAM channel binding (`tls-server-end-point`, RFC 5929): what libpq's
//! `channel_binding` asks for, and the hash of the server's certificate that binds
//! the authentication to the TLS connection it ran on.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// libpq's `channel_binding`: whether SCRAM authentication is bound to TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelBindingMode {
    /// Never bind, even when the server offers it.
    Disable,
    /// Bind when the connection uses TLS and the server offers SCRAM-SHA-256-PLUS.
    #[default]
    Prefer,
    /// Refuse any authentication that is not SCRAM-SHA-256-PLUS over TLS (trust,
    /// password, MD5 and unbound SCRAM alike).
    Require,
}

impl ChannelBindingMode {
    /// Parses libpq's spelling (`disable`, `prefer`, `require`).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "disable" => Ok(ChannelBindingMode::Disable),
            "prefer" => Ok(ChannelBindingMode::Prefer),
            "require" => Ok(ChannelBindingMode::Require),
            other => Err(format!(
                "invalid channel_binding value: {other:?} (expected disable, prefer or require)"
            )),
        }
    }
}

/// The `tls-server-end-point` binding data of a server certificate (DER): its hash
/// with the hash function of its signature algorithm, SHA-256 standing in for MD5 and
/// SHA-1 (RFC 5929, section 4.1). None for a certificate signed in a way that names
/// no single hash (RSA-PSS, Ed25519) or that does not parse; libpq cannot bind to
/// those either.
///
/// ```
/// use ferropg_core::auth::tls_server_end_point;
///
/// assert_eq!(tls_server_end_point(b"not a certificate"), None);
/// ```
pub fn tls_server_end_point(certificate: &[u8]) -> Option<Vec<u8>> {
    let algorithm = signature_algorithm(certificate)?;
    let digest = match algorithm {
        // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption,
        // ecdsa-with-SHA1, ecdsa-with-SHA256, dsa-with-sha1, dsa-with-sha256
        [42, 134, 72, 134, 247, 13, 1, 1, 4 | 5 | 11]
        | [42, 134, 72, 206, 61, 4, 1]
        | [42, 134, 72, 206, 61, 4, 3, 2]
        | [42, 134, 72, 206, 56, 4, 3]
        | [96, 134, 72, 1, 101, 3, 4, 3, 2] => Sha256::digest(certificate).to_vec(),
        // sha384WithRSAEncryption, ecdsa-with-SHA384
        [42, 134, 72, 134, 247, 13, 1, 1, 12] | [42, 134, 72, 206, 61, 4, 3, 3] => {
            Sha384::digest(certificate).to_vec()
        }
        // sha512WithRSAEncryption, ecdsa-with-SHA512
        [42, 134, 72, 134, 247, 13, 1, 1, 13] | [42, 134, 72, 206, 61, 4, 3, 4] => {
            Sha512::digest(certificate).to_vec()
        }
        _ => return None,
    };
    Some(digest)
}

/// The OID (its content octets) of a certificate's outer `signatureAlgorithm`:
/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`.
fn signature_algorithm(certificate: &[u8]) -> Option<&[u8]> {
    let (tag, body, _) = der_element(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, after_tbs) = der_element(body)?;
    let (tag, algorithm, _) = der_element(after_tbs)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, oid, _) = der_element(algorithm)?;
    (tag == OBJECT_IDENTIFIER).then_some(oid)
}

const SEQUENCE: u8 = 0x30;
const OBJECT_IDENTIFIER: u8 = 0x06;

/// One DER element at the start of `input`: its tag, its contents and what follows.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate-shaped DER value: SEQUENCE { tbs, SEQUENCE { OID }, BIT STRING }.
    fn fake_certificate(oid: &[u8], tbs_len: usize) -> Vec<u8> {
        let mut tbs = vec![SEQUENCE, 0x82];
        tbs.extend_from_slice(&(tbs_len as u16).to_be_bytes());
        tbs.extend(std::iter::repeat_n(7u8, tbs_len));
        let mut algorithm = vec![SEQUENCE, (oid.len() + 2) as u8, OBJECT_IDENTIFIER];
        algorithm.push(oid.len() as u8);
        algorithm.extend_from_slice(oid);
        let body: Vec<u8> = [tbs, algorithm, vec![0x03, 2, 0, 0xff]].concat();
        let mut cert = vec![SEQUENCE, 0x82];
        cert.extend_from_slice(&(body.len() as u16).to_be_bytes());
        cert.extend(body);
        cert
    }

    #[test]
    fn the_hash_follows_the_signature_algorithm() {
        let sha256_rsa = [42, 134, 72, 134, 247, 13, 1, 1, 11];
        let sha1_rsa = [42, 134, 72, 134, 247, 13, 1, 1, 5];
        let sha384_ecdsa = [42, 134, 72, 206, 61, 4, 3, 3];
        let sha512_rsa = [42, 134, 72, 134, 247, 13, 1, 1, 13];
        for (oid, len) in [
            (&sha256_rsa[..], 32),
            (&sha1_rsa[..], 32),
            (&sha384_ecdsa[..], 48),
            (&sha512_rsa[..], 64),
        ] {
            let cert = fake_certificate(oid, 300);
            let hash = tls_server_end_point(&cert).unwrap();
            assert_eq!(hash.len(), len, "{oid:?}");
        }
        let cert = fake_certificate(&sha256_rsa, 300);
        assert_eq!(
            tls_server_end_point(&cert).unwrap(),
            Sha256::digest(&cert).to_vec()
        );
    }

    #[test]
    fn unbindable_or_broken_certificates_give_none() {
        let rsa_pss = [42, 134, 72, 134, 247, 13, 1, 1, 10];
        let ed25519 = [43, 101, 112];
        for oid in [&rsa_pss[..], &ed25519[..]] {
            assert_eq!(tls_server_end_point(&fake_certificate(oid, 10)), None);
        }
        let cert = fake_certificate(&[42, 134, 72, 134, 247, 13, 1, 1, 11], 300);
        for cut in [0, 1, 3, 10, cert.len() - 5] {
            assert_eq!(tls_server_end_point(&cert[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn modes_parse_as_libpq_spells_them() {
        assert_eq!(
            ChannelBindingMode::parse("require"),
            Ok(ChannelBindingMode::Require)
        );
        assert_eq!(
            ChannelBindingMode::parse("disable"),
            Ok(ChannelBindingMode::Disable)
        );
        assert!(ChannelBindingMode::parse("Require").is_err());
    }
}
