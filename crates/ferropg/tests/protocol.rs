//! ferropg against a real PostgreSQL whose link is corrupted: garbage, impossible
//! lengths, malformed rows, messages out of place and closes in the middle of a
//! message must give errors of the right kind (never a panic or a hang), leave the
//! connection closed, and leave other connections alone.
//!
//! Every test talks to the server of `support::shared()` through a [`Proxy`]: a
//! small TCP relay in this file that forwards client -> server unchanged and,
//! server -> client, passes the bytes through until the test arms an [`Action`].
//! An armed action applies once, to the next *reply* the server sends: its bytes
//! up to and including the next ReadyForQuery (or up to the server's close). A
//! reply is either the startup (AuthenticationOk ... ReadyForQuery, the cluster
//! trusts every local TCP login) or the answer to one request. The server is
//! always real; only what reaches the client is rewritten, which also produces
//! what no real server sends (ReadyForQuery before authentication, a row wider
//! than its description).

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferropg::{Config, Connection, Error, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A client that takes longer than this to give up has hung.
const DEADLINE: Duration = Duration::from_secs(10);

/// A one-column, one-row query, new to each connection's statement cache, so it is
/// sent in one round trip (Parse, Describe of the statement, Bind, Execute, Sync)
/// and its reply is ParseComplete, ParameterDescription, RowDescription,
/// BindComplete, DataRow, CommandComplete, ReadyForQuery.
const ONE_ROW: &str = "select 42::int4 as n";

/// Turns a reply into the bytes the client gets instead.
type Rewrite = Box<dyn FnOnce(&[u8]) -> Vec<u8> + Send>;

/// What the proxy does with the next reply from the server.
enum Action {
    /// Forward it unchanged (the resting state).
    Pass,
    /// Forward it one byte per write.
    Trickle,
    /// Forward what the function makes of it, then go on passing.
    Rewrite(Rewrite),
    /// Forward its first `n` bytes (for `n < 0`, all but the last `-n`), then close
    /// both sides.
    Cut(isize),
    /// Close both sides instead of forwarding any of it.
    Close,
}

/// A relay from 127.0.0.1:`port` to the shared server; every connection it
/// accepts gets its own server connection. The armed action goes to whichever
/// connection receives a reply first (the tests keep the others idle).
struct Proxy {
    port: u16,
    action: Arc<Mutex<Action>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let pg = support::shared();
        let upstream = (pg.host.clone(), pg.port);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let action = Arc::new(Mutex::new(Action::Pass));
        let shared = Arc::clone(&action);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), Arc::clone(&shared)));
            }
        });
        Proxy { port, action }
    }

    /// Applies `action` to the next reply.
    fn arm(&self, action: Action) {
        *self.action.lock().unwrap() = action;
    }

    /// Sends `bytes` instead of the next reply.
    fn replace(&self, bytes: Vec<u8>) {
        self.arm(Action::Rewrite(Box::new(move |_| bytes)));
    }

    /// Sends `f(reply)` instead of the next reply.
    fn rewrite(&self, f: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static) {
        self.arm(Action::Rewrite(Box::new(f)));
    }

    fn config(&self, user: &str) -> Config {
        let mut c = Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(user)
            .dbname("postgres")
            .application_name("ferropg-protocol-tests")
            // The faults aim at the session's messages, not at an SSLRequest's answer.
            .sslmode("disable");
        c
    }

    /// Connects through the proxy as the bootstrap superuser.
    async fn connect(&self) -> Result<Connection, Error> {
        let user = support::shared().user.clone();
        within(ferropg::connect(&self.config(&user))).await
    }

    /// A connection whose startup went through untouched.
    async fn session(&self) -> Connection {
        self.connect().await.expect("connect through the proxy")
    }
}

/// Relays one client connection until either side closes or an action closes it.
async fn relay(client: TcpStream, upstream: (String, u16), action: Arc<Mutex<Action>>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return; // dropping `client` closes it
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut from_client, to_client) = client.into_split();
    let (from_server, mut to_server) = server.into_split();
    let upward = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
        let _ = to_server.shutdown().await;
    });
    downward(from_server, to_client, &action).await;
    // Closes the client's socket (its write half went with `downward`) and the
    // server's, so the backend ends too.
    upward.abort();
}

