//! TLS against a server of this binary's own with `ssl = on`: every `sslmode`, the
//! `allow`/`prefer` fallbacks that `pg_hba.conf` forces, certificate checks,
//! revocation lists, client certificates, `sslrootcert=system`, a caller's own
//! rustls configuration, and a server without TLS. The certificates and lists are
//! made with the `openssl` command (`support::certs`).
//!
//! Direct TLS (`sslnegotiation=direct`) needs PostgreSQL 17; the test machines have
//! an older server, so those tests go through a TLS-terminating proxy that does
//! what PostgreSQL 17 does on its side of the handshake (`support/tlsproxy.rs`).

// The tests' own TLS (the proxy) needs one of ferropg's crypto providers.
#![cfg(any(feature = "ring", feature = "aws-lc-rs"))]

mod support;
// Not in `support`'s own list: it names ferropg's features, which the other
// crates that include `support` do not have.
#[path = "support/tlsproxy.rs"]
mod tlsproxy;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferropg::{Config, ErrorKind};
use support::TempCluster;
use tlsproxy::{TlsProxy, Upstream};

const IS_TLS: &str = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";

struct Setup {
    pg: TempCluster,
    certs: PathBuf,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let pg = TempCluster::start().expect("start the cluster");
        let certs = pg.data_dir.join("fpg-rust-certs");
        fs::create_dir_all(&certs).unwrap();
        support::certs::make(&certs);
        for file in ["server.crt", "server.key", "ca.crt"] {
            let path = certs.join(file);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            pg.give_to_server(&path).unwrap();
        }
        pg.give_to_server(&certs).unwrap();
        let path = |f: &str| certs.join(f).display().to_string();
        pg.sql(&format!(
            "alter system set ssl_cert_file = '{}'; alter system set ssl_key_file = '{}'; \
             alter system set ssl_ca_file = '{}'; alter system set ssl = on",
            path("server.crt"),
            path("server.key"),
            path("ca.crt")
        ))
        .expect("configure TLS");
        pg.sql("create role u_ssl login; create role u_plain login; create role u_cert login")
            .unwrap();
        pg.sql("set password_encryption = 'scram-sha-256'; create role u_pw login password 'pw'")
            .unwrap();
        pg.reset_hba().unwrap();
        pg.add_hba_entry("local", "all", "all", None, "trust")
            .unwrap();
        for address in ["127.0.0.1/32", "::1/128"] {
            for (kind, user, method) in [
                ("hostssl", "u_ssl", "trust"),
                ("hostnossl", "u_plain", "trust"),
                ("hostssl", "u_cert", "cert"),
                ("host", "u_pw", "scram-sha-256"),
            ] {
                pg.add_hba_entry(kind, "all", user, Some(address), method)
                    .unwrap();
                // Only that way: the catch-all below must not let the user in another.
                pg.add_hba_entry("host", "all", user, Some(address), "reject")
                    .unwrap();
            }
            pg.add_hba_entry("host", "all", "all", Some(address), "trust")
                .unwrap();
        }
        pg.reload().unwrap();
        Setup { pg, certs }
    })
}

fn config(host: &str, user: &str, extra: &str) -> Config {
    let s = setup();
    Config::parse(&format!(
        "host={host} port={} user={user} dbname=postgres {extra}",
        s.pg.port
    ))
    .unwrap()
}

async fn is_tls(config: &Config) -> Result<bool, ferropg::Error> {
    let mut conn = ferropg::connect(config).await?;
    let on: bool = conn.query_one(IS_TLS, &[]).await?.get(0);
    conn.close().await?;
    Ok(on)
}

#[tokio::test]
async fn every_sslmode() {
    for (mode, expected) in [
        ("disable", false),
        ("allow", false),
        ("prefer", true),
        ("require", true),
    ] {
        let c = config("127.0.0.1", "postgres", &format!("sslmode={mode}"));
        assert_eq!(is_tls(&c).await.unwrap(), expected, "sslmode={mode}");
    }
    // The default is prefer.
    assert!(is_tls(&config("127.0.0.1", "postgres", "")).await.unwrap());
}

