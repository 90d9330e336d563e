//! TLS against a server of this binary's own with `ssl = on`: every `sslmode`, the
//! `allow`/`prefer` fallbacks that `pg_hba.conf` forces, certificate checks, client
//! certificates, and a server without TLS. The certificates are made here with the
//! `openssl` command.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ferropg::{Config, ErrorKind};
use support::TempCluster;

const IS_TLS: &str = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";

/// Runs `openssl` with `args`, split at spaces (none of them holds one).
fn openssl(dir: &Path, args: &str) {
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
}

/// A CA, a server certificate named for localhost only, a client certificate for
/// `u_cert`, and a CA that signed neither.
fn make_certs(dir: &Path) {
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
    fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [("server", "localhost"), ("client", "u_cert")] {
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
}

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
        make_certs(&certs);
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