/// Takes the armed action, leaving `Pass`.
fn take(action: &Mutex<Action>) -> Action {
    std::mem::replace(&mut *action.lock().unwrap(), Action::Pass)
}

/// Server -> client: passes chunks through; once an action is armed, collects the
/// reply and hands it to [`apply`].
async fn downward(
    mut from_server: OwnedReadHalf,
    mut to_client: OwnedWriteHalf,
    action: &Mutex<Action>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut armed: Option<Action> = None;
    let mut reply = Vec::new();
    loop {
        let n = from_server.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            // The server closed: whatever was collected is the reply.
            if let Some(a) = armed.take() {
                apply(a, &reply, &mut to_client).await;
            }
            return;
        }
        if armed.is_none() {
            match take(action) {
                Action::Pass => {
                    if to_client.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                    continue;
                }
                a => armed = Some(a),
            }
        }
        reply.extend_from_slice(&chunk[..n]);
        let Some(end) = reply_end(&reply) else {
            continue;
        };
        let rest = reply.split_off(end);
        let a = armed.take().expect("armed");
        if !apply(a, &reply, &mut to_client).await {
            return;
        }
        reply.clear();
        if !rest.is_empty() && to_client.write_all(&rest).await.is_err() {
            return;
        }
    }
}

/// Carries out `action` on `reply`; false when the link is to be closed.
async fn apply(action: Action, reply: &[u8], to_client: &mut OwnedWriteHalf) -> bool {
    match action {
        Action::Pass => to_client.write_all(reply).await.is_ok(),
        Action::Trickle => {
            for byte in reply {
                if to_client.write_all(&[*byte]).await.is_err() {
                    return false;
                }
                // Let the client read each byte on its own.
                tokio::task::yield_now().await;
            }
            true
        }
        Action::Rewrite(f) => to_client.write_all(&f(reply)).await.is_ok(),
        Action::Cut(at) => {
            let keep = match usize::try_from(at) {
                Ok(n) => n.min(reply.len()),
                Err(_) => reply.len().saturating_sub(at.unsigned_abs()),
            };
            let _ = to_client.write_all(&reply[..keep]).await;
            false
        }
        Action::Close => false,
    }
}

/// The whole messages of `buf`: `(tag, start, end)`, `end` exclusive.
fn frames(buf: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(header) = buf.get(pos..pos + 5) {
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let Some(end) = usize::try_from(len)
            .ok()
            .filter(|l| *l >= 4)
            .map(|l| pos + 1 + l)
            .filter(|end| *end <= buf.len())
        else {
            break;
        };
        out.push((header[0], pos, end));
        pos = end;
    }
    out
}

/// Where the reply at the front of `buf` ends: just after its ReadyForQuery.
fn reply_end(buf: &[u8]) -> Option<usize> {
    frames(buf)
        .into_iter()
        .find(|(tag, _, _)| *tag == b'Z')
        .map(|(_, _, end)| end)
}

/// The first message with this tag in `reply`, as `(start, end)`.
fn find(reply: &[u8], tag: u8) -> (usize, usize) {
    frames(reply)
        .into_iter()
        .find(|(t, _, _)| *t == tag)
        .map(|(_, start, end)| (start, end))
        .unwrap_or_else(|| panic!("no {:?} message in the reply", char::from(tag)))
}

/// A backend message.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// `reply` with `extra` inserted after its first `after` messages.
fn insert_after(reply: &[u8], after: usize, extra: &[u8]) -> Vec<u8> {
    let at = match after {
        0 => 0,
        n => frames(reply)[n - 1].2,
    };
    [&reply[..at], extra, &reply[at..]].concat()
}

/// `reply` with the length field of its first `tag` message replaced by `len`.
fn with_length(reply: &[u8], tag: u8, len: i32) -> Vec<u8> {
    let (start, _) = find(reply, tag);
    let mut out = reply.to_vec();
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    out
}