#[tokio::test]
async fn certificate_checks() {
    let s = setup();
    let ca = s.certs.join("ca.crt").display().to_string();
    let other = s.certs.join("other.crt").display().to_string();
    for mode in ["verify-ca", "verify-full"] {
        let good = config(
            "localhost",
            "postgres",
            &format!("sslmode={mode} sslrootcert={ca}"),
        );
        assert!(is_tls(&good).await.unwrap(), "{mode}");
        let bad = config(
            "localhost",
            "postgres",
            &format!("sslmode={mode} sslrootcert={other}"),
        );
        assert!(is_tls(&bad).await.is_err(), "{mode} with the wrong CA");
    }
    // The certificate names localhost, not 127.0.0.1: only verify-full looks.
    let by_ip = |mode: &str| {
        config(
            "127.0.0.1",
            "postgres",
            &format!("sslmode={mode} sslrootcert={ca}"),
        )
    };
    assert!(is_tls(&by_ip("verify-ca")).await.unwrap());
    assert!(is_tls(&by_ip("verify-full")).await.is_err());
    let missing = config(
        "localhost",
        "postgres",
        "sslmode=verify-ca sslrootcert=/nonexistent/root.crt",
    );
    assert_eq!(
        ferropg::connect(&missing).await.unwrap_err().kind(),
        ErrorKind::Config
    );
}

#[tokio::test]
async fn hba_decides_the_fallback() {
    // allow starts without TLS; a hostssl-only user makes it try again with TLS.
    assert!(is_tls(&config("127.0.0.1", "u_ssl", "sslmode=allow"))
        .await
        .unwrap());
    // prefer starts with TLS; a hostnossl-only user makes it try again without.
    assert!(!is_tls(&config("127.0.0.1", "u_plain", "sslmode=prefer"))
        .await
        .unwrap());
    for (user, mode) in [("u_ssl", "disable"), ("u_plain", "require")] {
        let err = is_tls(&config("127.0.0.1", user, &format!("sslmode={mode}")))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&ferropg::sqlstate::INVALID_AUTHORIZATION_SPECIFICATION)
        );
    }
}

#[tokio::test]
async fn channel_binding() {
    // The server offers SCRAM-SHA-256-PLUS over TLS. With require, a connection that
    // succeeds was bound: the server checked the client's hash of its certificate.
    for binding in ["require", "prefer", "disable"] {
        let extra = format!("password=pw sslmode=require channel_binding={binding}");
        assert!(is_tls(&config("127.0.0.1", "u_pw", &extra)).await.unwrap());
    }
    // Every way of logging in without binding is refused when it is required: no
    // TLS, or a server that asks for no password at all (trust over TLS).
    for (user, mode) in [("u_pw", "disable"), ("u_ssl", "require")] {
        let extra = format!("password=pw sslmode={mode} channel_binding=require");
        let err = is_tls(&config("127.0.0.1", user, &extra))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("channel binding is required"),
            "{user}: {err}"
        );
    }
    let err = Config::parse("host=h channel_binding=always").unwrap_err();
    assert!(err.to_string().contains("channel_binding"), "{err}");
}

#[tokio::test]
async fn client_certificates() {
    let s = setup();
    let f = |name: &str| s.certs.join(name).display().to_string();
    let with_cert = config(
        "127.0.0.1",
        "u_cert",
        &format!(
            "sslmode=verify-ca sslrootcert={} sslcert={} sslkey={}",
            f("ca.crt"),
            f("client.crt"),
            f("client.key")
        ),
    );
    let mut conn = ferropg::connect(&with_cert).await.unwrap();
    let who: String = conn
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "u_cert");
    // A large result and a cancelled query over the TLS stream.
    let rows = conn
        .query(
            "select repeat('x', 1000) from generate_series(1, 2000)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2000);
    conn.set_timeout(Some(Duration::from_millis(200)));
    let err = conn.query("select pg_sleep(30)", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    conn.set_timeout(None);
    assert_eq!(
        conn.query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    conn.close().await.unwrap();
    // Without the certificate the cert rule turns the user away.
    let err = is_tls(&config(
        "127.0.0.1",
        "u_cert",
        &format!("sslmode=require sslrootcert={}", f("ca.crt")),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db);
}

#[tokio::test]
async fn server_without_tls() {
    let mut plain = support::shared_config();
    plain.sslmode("prefer");
    let mut conn = ferropg::connect(&plain).await.unwrap();
    let on: bool = conn.query_one(IS_TLS, &[]).await.unwrap().get(0);
    assert!(!on);
    conn.close().await.unwrap();
    plain.sslmode("require");
    assert_eq!(
        ferropg::connect(&plain).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    plain.sslmode("sometimes");
    assert_eq!(
        ferropg::connect(&plain).await.unwrap_err().kind(),
        ErrorKind::Config
    );
}

/// A peer that answers the SSLRequest itself, as a man in the middle could: an
/// ErrorResponse, or `S` with a byte behind it, is an error, never a session.
#[tokio::test]
async fn hostile_ssl_answers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    for (answer, says) in [
        (
            &b"E\0\0\0\x0aSFATAL\0\0"[..],
            "answered the SSLRequest with an error",
        ),
        (&b"SX"[..], ""),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 8];
            tcp.read_exact(&mut request).await.unwrap();
            tcp.write_all(answer).await.unwrap();
            let mut rest = Vec::new();
            let _ = tcp.read_to_end(&mut rest).await;
        });
        let err = ferropg::connect(&via(port, "u", "sslmode=require"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(says), "{answer:?}: {err}");
        peer.await.unwrap();
    }
}

/// The shared client's driver writes through the TLS layer by hand (write, then
/// flush what TLS holds back): many concurrent requests, large ones among them,
/// all answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_client_pipelines_over_tls() {
    let c = config("127.0.0.1", "postgres", "sslmode=require");
    let client = std::sync::Arc::new(ferropg::Client::connect(&c).await.unwrap());
    assert!(client
        .query_one(IS_TLS, &[])
        .await
        .unwrap()
        .get::<_, bool>(0));
    let tasks: Vec<_> = (0..50i32)
        .map(|i| {
            let client = std::sync::Arc::clone(&client);
            tokio::spawn(async move {
                // Some parameters span several TLS records.
                let text = "y".repeat((i as usize) * 1000);
                let row = client
                    .query_one("select $1::int4, length($2::text)", &[&i, &text])
                    .await
                    .unwrap();
                (row.get::<_, i32>(0), row.get::<_, i32>(1))
            })
        })
        .collect();
    for (i, task) in (0..50i32).zip(tasks) {
        assert_eq!(task.await.unwrap(), (i, i * 1000));
    }
}

