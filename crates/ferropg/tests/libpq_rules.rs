//! libpq's connection rules in the Rust face, against real servers: a primary and
//! a hot standby made with `pg_basebackup` for `target_session_attrs`, a
//! connection service file, `load_balance_hosts`, TCP keepalives, and the refusal
//! of keys libpq does not know. (The password file has its test in `auth.rs`.)

mod support;

use std::collections::HashSet;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;
use std::time::Duration;

use ferropg::{Config, Connection, ErrorKind};
use support::TempCluster;

/// A primary and its hot standby, started once for this binary.
fn pair() -> &'static (TempCluster, TempCluster) {
    static PAIR: OnceLock<(TempCluster, TempCluster)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let primary = TempCluster::start().expect("start the primary");
        let standby = primary.start_standby().expect("start the standby");
        (primary, standby)
    })
}

fn hosts_dsn(servers: &[&TempCluster], extra: &str) -> String {
    let hosts: Vec<&str> = servers.iter().map(|s| s.host.as_str()).collect();
    let ports: Vec<String> = servers.iter().map(|s| s.port.to_string()).collect();
    format!(
        "host={} port={} user=postgres dbname=postgres sslmode=disable {extra}",
        hosts.join(","),
        ports.join(",")
    )
}

async fn connect(dsn: &str) -> Result<Connection, ferropg::Error> {
    ferropg::connect(&Config::parse(dsn)?).await
}

async fn in_recovery(conn: &mut Connection) -> bool {
    conn.query_one("select pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn target_session_attrs_choose_between_a_primary_and_a_hot_standby() {
    let (primary, standby) = pair();
    let both = [standby, primary];
    // (value, hosts in order, expect a standby)
    let cases: [(&str, &[&TempCluster], bool); 9] = [
        ("any", &both, true),
        ("read-write", &both, false),
        ("primary", &both, false),
        ("read-only", &[primary, standby], true),
        ("standby", &[primary, standby], true),
        ("prefer-standby", &[primary, standby], true),
        ("prefer-standby", &[primary], false),
        ("primary", &[standby, primary, standby], false),
        ("read-write", &[primary], false),
    ];
    for (value, servers, standby_expected) in cases {
        let dsn = hosts_dsn(servers, &format!("target_session_attrs={value}"));
        let mut conn = connect(&dsn)
            .await
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(in_recovery(&mut conn).await, standby_expected, "{value}");
    }
    // Nothing of the kind asked for: an error of its own kind, naming the value.
    for (value, server) in [
        ("standby", primary),
        ("primary", standby),
        ("read-write", standby),
    ] {
        let err = connect(&hosts_dsn(
            &[server],
            &format!("target_session_attrs={value}"),
        ))
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NoMatchingServer, "{value}: {err}");
        assert!(err.to_string().contains(value), "{err}");
    }
    // A server that cannot be reached is skipped on the way.
    let unreachable = format!(
        "host=127.0.0.1,{} port=1,{} user=postgres dbname=postgres sslmode=disable \
         target_session_attrs=standby",
        standby.host, standby.port
    );
    let mut conn = connect(&unreachable).await.unwrap();
    assert!(in_recovery(&mut conn).await);
    let err = Config::parse("host=h target_session_attrs=master").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("master"), "{err}");
}

async fn app(conn: &mut Connection) -> String {
    let row = conn.query_one("show application_name", &[]).await.unwrap();
    row.get(0)
}

async fn client_port(conn: &mut Connection) -> u16 {
    let port: i32 = conn
        .query_one("select inet_client_port()", &[])
        .await
        .unwrap()
        .get(0);
    u16::try_from(port).unwrap()
}

