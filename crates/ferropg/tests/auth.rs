//! Password authentication (cleartext, MD5, SCRAM-SHA-256) against a server of
//! this binary's own, whose pg_hba.conf the tests rewrite.

mod support;

use std::sync::OnceLock;

use ferropg::{sqlstate, Config, ErrorKind};
use support::TempCluster;

/// `(role, password, hba method, password_encryption)`.
const ROLES: &[(&str, &str, &str, &str)] = &[
    ("md5_user", "md5 secret", "md5", "md5"),
    (
        "scram_user",
        "scram sécret",
        "scram-sha-256",
        "scram-sha-256",
    ),
    // An md5 rule for a SCRAM-stored password: the server upgrades it to SCRAM.
    ("md5_rule_scram_user", "upgrade", "md5", "scram-sha-256"),
    ("clear_user", "clear secret", "password", "scram-sha-256"),
];

/// The cluster, with one role per method and an HBA rule for each on
/// 127.0.0.1; the bootstrap superuser stays trusted on the socket.
fn cluster() -> &'static TempCluster {
    static CLUSTER: OnceLock<TempCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let pg = TempCluster::start().expect("start the cluster");
        for (role, password, _, encryption) in ROLES {
            pg.sql(&format!(
                "set password_encryption = '{encryption}'; \
                 create role {role} login password '{password}'"
            ))
            .expect("create role");
        }
        pg.reset_hba().unwrap();
        pg.add_hba_entry("local", "all", &pg.user, None, "trust")
            .unwrap();
        for (role, _, method, _) in ROLES {
            pg.add_hba_entry("host", "all", role, Some("127.0.0.1/32"), method)
                .unwrap();
        }
        pg.reload().unwrap();
        pg
    })
}

fn config(role: &str, password: Option<&str>) -> Config {
    let pg = cluster();
    let mut c = Config::new();
    c.host("127.0.0.1")
        .port(pg.port)
        .user(role)
        .dbname("postgres");
    if let Some(p) = password {
        c.password(p);
    }
    c
}

async fn logs_in(role: &str, password: &str) {
    let mut conn = ferropg::connect(&config(role, Some(password)))
        .await
        .unwrap_or_else(|e| panic!("{role}: {e}"));
    let row = conn
        .query_one("select current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), role);
}

async fn rejected(role: &str) {
    let err = ferropg::connect(&config(role, Some("wrong password")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{role}: {err}");
    assert_eq!(
        err.code(),
        Some(&sqlstate::INVALID_PASSWORD),
        "{role}: {err}"
    );
    let db = err.as_db_error().unwrap();
    assert!(db.is_fatal());
    assert!(db.message().contains(role), "{}", db.message());
}

#[tokio::test]
async fn md5() {
    logs_in("md5_user", "md5 secret").await;
    rejected("md5_user").await;
}

#[tokio::test]
async fn scram_sha_256() {
    logs_in("scram_user", "scram sécret").await;
    logs_in("md5_rule_scram_user", "upgrade").await;
    rejected("scram_user").await;
}

#[tokio::test]
async fn cleartext_password() {
    logs_in("clear_user", "clear secret").await;
    rejected("clear_user").await;
}

#[tokio::test]
async fn password_from_the_uri() {
    let pg = cluster();
    let uri = format!(
        "postgresql://scram_user:scram%20s%C3%A9cret@127.0.0.1:{}/postgres",
        pg.port
    );
    let mut conn = ferropg::connect(&uri.parse().unwrap()).await.unwrap();
    assert_eq!(
        conn.query_one("select 1::int4", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

#[tokio::test]
async fn missing_password_is_rejected_by_the_server() {
    if std::env::var_os("PGPASSWORD").is_some() {
        eprintln!("skipped: $PGPASSWORD is set");
        return;
    }
    // No password means an empty one: the server refuses it with its own SQLSTATE.
    for (role, _, _, _) in ROLES {
        let err = ferropg::connect(&config(role, None)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Db, "{role}: {err}");
        assert_eq!(
            err.code(),
            Some(&sqlstate::INVALID_PASSWORD),
            "{role}: {err}"
        );
    }
}

#[tokio::test]
async fn no_hba_rule_is_rejected_by_the_server() {
    let err = ferropg::connect(&config("nobody", Some("x")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(
        err.code(),
        Some(&sqlstate::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err}"
    );
}

#[tokio::test]
async fn password_from_the_password_file() {
    use std::os::unix::fs::PermissionsExt;
    let pg = cluster();
    let dir = std::env::temp_dir().join(format!("ferropg-passfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pgpass");
    // The first entry that serves the address, database and user wins; `*` matches.
    std::fs::write(
        &path,
        format!(
            "# comment\nother:*:*:*:wrong\n127.0.0.1:{}:postgres:scram_user:scram sécret\n*:*:*:*:wrong\n",
            pg.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dsn = format!(
        "host=127.0.0.1 port={} user=scram_user dbname=postgres passfile={}",
        pg.port,
        path.display()
    );
    let config: Config = dsn.parse().unwrap();
    let mut conn = ferropg::connect(&config)
        .await
        .expect("password from the file");
    let one: i32 = conn.query_one("select 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    // A file that others may read is ignored, as libpq does.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ferropg::connect(&config).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Io, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