impl Setup {
    fn file(&self, name: &str) -> PathBuf {
        self.certs.join(name)
    }

    fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }

    fn server_addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.pg.port).into()
    }

    /// A direct TLS proxy in front of the server, presenting `cert` (`server`: the
    /// server's own certificate and key; `proxy`: one of its own).
    fn proxy(&self, cert: &str, alpn: bool, upstream: Upstream) -> TlsProxy {
        TlsProxy::start(
            self.server_addr(),
            &self.file(&format!("{cert}.crt")),
            &self.file(&format!("{cert}.key")),
            alpn,
            upstream,
        )
    }
}

/// Settings for a connection through a proxy on `port`, by the name `localhost`.
fn via(port: u16, user: &str, extra: &str) -> Config {
    Config::parse(&format!(
        "host=localhost port={port} user={user} dbname=postgres {extra}"
    ))
    .unwrap()
}

async fn select_one(config: &Config) -> Result<i32, ferropg::Error> {
    let mut conn = ferropg::connect(config).await?;
    let one: i32 = conn.query_one("select 1", &[]).await?.get(0);
    conn.close().await?;
    Ok(one)
}

#[tokio::test]
async fn revocation_lists() {
    let s = setup();
    let verified = |extra: &str| {
        config(
            "localhost",
            "postgres",
            &format!(
                "sslmode=verify-full sslrootcert={} {extra}",
                s.path("ca.crt")
            ),
        )
    };
    // A list from the server's CA that does not name its certificate: accepted.
    let ok = verified(&format!("sslcrl={}", s.path("empty.crl")));
    assert!(is_tls(&ok).await.unwrap());
    // The same CA's later list revokes it: the handshake fails, as with sslcrldir
    // holding the list under its `openssl rehash` name.
    for extra in [
        format!("sslcrl={}", s.path("revoked.crl")),
        format!("sslcrldir={}", s.path("crldir")),
    ] {
        let err = is_tls(&verified(&extra)).await.unwrap_err();
        assert!(err.to_string().contains("Revoked"), "{extra}: {err}");
    }
    // A directory's other names are not CRLs to OpenSSL's lookup, nor here.
    let ok = verified(&format!("sslcrldir={}", s.path("unhashed")));
    assert!(is_tls(&ok).await.unwrap());
    // verify-ca checks revocation too.
    let err = is_tls(&config(
        "localhost",
        "postgres",
        &format!(
            "sslmode=verify-ca sslrootcert={} sslcrl={}",
            s.path("ca.crt"),
            s.path("revoked.crl")
        ),
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("Revoked"), "{err}");
    // A list that cannot be read is an error, not a check quietly left out.
    let err = is_tls(&verified("sslcrl=/nonexistent/root.crl"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("/nonexistent/root.crl"), "{err}");
    // Nothing is checked without a root certificate, so there is nothing to revoke.
    let unchecked = config(
        "localhost",
        "postgres",
        &format!("sslmode=require sslcrl={}", s.path("revoked.crl")),
    );
    assert!(is_tls(&unchecked).await.unwrap());
}

#[tokio::test]
async fn sslrootcert_system_is_verify_full() {
    for weak in ["require", "verify-ca", "prefer", "disable"] {
        let err = Config::parse(&format!("host=h sslrootcert=system sslmode={weak}")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("sslrootcert=system"), "{err}");
    }
}

/// Without a root feature there is no platform store to read: the setting is
/// refused, naming the features.
#[cfg(not(any(feature = "native-roots", feature = "webpki-roots")))]
#[tokio::test]
async fn sslrootcert_system_needs_a_root_feature() {
    let err = is_tls(&config("localhost", "postgres", "sslrootcert=system"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains("native-roots") && text.contains("webpki-roots"),
        "{text}"
    );
}

/// Set in the child process of [`sslrootcert_system_reads_the_platform_store`] to
/// the server's port.
#[cfg(feature = "native-roots")]
const SYSTEM_ROOTS_CHILD: &str = "FERROPG_TEST_SYSTEM_ROOTS_PORT";

/// The platform's store is what `SSL_CERT_FILE` names (rustls-native-certs reads
/// it, like OpenSSL): the test CA is put there for a child process of this test
/// binary, so that the machine's own trust store is left alone, and the variable
/// is set only in a process that runs nothing else.
#[cfg(feature = "native-roots")]
#[tokio::test]
async fn sslrootcert_system_reads_the_platform_store() {
    const NAME: &str = "sslrootcert_system_reads_the_platform_store";
    if let Ok(port) = std::env::var(SYSTEM_ROOTS_CHILD) {
        let at = |host: &str| {
            Config::parse(&format!(
                "host={host} port={port} user=postgres dbname=postgres sslrootcert=system"
            ))
            .unwrap()
        };
        // verify-full without asking for it: the chain is trusted, the name checked.
        assert!(is_tls(&at("localhost")).await.unwrap());
        let err = is_tls(&at("127.0.0.1")).await.unwrap_err();
        assert!(err.to_string().contains("not valid for name"), "{err}");
        return;
    }
    let s = setup();
    let run = |ca: &str| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
            .env(SYSTEM_ROOTS_CHILD, s.pg.port.to_string())
            .env("SSL_CERT_FILE", s.file(ca))
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap()
    };
    let out = run("ca.crt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With another CA as the platform's, the child's first connection is refused.
    let out = run("other.crt");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnknownIssuer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// webpki-roots is Mozilla's list of public CAs: a server whose certificate a
/// private CA signed is refused, and the error says what was trusted.
#[cfg(feature = "webpki-roots")]
#[tokio::test]
async fn webpki_roots_refuse_a_private_ca() {
    let err = is_tls(&config("localhost", "postgres", "sslrootcert=system"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("UnknownIssuer"), "{text}");
    let count: usize = text
        .split(" from webpki-roots")
        .next()
        .and_then(|before| before.rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of webpki-roots in {text}"));
    assert!(count > 50, "{text}");
}

#[tokio::test]
async fn a_callers_client_config() {
    let s = setup();
    let theirs = Arc::new(tlsproxy::client_config_trusting(&s.file("ca.crt")));
    let with = |host: &str, user: &str, extra: &str| {
        let mut c = config(host, user, extra);
        c.tls_config(Arc::clone(&theirs));
        c
    };
    // Used for the checks: the files named are not read, and the name is checked
    // even under require, because the config's verifier checks it.
    let c = with(
        "localhost",
        "postgres",
        "sslmode=require sslrootcert=/nonexistent/root.crt",
    );
    assert!(Arc::ptr_eq(c.get_tls_config().unwrap(), &theirs));
    assert!(is_tls(&c).await.unwrap());
    let err = is_tls(&with("127.0.0.1", "postgres", "sslmode=require"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not valid for name") && text.contains("Config::tls_config"),
        "{text}"
    );
    // sslmode still decides whether TLS is used at all.
    assert!(!is_tls(&with("localhost", "postgres", "sslmode=disable"))
        .await
        .unwrap());
    // Channel binding binds to the certificate the config's handshake saw.
    let bound = with(
        "localhost",
        "u_pw",
        "password=pw sslmode=require channel_binding=require",
    );
    assert!(is_tls(&bound).await.unwrap());
    // And over direct TLS, ALPN being set for the caller.
    assert!(theirs.alpn_protocols.is_empty());
    let proxy = s.proxy("proxy", true, Upstream::Plain);
    let mut direct = via(
        proxy.port(),
        "postgres",
        "sslmode=require sslnegotiation=direct",
    );
    direct.tls_config(Arc::clone(&theirs));
    assert_eq!(select_one(&direct).await.unwrap(), 1);
    assert_eq!(proxy.handshakes(), 1);
}

#[tokio::test]
async fn direct_tls_through_a_terminating_proxy() {
    let s = setup();
    let proxy = s.proxy("proxy", true, Upstream::Plain);
    let ca = s.path("ca.crt");
    let direct = via(
        proxy.port(),
        "postgres",
        &format!("sslmode=verify-full sslrootcert={ca} sslnegotiation=direct"),
    );
    let mut conn = ferropg::connect(&direct).await.unwrap();
    assert_eq!(proxy.handshakes(), 1);
    // The server saw the proxy's plain connection: the TLS was the proxy's.
    let on: bool = conn.query_one(IS_TLS, &[]).await.unwrap().get(0);
    assert!(!on);
    // Cancel requests take the same way: a TLS handshake at once.
    conn.set_timeout(Some(Duration::from_millis(200)));
    let err = conn.query("select pg_sleep(30)", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    conn.set_timeout(None);
    // The next call waits for the cancel request's answer.
    let one: i32 = conn.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    assert_eq!(proxy.handshakes(), 2);
    conn.close().await.unwrap();

    // An SSLRequest is no TLS handshake: the proxy, like PostgreSQL 17 on its
    // direct port, takes none.
    let negotiated = via(
        proxy.port(),
        "postgres",
        &format!("sslmode=verify-full sslrootcert={ca}"),
    );
    assert!(select_one(&negotiated).await.is_err());
    // And PostgreSQL before 17 takes no direct handshake.
    let err = select_one(&config(
        "localhost",
        "postgres",
        &format!("sslmode=verify-full sslrootcert={ca} sslnegotiation=direct"),
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // The proxy's certificate is checked like a server's.
    let other = via(
        proxy.port(),
        "postgres",
        &format!(
            "sslmode=verify-full sslrootcert={} sslnegotiation=direct",
            s.path("other.crt")
        ),
    );
    assert!(select_one(&other)
        .await
        .unwrap_err()
        .to_string()
        .contains("UnknownIssuer"));
    assert_eq!(proxy.handshakes(), 2);

    // A server that does not answer ALPN `postgresql` is refused (libpq 17's rule).
    let mute = s.proxy("proxy", false, Upstream::Plain);
    let err = select_one(&via(
        mute.port(),
        "postgres",
        "sslmode=require sslnegotiation=direct",
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("ALPN"), "{err}");

    // Direct TLS needs a mode that insists on TLS.
    let err = Config::parse("host=h sslmode=prefer sslnegotiation=direct").unwrap_err();
    assert!(err.to_string().contains("sslnegotiation=direct"), "{err}");
}

/// SCRAM-SHA-256-PLUS binds the password exchange to the certificate the client
/// saw. Through a TLS-terminating proxy, the server sees no TLS and offers no
/// binding; through one that speaks TLS to the server as well, the binding holds
/// only when the proxy presents the server's own certificate: otherwise the server
/// finds the proxy in the middle, which is what channel binding is for.
#[tokio::test]
async fn channel_binding_over_direct_tls() {
    let s = setup();
    let extra = |binding: &str| {
        format!(
            "password=pw sslmode=verify-full sslrootcert={} sslnegotiation=direct              channel_binding={binding}",
            s.path("ca.crt")
        )
    };
    let plain = s.proxy("proxy", true, Upstream::Plain);
    assert_eq!(
        select_one(&via(plain.port(), "u_pw", &extra("prefer")))
            .await
            .unwrap(),
        1
    );
    let err = select_one(&via(plain.port(), "u_pw", &extra("require")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("channel binding is required"),
        "{err}"
    );

    let to_server = Upstream::Tls(Arc::new(tlsproxy::client_config_trusting(
        &s.file("ca.crt"),
    )));
    let same_cert = s.proxy("server", true, to_server.clone());
    let mut conn = ferropg::connect(&via(same_cert.port(), "u_pw", &extra("require")))
        .await
        .unwrap();
    let on: bool = conn.query_one(IS_TLS, &[]).await.unwrap().get(0);
    assert!(on, "the server's side of the proxy is TLS");
    conn.close().await.unwrap();

    let own_cert = s.proxy("proxy", true, to_server);
    let err = select_one(&via(own_cert.port(), "u_pw", &extra("require")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert!(err.to_string().contains("channel binding"), "{err}");
}