/// `reply` with the first value of its first DataRow claiming to be longer than
/// the rest of the message.
fn overrun_first_value(reply: &[u8]) -> Vec<u8> {
    let (start, end) = find(reply, b'D');
    // Tag, length, column count, then the first value's length.
    let value_len = start + 7;
    let room = end - (value_len + 4);
    let mut out = reply.to_vec();
    out[value_len..value_len + 4].copy_from_slice(&(room as i32 + 1).to_be_bytes());
    out
}

/// `reply` with one more (NULL) column in its first DataRow than its
/// RowDescription has.
fn widen_first_row(reply: &[u8]) -> Vec<u8> {
    let (start, end) = find(reply, b'D');
    let body = &reply[start + 5..end];
    let columns = i16::from_be_bytes([body[0], body[1]]);
    let mut new_body = (columns + 1).to_be_bytes().to_vec();
    new_body.extend_from_slice(&body[2..]);
    new_body.extend_from_slice(&(-1i32).to_be_bytes());
    [&reply[..start], &msg(b'D', &new_body), &reply[end..]].concat()
}

/// Garbage for a whole reply, by what is wrong with it. Each is rejected as soon
/// as its first five bytes (or its one message) are read.
fn garbage() -> Vec<(&'static str, Vec<u8>)> {
    // A row of one value claiming 10 bytes, with 2 present.
    let mut overrun = 1i16.to_be_bytes().to_vec();
    overrun.extend_from_slice(&10i32.to_be_bytes());
    overrun.extend_from_slice(b"ab");
    vec![
        ("an unknown message type", msg(b'?', b"junk")),
        ("length 0", vec![b'Z', 0, 0, 0, 0]),
        ("length 2", vec![b'Z', 0, 0, 0, 2]),
        ("length 2 GiB", vec![b'D', 0x7f, 0xff, 0xff, 0xff]),
        ("a negative length", vec![b'C', 0x80, 0, 0, 0]),
        (
            "an HTTP response",
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        ),
        ("a DataRow overrunning its length", msg(b'D', &overrun)),
    ]
}

/// Awaits `f`, failing the test if it takes longer than [`DEADLINE`].
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("the client hung")
}

/// Runs `sql`, which must fail.
async fn query_err(conn: &mut Connection, sql: &str) -> Error {
    within(conn.query(sql, &[]))
        .await
        .expect_err("the corrupted reply must be rejected")
}

/// Connects through `proxy`, which must fail.
async fn connect_err(proxy: &Proxy) -> Error {
    proxy
        .connect()
        .await
        .expect_err("the corrupted startup must be rejected")
}

/// The connection is closed and says so on the next call, at once.
async fn assert_now_closed(conn: &mut Connection, what: &str) {
    assert!(conn.is_closed(), "{what}: not marked closed");
    let err = within(conn.query(ONE_ROW, &[])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{what}: {err}");
}

fn assert_protocol(err: &Error, what: &str) {
    assert_eq!(err.kind(), ErrorKind::Protocol, "{what}: {err:?}");
    assert!(err.is_closed(), "{what}: {err:?}");
}

fn assert_cut(err: &Error, what: &str) {
    assert!(
        matches!(err.kind(), ErrorKind::Closed | ErrorKind::Io),
        "{what}: {err:?}"
    );
    assert!(err.is_closed(), "{what}: {err:?}");
}

#[tokio::test]
async fn the_proxy_passes_a_real_session_through() {
    let proxy = Proxy::start().await;
    // The startup one byte at a time.
    proxy.arm(Action::Trickle);
    let mut conn = proxy.session().await;
    assert!(conn.backend_pid() > 0);
    assert!(conn.server_version().is_some());
    let pid: i32 = within(conn.query_one("select pg_backend_pid()", &[]))
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid, conn.backend_pid());

    // Rows, a ParameterStatus and a notice, one byte at a time.
    proxy.arm(Action::Trickle);
    let rows = within(conn.query("select n::int4 from generate_series(1, 3) n", &[]))
        .await
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.get(0)).collect::<Vec<i32>>(),
        [1, 2, 3]
    );
    proxy.arm(Action::Trickle);
    within(
        conn.batch_execute(
            "set application_name = 'trickled'; do $$ begin raise notice 'hi'; end $$",
        ),
    )
    .await
    .unwrap();
    assert_eq!(conn.parameter("application_name"), Some("trickled"));

    // A rewrite that changes nothing changes nothing.
    proxy.rewrite(|reply| reply.to_vec());
    let row = within(conn.query_one(ONE_ROW, &[])).await.unwrap();
    assert_eq!(row.get::<_, i32>("n"), 42);
    assert!(!conn.is_closed());
    within(conn.close()).await.unwrap();
}

