//! ferropg against a scripted fake server: malformed bytes, truncated messages and
//! early closes must give errors (never a panic or a hang), and mark the
//! connection closed.

use std::time::Duration;

use ferropg::{Config, Connection, Error, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend message.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ready() -> Vec<u8> {
    msg(b'Z', b"I")
}

/// AuthenticationOk, a cancel key, one parameter and ReadyForQuery.
fn startup_ok() -> Vec<u8> {
    let mut key = 4242i32.to_be_bytes().to_vec();
    key.extend_from_slice(&7i32.to_be_bytes());
    [
        msg(b'R', &0i32.to_be_bytes()),
        msg(b'K', &key),
        msg(b'S', b"server_version\x0099.0\x00"),
        ready(),
    ]
    .concat()
}

fn row_description(columns: &[(&str, u32)]) -> Vec<u8> {
    let mut body = (columns.len() as i16).to_be_bytes().to_vec();
    for (name, oid) in columns {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&4i16.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        body.extend_from_slice(&1i16.to_be_bytes());
    }
    msg(b'T', &body)
}

fn data_row(values: &[Option<&[u8]>]) -> Vec<u8> {
    let mut body = (values.len() as i16).to_be_bytes().to_vec();
    for v in values {
        match v {
            Some(v) => {
                body.extend_from_slice(&(v.len() as i32).to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    msg(b'D', &body)
}

/// The answer to `query("...", &[])` (Parse, Bind, Describe portal, Execute, Sync)
/// returning one int4 column named `n` with these rows.
fn int4_result(rows: &[i32]) -> Vec<u8> {
    let mut v = [
        msg(b'1', b""),
        msg(b'2', b""),
        row_description(&[("n", 23)]),
    ]
    .concat();
    for r in rows {
        v.extend(data_row(&[Some(&r.to_be_bytes())]));
    }
    v.extend(msg(b'C', format!("SELECT {}\0", rows.len()).as_bytes()));
    v.extend(ready());
    v
}

/// How the fake server behaves after accepting.
struct Script {
    /// Sent after reading the startup message.
    startup_reply: Vec<u8>,
    /// For each request read, the bytes to answer with.
    replies: Vec<Vec<u8>>,
    /// Write the replies one byte at a time.
    trickle: bool,
}

impl Script {
    fn replies(replies: Vec<Vec<u8>>) -> Script {
        Script {
            startup_reply: startup_ok(),
            replies,
            trickle: false,
        }
    }
}

/// Reads until the client has sent a Sync or a Query (the end of a request).
async fn read_request(s: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        // Walk the frames; a request ends with Sync ('S') or Query ('Q').
        let mut pos = 0;
        while buf.len() >= pos + 5 {
            let tag = buf[pos];
            let len = i32::from_be_bytes(buf[pos + 1..pos + 5].try_into().unwrap()) as usize;
            if buf.len() < pos + 1 + len {
                break;
            }
            pos += 1 + len;
            if tag == b'S' || tag == b'Q' {
                return true;
            }
        }
    }
}

/// Serves one connection with `script`, then closes it.
async fn fake_server(script: Script) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut startup = vec![0u8; i32::from_be_bytes(len) as usize - 4];
        if s.read_exact(&mut startup).await.is_err() {
            return;
        }
        if s.write_all(&script.startup_reply).await.is_err() {
            return;
        }
        for reply in script.replies {
            if !read_request(&mut s).await {
                return;
            }
            if script.trickle {
                for b in reply {
                    if s.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            } else if s.write_all(&reply).await.is_err() {
                return;
            }
        }
        // Give the client time to read before the close.
        tokio::time::sleep(Duration::from_millis(50)).await;
    });
    port
}

fn config(port: u16) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1").port(port).user("fake").dbname("fake");
    c
}

async fn connect(script: Script) -> Connection {
    let port = fake_server(script).await;
    ferropg::connect(&config(port)).await.expect("fake startup")
}

/// Runs `select` on the fake, with a deadline so that a hang fails the test.
async fn query_err(conn: &mut Connection) -> Error {
    tokio::time::timeout(Duration::from_secs(5), conn.query("select", &[]))
        .await
        .expect("the client hung")
        .expect_err("the fake's answer must be rejected")
}

async fn assert_now_closed(conn: &mut Connection) {
    assert!(conn.is_closed());
    let err = conn.query("select", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
}

#[tokio::test]
async fn the_fake_server_speaks_valid_protocol() {
    let notice = msg(b'N', b"SNOTICE\0C00000\0Mhi\0\0");
    let status = msg(b'S', b"TimeZone\0UTC\0");
    let mut reply = int4_result(&[42, -1]);
    reply.splice(0..0, notice.iter().chain(&status).copied());
    let mut conn = connect(Script {
        trickle: true,
        ..Script::replies(vec![reply, int4_result(&[])])
    })
    .await;
    assert_eq!(conn.server_version(), Some("99.0"));
    assert_eq!(conn.backend_pid(), 4242);
    let rows = conn.query("select", &[]).await.unwrap();
    let got: Vec<i32> = rows.iter().map(|r| r.get("n")).collect();
    assert_eq!(got, [42, -1]);
    assert_eq!(conn.parameter("TimeZone"), Some("UTC"));
    assert!(conn.query("select", &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_message_type_is_a_protocol_error() {
    let mut conn = connect(Script::replies(vec![msg(b'?', b"junk")])).await;
    let err = query_err(&mut conn).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.is_closed());
    assert_now_closed(&mut conn).await;
}

#[tokio::test]
async fn an_impossible_length_is_a_protocol_error() {
    for header in [[b'Z', 0, 0, 0, 2], [b'D', 0x7f, 0xff, 0xff, 0xff]] {
        let mut conn = connect(Script::replies(vec![header.to_vec()])).await;
        let err = query_err(&mut conn).await;
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert_now_closed(&mut conn).await;
    }
}

#[tokio::test]
async fn a_malformed_data_row_is_a_protocol_error() {
    // One value claiming 10 bytes, with 2 present.
    let mut body = 1i16.to_be_bytes().to_vec();
    body.extend_from_slice(&10i32.to_be_bytes());
    body.extend_from_slice(b"ab");
    let mut reply = [
        msg(b'1', b""),
        msg(b'2', b""),
        row_description(&[("n", 23)]),
    ]
    .concat();
    reply.extend(msg(b'D', &body));
    let mut conn = connect(Script::replies(vec![reply])).await;
    let err = query_err(&mut conn).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_now_closed(&mut conn).await;
}

#[tokio::test]
async fn a_row_wider_than_its_description_is_a_protocol_error() {
    let mut reply = [
        msg(b'1', b""),
        msg(b'2', b""),
        row_description(&[("n", 23)]),
    ]
    .concat();
    reply.extend(data_row(&[Some(&1i32.to_be_bytes()), None]));
    reply.extend(msg(b'C', b"SELECT 1\0"));
    reply.extend(ready());
    let mut conn = connect(Script::replies(vec![reply])).await;
    let err = query_err(&mut conn).await;
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_now_closed(&mut conn).await;
}

#[tokio::test]
async fn a_message_out_of_place_is_a_protocol_error() {
    let key = [1i32.to_be_bytes(), 2i32.to_be_bytes()].concat();
    for reply in [
        msg(b'K', &key),
        msg(b'R', &0i32.to_be_bytes()),
        [msg(b'1', b""), msg(b'V', &(-1i32).to_be_bytes())].concat(),
    ] {
        let mut conn = connect(Script::replies(vec![reply])).await;
        let err = query_err(&mut conn).await;
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert_now_closed(&mut conn).await;
    }
}

#[tokio::test]
async fn a_close_in_the_middle_of_a_message_is_an_error() {
    let full = int4_result(&[1]);
    for cut in [0, 3, 7, full.len() - 3] {
        let mut conn = connect(Script::replies(vec![full[..cut].to_vec()])).await;
        let err = query_err(&mut conn).await;
        assert!(
            matches!(err.kind(), ErrorKind::Closed | ErrorKind::Io),
            "cut at {cut}: {err:?}"
        );
        assert_now_closed(&mut conn).await;
    }
}

#[tokio::test]
async fn a_server_error_is_followed_by_recovery() {
    let error = msg(b'E', b"SERROR\0VERROR\0C42P01\0Mno such table\0\0");
    let mut conn = connect(Script::replies(vec![
        [error, ready()].concat(),
        int4_result(&[5]),
    ]))
    .await;
    let err = conn.query("select", &[]).await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"));
    assert!(!conn.is_closed());
    let rows = conn.query("select", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 5);
}

#[tokio::test]
async fn startup_failures() {
    // The server refuses the login.
    let fatal = msg(b'E', b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry\0\0");
    let port = fake_server(Script {
        startup_reply: fatal,
        replies: vec![],
        trickle: false,
    })
    .await;
    let err = ferropg::connect(&config(port)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(err.code().map(|c| c.code()), Some("28000"));

    // A method this client does not implement.
    let port = fake_server(Script {
        startup_reply: msg(b'R', &7i32.to_be_bytes()),
        replies: vec![],
        trickle: false,
    })
    .await;
    let err = ferropg::connect(&config(port)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");

    // The server hangs up without a word.
    let port = fake_server(Script {
        startup_reply: vec![],
        replies: vec![],
        trickle: false,
    })
    .await;
    let err = ferropg::connect(&config(port)).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Closed | ErrorKind::Io),
        "{err:?}"
    );

    // Garbage instead of an authentication request.
    let port = fake_server(Script {
        startup_reply: b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        replies: vec![],
        trickle: false,
    })
    .await;
    let err = ferropg::connect(&config(port)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");

    // ReadyForQuery before authentication.
    let port = fake_server(Script {
        startup_reply: ready(),
        replies: vec![],
        trickle: false,
    })
    .await;
    let err = ferropg::connect(&config(port)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
}
