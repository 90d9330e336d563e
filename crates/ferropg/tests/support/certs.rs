//! Test certificates and revocation lists, made with the `openssl` command.

use std::fs;
use std::path::Path;
use std::process::Command;

/// Runs `openssl` with `args`, split at spaces (none of them holds one), in `dir`;
/// returns its standard output.
pub fn openssl(dir: &Path, args: &str) -> String {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes, in `dir`:
/// - `ca.crt`/`ca.key`, and `other.crt`, a CA that signed nothing here;
/// - `server.crt`/`.key` and `proxy.crt`/`.key`, signed by `ca`, named for
///   `localhost` only; `client.crt`/`.key` for the role `u_cert`;
/// - `empty.crl`, `ca`'s revocation list revoking nothing, and `revoked.crl`,
///   revoking `server.crt`;
/// - `crldir/`, with `revoked.crl` under the name `openssl rehash` gives it, and
///   `unhashed/`, with it under a name OpenSSL's lookup does not read.
pub fn make(dir: &Path) {
    for ca in ["ca", "other"] {
        openssl(
            dir,
            &format!(
                "req -x509 -newkey rsa:2048 -nodes -keyout {ca}.key -out {ca}.crt -days 2 \
                 -subj /CN=ferropg-test-{ca}"
            ),
        );
    }
    // Extensions make the certificates X.509 v3, the only version webpki takes.
    fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    fs::write(dir.join("proxy.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [
        ("server", "localhost"),
        ("proxy", "localhost"),
        ("client", "u_cert"),
    ] {
        openssl(
            dir,
            &format!(
                "req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr \
                 -subj /CN={subject}"
            ),
        );
        openssl(
            dir,
            &format!(
                "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                 -out {name}.crt -days 2 -extfile {name}.ext"
            ),
        );
    }
    make_crls(dir);
}

/// `openssl ca` keeps its record of revocations in a small database; a CRL number
/// makes the lists version 2, the only version webpki takes.
fn make_crls(dir: &Path) {
    fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
         default_md = sha256\ndefault_crl_days = 2\n",
    )
    .unwrap();
    fs::write(dir.join("index.txt"), "").unwrap();
    fs::write(dir.join("crlnumber"), "01\n").unwrap();
    let ca = "ca -config ca.cnf -keyfile ca.key -cert ca.crt";
    openssl(dir, &format!("{ca} -gencrl -out empty.crl"));
    openssl(dir, &format!("{ca} -revoke server.crt"));
    openssl(dir, &format!("{ca} -gencrl -out revoked.crl"));
    let hash = openssl(dir, "crl -hash -noout -in revoked.crl");
    for sub in ["crldir", "unhashed"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::copy(
        dir.join("revoked.crl"),
        dir.join("crldir").join(format!("{}.r0", hash.trim())),
    )
    .unwrap();
    fs::copy(
        dir.join("revoked.crl"),
        dir.join("unhashed").join("revoked.crl"),
    )
    .unwrap();
}