#[tokio::test]
async fn a_server_error_is_followed_by_recovery() {
    let proxy = Proxy::start().await;
    let mut conn = proxy.session().await;
    let err = within(conn.query("select * from no_such_table", &[]))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42P01"), "{err}");
    assert!(!err.is_closed());
    assert!(!conn.is_closed());
    let row = within(conn.query_one("select 5::int4", &[])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 5);
}

#[tokio::test]
async fn garbage_instead_of_a_reply_is_a_protocol_error() {
    let proxy = Proxy::start().await;
    for (what, bytes) in garbage() {
        let mut conn = proxy.session().await;
        proxy.replace(bytes);
        let err = query_err(&mut conn, ONE_ROW).await;
        assert_protocol(&err, what);
        assert_now_closed(&mut conn, what).await;
    }
}

#[tokio::test]
async fn an_impossible_length_inside_a_real_reply_is_a_protocol_error() {
    let proxy = Proxy::start().await;
    for (what, tag, len) in [
        ("RowDescription of length 3", b'T', 3),
        ("DataRow of length 2 GiB", b'D', i32::MAX),
        ("CommandComplete of length -1", b'C', -1),
        ("ReadyForQuery of length 0", b'Z', 0),
    ] {
        let mut conn = proxy.session().await;
        proxy.rewrite(move |reply| with_length(reply, tag, len));
        let err = query_err(&mut conn, ONE_ROW).await;
        assert_protocol(&err, what);
        assert_now_closed(&mut conn, what).await;
    }
}

#[tokio::test]
async fn a_malformed_row_is_a_protocol_error() {
    let proxy = Proxy::start().await;
    for (what, f) in [
        (
            "a value overrunning its DataRow",
            overrun_first_value as fn(&[u8]) -> Vec<u8>,
        ),
        ("a row wider than its description", widen_first_row),
    ] {
        let mut conn = proxy.session().await;
        proxy.rewrite(f);
        let err = query_err(&mut conn, ONE_ROW).await;
        assert_protocol(&err, what);
        assert_now_closed(&mut conn, what).await;
    }
}

#[tokio::test]
async fn a_message_out_of_place_is_a_protocol_error() {
    let key = [1i32.to_be_bytes(), 2i32.to_be_bytes()].concat();
    let cases = [
        ("BackendKeyData after startup", 0, msg(b'K', &key)),
        (
            "AuthenticationOk after startup",
            0,
            msg(b'R', &0i32.to_be_bytes()),
        ),
        (
            "FunctionCallResponse in a query's reply",
            1,
            msg(b'V', &(-1i32).to_be_bytes()),
        ),
    ];
    let proxy = Proxy::start().await;
    for (what, after, extra) in cases {
        let mut conn = proxy.session().await;
        proxy.rewrite(move |reply| insert_after(reply, after, &extra));
        let err = query_err(&mut conn, ONE_ROW).await;
        assert_protocol(&err, what);
        assert_now_closed(&mut conn, what).await;
    }
}

#[tokio::test]
async fn a_close_in_the_middle_of_a_reply_is_an_error() {
    let proxy = Proxy::start().await;
    // Before the reply, inside the first header, inside the second header, inside
    // the RowDescription's body, inside the final ReadyForQuery.
    for action in [0, 3, 7, 20, -3] {
        let what = format!("cut at {action}");
        let mut conn = proxy.session().await;
        proxy.arm(match action {
            0 => Action::Close,
            n => Action::Cut(n),
        });
        let err = query_err(&mut conn, ONE_ROW).await;
        assert_cut(&err, &what);
        assert_now_closed(&mut conn, &what).await;
    }
}