#[tokio::test]
async fn a_service_file_supplies_what_the_string_leaves_unset() {
    let pg = support::shared();
    let dir = std::env::temp_dir().join(format!("ferropg-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pg_service.conf");
    std::fs::write(
        &file,
        format!(
            "# services for the test\n[elsewhere]\nhost=nowhere.invalid\n\n[shop]\n\
             host={}\nport={}\nuser={}\ndbname=postgres\nsslmode=disable\n\
             application_name=from_service\n",
            pg.host, pg.port, pg.user
        ),
    )
    .unwrap();
    let servicefile = file.display();
    let mut conn = connect(&format!("service=shop servicefile={servicefile}"))
        .await
        .unwrap();
    assert_eq!(app(&mut conn).await, "from_service");
    // What the connection string says wins over the service.
    let mut conn = connect(&format!(
        "service=shop servicefile={servicefile} application_name=mine"
    ))
    .await
    .unwrap();
    assert_eq!(app(&mut conn).await, "mine");
    // A service defined nowhere, and a file with a malformed line in it.
    let err = connect(&format!("service=none servicefile={servicefile}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("\"none\" not found"), "{err}");
    std::fs::write(&file, "[shop]\nhost\n").unwrap();
    let err = connect(&format!("service=shop servicefile={servicefile}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn load_balance_hosts_random_spreads_connections() {
    let pg = support::shared();
    // One server, reached two ways: its Unix socket and TCP.
    let dsn = |mode: &str| {
        format!(
            "host={},{} port={} user={} dbname=postgres sslmode=disable load_balance_hosts={mode}",
            pg.socket_dir.display(),
            pg.host,
            pg.port,
            pg.user
        )
    };
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let mut conn = connect(&dsn("random")).await.unwrap();
        let over_tcp: bool = conn
            .query_one("select inet_client_addr() is not null", &[])
            .await
            .unwrap()
            .get(0);
        seen.insert(over_tcp);
    }
    assert_eq!(seen.len(), 2, "40 random orders all started with one host");
    for _ in 0..10 {
        let mut conn = connect(&dsn("disable")).await.unwrap();
        let over_tcp: bool = conn
            .query_one("select inet_client_addr() is not null", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!over_tcp, "disable keeps the hosts in order");
    }
    assert!(Config::parse("host=h load_balance_hosts=always").is_err());
}

/// The keepalive settings of this process's TCP socket whose local port is `port`.
fn keepalive_of(port: u16) -> (bool, Option<(Duration, Duration, u32)>) {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("socket:") {
            continue;
        }
        // SAFETY: the descriptor is open (listed just now) and only borrowed for
        // the getsockopt calls below.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&fd);
        let local = socket.local_addr().ok().and_then(|a| a.as_socket());
        if local.map(|a| a.port()) != Some(port) {
            continue;
        }
        assert!(fd.as_raw_fd() >= 0);
        let on = socket.keepalive().unwrap();
        let timings = on.then(|| {
            (
                socket.tcp_keepalive_time().unwrap(),
                socket.tcp_keepalive_interval().unwrap(),
                socket.tcp_keepalive_retries().unwrap(),
            )
        });
        return (on, timings);
    }
    panic!("no socket of this process has local port {port}");
}

#[tokio::test]
async fn keepalive_settings_reach_the_socket() {
    let pg = support::shared();
    let base = format!(
        "host={} port={} user={} dbname=postgres sslmode=disable",
        pg.host, pg.port, pg.user
    );
    let mut conn = connect(&format!(
        "{base} keepalives_idle=17 keepalives_interval=3 keepalives_count=4"
    ))
    .await
    .unwrap();
    let port = client_port(&mut conn).await;
    assert_eq!(
        keepalive_of(port),
        (
            true,
            Some((Duration::from_secs(17), Duration::from_secs(3), 4))
        )
    );
    // On by default, as in libpq; off with keepalives=0.
    let mut conn = connect(&base).await.unwrap();
    let port = client_port(&mut conn).await;
    assert!(keepalive_of(port).0);
    let mut conn = connect(&format!("{base} keepalives=0")).await.unwrap();
    let port = client_port(&mut conn).await;
    assert!(!keepalive_of(port).0);
    let err = Config::parse("host=h keepalives_idle=soon").unwrap_err();
    assert!(err.to_string().contains("keepalives_idle"), "{err}");
}

#[test]
fn keys_libpq_does_not_know_are_refused_by_name() {
    for dsn in [
        "host=h colour=blue",
        "postgresql://h/db?search_path=x",
        "host=h application-name=x",
    ] {
        let err = Config::parse(dsn).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{dsn}");
        let key = if dsn.contains("colour") {
            "colour"
        } else if dsn.contains("search_path") {
            "search_path"
        } else {
            "application-name"
        };
        assert!(
            err.to_string()
                .contains(&format!("invalid connection option \"{key}\"")),
            "{dsn}: {err}"
        );
    }
    // Settings for the server go through options (or Config::server_setting).
    assert!(Config::parse("host=h options='-c search_path=x' client_encoding=UTF8").is_ok());
    // libpq's own options that this client does not implement are refused too.
    for dsn in [
        "host=h gssencmode=disable",
        "host=h require_auth=scram-sha-256",
        "host=h sslmode=require sslcertmode=require",
    ] {
        let err = Config::parse(dsn).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{dsn}: {err}");
    }
}

#[tokio::test]
async fn a_pool_opens_every_connection_on_a_server_of_the_kind_asked_for() {
    let (primary, standby) = pair();
    for (value, servers, standby_expected) in [
        ("read-write", [standby, primary], false),
        ("read-only", [primary, standby], true),
    ] {
        let dsn = hosts_dsn(&servers, &format!("target_session_attrs={value}"));
        let pool = ferropg::Pool::builder(Config::parse(&dsn).unwrap())
            .min_size(2)
            .max_size(3)
            .build()
            .await
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.unwrap());
        }
        for client in &held {
            let in_recovery: bool = client
                .query_one("select pg_is_in_recovery()", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(in_recovery, standby_expected, "{value}");
        }
        assert_eq!(pool.size(), 3);
    }
}