#[tokio::test]
async fn startup_failures() {
    let proxy = Proxy::start().await;

    // The server itself refuses the login (FATAL, from the real server).
    let err = within(ferropg::connect(&proxy.config("no_such_role")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Db, "{err}");
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
    assert!(err.is_closed());

    // An authentication method this client does not implement (GSSAPI).
    proxy.replace(msg(b'R', &7i32.to_be_bytes()));
    let err = connect_err(&proxy).await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");

    // ReadyForQuery before authentication.
    proxy.replace(msg(b'Z', b"I"));
    assert_protocol(&connect_err(&proxy).await, "ReadyForQuery first");

    // A query's reply instead of the startup's.
    proxy.rewrite(|reply| {
        let (start, _) = find(reply, b'Z');
        [msg(b'1', b""), msg(b'2', b""), reply[start..].to_vec()].concat()
    });
    assert_protocol(&connect_err(&proxy).await, "ParseComplete first");

    // Garbage instead of the startup reply (an HTTP answer among it).
    for (what, bytes) in garbage() {
        proxy.replace(bytes);
        assert_protocol(&connect_err(&proxy).await, what);
    }

    // The link is cut before anything arrives, inside AuthenticationOk's header,
    // inside the first ParameterStatus, inside the final ReadyForQuery.
    for action in [0, 3, 12, -3] {
        proxy.arm(match action {
            0 => Action::Close,
            n => Action::Cut(n),
        });
        assert_cut(&connect_err(&proxy).await, &format!("cut at {action}"));
    }

    // The proxy itself still works.
    let mut conn = proxy.session().await;
    let row = within(conn.query_one(ONE_ROW, &[])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

/// How many server processes have this pid (0 once the backend has exited).
async fn backends(conn: &mut Connection, pid: i32) -> i64 {
    within(conn.query_one(
        "select count(*) from pg_stat_activity where pid = $1",
        &[&pid],
    ))
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn other_connections_are_unaffected() {
    let proxy = Proxy::start().await;
    let mut bystander = proxy.session().await;
    within(
        bystander
            .batch_execute("create temp table kept (n int4); insert into kept values (7); begin"),
    )
    .await
    .unwrap();

    // One victim gets garbage, one a cut, one garbage during its startup.
    let mut garbled = proxy.session().await;
    let mut cut = proxy.session().await;
    let pids = [garbled.backend_pid(), cut.backend_pid()];
    for pid in pids {
        assert_eq!(backends(&mut bystander, pid).await, 1);
    }
    proxy.replace(msg(b'?', b"junk"));
    assert_protocol(&query_err(&mut garbled, ONE_ROW).await, "garbage");
    proxy.arm(Action::Cut(7));
    assert_cut(&query_err(&mut cut, ONE_ROW).await, "cut");
    proxy.replace(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    assert_protocol(&connect_err(&proxy).await, "HTTP during startup");
    assert_now_closed(&mut garbled, "garbage").await;
    assert_now_closed(&mut cut, "cut").await;

    // The bystander keeps its session, transaction and all.
    let row = within(bystander.query_one("select n from kept", &[]))
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert!(!bystander.is_closed());
    within(bystander.batch_execute("commit")).await.unwrap();

    // New connections work, through the same proxy.
    let mut fresh = proxy.session().await;
    let row = within(fresh.query_one(ONE_ROW, &[])).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);

    // The victims' backends end: the cut one's at once (the link is gone), the
    // garbled one's once its client lets go of the socket.
    drop(garbled);
    let deadline = Instant::now() + Duration::from_secs(5);
    for pid in pids {
        while backends(&mut bystander, pid).await != 0 {
            assert!(
                Instant::now() < deadline,
                "backend {pid} still runs after its client failed and went away"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(cut);
}
