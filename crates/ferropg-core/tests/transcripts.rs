//! Transcript tests of the operation layer, with no sockets: a scripted server
//! conversation goes in through `handle_input`, and each test checks the bytes the
//! core wrote and the events it reported.

use bytes::BytesMut;
use ferropg_core::auth::ChannelBindingMode;
use ferropg_core::conn::{Connection, CopyIn, Events, Flow, Outcome, Phase, StartupParams};
use ferropg_core::message::frontend::EncodeError;
use ferropg_core::message::{DataRow, ParameterDescription, RowDescription, TransactionStatus};
use ferropg_core::reset::SessionFootprint;
use ferropg_core::{DbError, Error};

// ------------------------------------------------------------ the scripted server

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn auth_ok() -> Vec<u8> {
    frame(b'R', &0i32.to_be_bytes())
}

fn key_data(pid: i32, key: i32) -> Vec<u8> {
    [pid.to_be_bytes(), key.to_be_bytes()]
        .concat()
        .pipe(|b| frame(b'K', &b))
}

fn param_status(name: &str, value: &str) -> Vec<u8> {
    frame(b'S', format!("{name}\0{value}\0").as_bytes())
}

fn ready(status: u8) -> Vec<u8> {
    frame(b'Z', &[status])
}

fn parse_complete() -> Vec<u8> {
    frame(b'1', b"")
}

fn bind_complete() -> Vec<u8> {
    frame(b'2', b"")
}

fn close_complete() -> Vec<u8> {
    frame(b'3', b"")
}

fn no_data() -> Vec<u8> {
    frame(b'n', b"")
}

fn suspended() -> Vec<u8> {
    frame(b's', b"")
}

fn param_desc(oids: &[u32]) -> Vec<u8> {
    let mut b = (oids.len() as i16).to_be_bytes().to_vec();
    for o in oids {
        b.extend_from_slice(&o.to_be_bytes());
    }
    frame(b't', &b)
}

fn row_desc(names: &[&str]) -> Vec<u8> {
    let mut b = (names.len() as i16).to_be_bytes().to_vec();
    for n in names {
        b.extend_from_slice(n.as_bytes());
        b.push(0);
        b.extend_from_slice(&0i32.to_be_bytes()); // table
        b.extend_from_slice(&0i16.to_be_bytes()); // column
        b.extend_from_slice(&25u32.to_be_bytes()); // text
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
    }
    frame(b'T', &b)
}

fn data_row(values: &[Option<&str>]) -> Vec<u8> {
    let mut b = (values.len() as i16).to_be_bytes().to_vec();
    for v in values {
        match v {
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(s) => {
                b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                b.extend_from_slice(s.as_bytes());
            }
        }
    }
    frame(b'D', &b)
}

fn complete(tag: &str) -> Vec<u8> {
    frame(b'C', format!("{tag}\0").as_bytes())
}

fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
    frame(
        b'E',
        format!("S{severity}\0V{severity}\0C{code}\0M{message}\0\0").as_bytes(),
    )
}

fn notice(message: &str) -> Vec<u8> {
    frame(b'N', format!("SNOTICE\0C00000\0M{message}\0\0").as_bytes())
}

fn notification(pid: i32, channel: &str, payload: &str) -> Vec<u8> {
    let mut b = pid.to_be_bytes().to_vec();
    b.extend_from_slice(format!("{channel}\0{payload}\0").as_bytes());
    frame(b'A', &b)
}

fn copy_in_response() -> Vec<u8> {
    frame(b'G', &[0, 0, 1, 0, 0])
}

fn copy_out_response() -> Vec<u8> {
    frame(b'H', &[0, 0, 1, 0, 0])
}

fn copy_data(data: &str) -> Vec<u8> {
    frame(b'd', data.as_bytes())
}

fn copy_done() -> Vec<u8> {
    frame(b'c', b"")
}

fn empty_query() -> Vec<u8> {
    frame(b'I', b"")
}

fn script(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

// ------------------------------------------------------------ what the core says

/// Logs every event as a line of text; the operation record is its name.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    /// Pause after each row.
    pause_on_rows: bool,
    /// Answer COPY FROM STDIN with Abandon.
    abandon_copy: bool,
}

impl Log {
    fn push(&mut self, line: String) {
        self.lines.push(line);
    }
}

impl Events<&'static str> for Log {
    fn ready(&mut self) {
        self.push("ready".into());
    }
    fn parameter_changed(&mut self, name: &str, value: &str) {
        self.push(format!("parameter {name}={value}"));
    }
    fn notice(&mut self, notice: DbError) {
        self.push(format!("notice {}", notice.message()));
    }
    fn notification(&mut self, pid: i32, channel: &str, payload: &str) {
        self.push(format!("notification {pid} {channel} {payload}"));
    }
    fn server_error(&mut self, error: DbError) {
        self.push(format!("server-error {}", error.code().code()));
    }
    fn parameters(
        &mut self,
        op: &mut &'static str,
        types: Result<ParameterDescription<'_>, EncodeError>,
    ) {
        match types {
            Ok(t) => self.push(format!(
                "{op}: parameters {:?}",
                t.types().collect::<Vec<_>>()
            )),
            Err(e) => self.push(format!("{op}: parameters refused ({e})")),
        }
    }
    fn columns(&mut self, op: &mut &'static str, columns: Option<&RowDescription<'_>>) {
        match columns {
            Some(c) => {
                let names: Vec<_> = c.fields().map(|f| f.name).collect();
                self.push(format!("{op}: columns {names:?}"));
            }
            None => self.push(format!("{op}: no data")),
        }
    }
    fn row(&mut self, op: &mut &'static str, row: DataRow<'_>) -> Flow {
        let values: Vec<_> = row
            .values()
            .map(|v| v.map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        self.push(format!("{op}: row {values:?}"));
        if self.pause_on_rows {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
    fn copy_in_ready(&mut self, op: &mut &'static str) -> CopyIn {
        self.push(format!("{op}: copy in"));
        if self.abandon_copy {
            CopyIn::Abandon
        } else {
            CopyIn::Feed
        }
    }
    fn copy_out_started(&mut self, op: &mut &'static str) {
        self.push(format!("{op}: copy out"));
    }
    fn copy_data(&mut self, op: &mut &'static str, data: &[u8]) -> Flow {
        self.push(format!("{op}: data {:?}", String::from_utf8_lossy(data)));
        Flow::Continue
    }
    fn command_complete(&mut self, op: &mut &'static str, tag: &str, rows: Option<u64>) {
        self.push(format!("{op}: complete {tag} {rows:?}"));
    }
    fn portal_suspended(&mut self, op: &mut &'static str) {
        self.push(format!("{op}: suspended"));
    }
    fn error(&mut self, op: &mut &'static str, error: &DbError) {
        self.push(format!("{op}: error {}", error.code().code()));
    }
    fn rejected(&mut self, op: &mut &'static str, _error: &DbError) {
        self.push(format!("{op}: rejected"));
    }
    fn done(&mut self, op: &'static str, outcome: Outcome) -> Flow {
        match outcome {
            Ok(()) => self.push(format!("{op}: done")),
            Err(e) => self.push(format!("{op}: failed {}", e.code().code())),
        }
        Flow::Continue
    }
}

/// The tags of the frontend messages in `out`, as a string (`"PDS"`), checking each
/// frame's length.
fn tags(out: &[u8]) -> String {
    let mut rest = out;
    let mut tags = String::new();
    while !rest.is_empty() {
        assert!(rest.len() >= 5, "a truncated frontend message");
        let len = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        assert!(rest.len() > len, "a frontend message overruns the buffer");
        tags.push(char::from(rest[0]));
        rest = &rest[1 + len..];
    }
    tags
}

fn ready_connection() -> (Connection<&'static str>, Log) {
    let mut conn = Connection::new(StartupParams {
        user: "u".into(),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    conn.start(&mut out).unwrap();
    let mut log = Log::default();
    let startup = script(&[
        auth_ok(),
        key_data(42, 7),
        param_status("server_version", "16.4"),
        ready(b'I'),
    ]);
    assert_eq!(
        conn.handle_input(&startup, &mut out, &mut log).unwrap(),
        startup.len()
    );
    assert_eq!(log.lines, ["ready"]);
    log.lines.clear();
    (conn, log)
}

/// Feeds `input` whole; returns the events and the bytes the core wrote.
fn run(
    conn: &mut Connection<&'static str>,
    log: &mut Log,
    input: &[u8],
) -> Result<(Vec<String>, String), Error> {
    let mut out = BytesMut::new();
    let used = conn.handle_input(input, &mut out, log)?;
    assert_eq!(used, input.len());
    Ok((std::mem::take(&mut log.lines), tags(&out)))
}

// ------------------------------------------------------------ startup

#[test]
fn startup_records_key_and_parameters() {
    let (conn, _) = ready_connection();
    assert_eq!(conn.phase(), Phase::Ready);
    assert_eq!(conn.process_id(), 42);
    assert_eq!(conn.secret_key(), 7i32.to_be_bytes());
    assert_eq!(conn.parameter("server_version"), Some("16.4"));
    let mut cancel = BytesMut::new();
    conn.cancel_request(&mut cancel);
    assert_eq!(&cancel[..8], &[0, 0, 0, 16, 4, 210, 22, 46]);
    assert_eq!(&cancel[8..12], &42i32.to_be_bytes());
}

#[test]
fn password_requests_are_answered() {
    for (request, password, reply) in [
        (3i32.to_be_bytes().to_vec(), None, &b"p\0\0\0\x05\0"[..]),
        (3i32.to_be_bytes().to_vec(), Some("pw"), b"p\0\0\0\x07pw\0"),
    ] {
        let mut conn: Connection<&str> = Connection::new(StartupParams {
            user: "u".into(),
            password: password.map(Into::into),
            ..Default::default()
        });
        let mut out = BytesMut::new();
        conn.handle_input(&frame(b'R', &request), &mut out, &mut Log::default())
            .unwrap();
        assert_eq!(&out[..], reply);
    }
    let mut conn: Connection<&str> = Connection::new(StartupParams {
        user: "u".into(),
        password: Some("p".into()),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    let md5 = [5i32.to_be_bytes(), [1, 2, 3, 4]].concat();
    conn.handle_input(&frame(b'R', &md5), &mut out, &mut Log::default())
        .unwrap();
    assert_eq!(tags(&out), "p");
    assert_eq!(
        out.len(),
        1 + 4 + 35 + 1,
        "md5 plus 32 hex digits and a NUL"
    );
}

#[test]
fn required_channel_binding_refuses_every_unbound_method() {
    let sasl_plain = frame(
        b'R',
        &[&10i32.to_be_bytes()[..], b"SCRAM-SHA-256\0\0"].concat(),
    );
    for (request, certificate) in [
        (auth_ok(), None),
        (frame(b'R', &3i32.to_be_bytes()), None),
        (
            frame(b'R', &[5i32.to_be_bytes(), [1, 2, 3, 4]].concat()),
            None,
        ),
        (sasl_plain.clone(), None),
        // Over TLS, but the server offers no SCRAM-SHA-256-PLUS.
        (sasl_plain, Some(test_certificate())),
    ] {
        let mut conn: Connection<&str> = Connection::new(StartupParams {
            user: "u".into(),
            password: Some("pw".into()),
            channel_binding: ChannelBindingMode::Require,
            ..Default::default()
        });
        if let Some(cert) = &certificate {
            conn.set_server_certificate(cert);
        }
        let mut out = BytesMut::new();
        let err = conn
            .handle_input(&request, &mut out, &mut Log::default())
            .unwrap_err();
        assert!(matches!(err, Error::Auth(_)), "{err:?}");
        assert!(
            err.to_string().contains("channel binding is required"),
            "{err}"
        );
        assert!(out.is_empty(), "nothing answered: {out:?}");
        assert_eq!(conn.phase(), Phase::Closed);
    }
}

#[test]
fn scram_binds_to_the_certificate_when_offered() {
    let offer = frame(
        b'R',
        &[
            &10i32.to_be_bytes()[..],
            b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
        ]
        .concat(),
    );
    for (mode, certificate, header) in [
        (
            ChannelBindingMode::Prefer,
            true,
            &b"p=tls-server-end-point,,"[..],
        ),
        (
            ChannelBindingMode::Require,
            true,
            b"p=tls-server-end-point,,",
        ),
        (ChannelBindingMode::Disable, true, b"n,,"),
        (ChannelBindingMode::Prefer, false, b"n,,"),
    ] {
        let mut conn: Connection<&str> = Connection::new(StartupParams {
            user: "u".into(),
            password: Some("pw".into()),
            channel_binding: mode,
            ..Default::default()
        });
        if certificate {
            conn.set_server_certificate(&test_certificate());
        }
        let mut out = BytesMut::new();
        conn.handle_input(&offer, &mut out, &mut Log::default())
            .unwrap();
        assert_eq!(tags(&out), "p");
        // 'p', length, mechanism NUL, i32 length, then the client-first message.
        let body = &out[5..];
        let nul = body.iter().position(|&b| b == 0).unwrap();
        let mechanism = std::str::from_utf8(&body[..nul]).unwrap();
        assert_eq!(mechanism.ends_with("-PLUS"), header.starts_with(b"p="));
        assert!(body[nul + 5..].starts_with(header), "{mode:?}");
    }
}

/// A certificate-shaped DER value signed with sha256WithRSAEncryption.
fn test_certificate() -> Vec<u8> {
    let oid = [42u8, 134, 72, 134, 247, 13, 1, 1, 11];
    let tbs = [0x30, 3, 2, 1, 0];
    let mut algorithm = vec![0x30, oid.len() as u8 + 2, 0x06, oid.len() as u8];
    algorithm.extend_from_slice(&oid);
    let body = [&tbs[..], &algorithm, &[0x03, 2, 0, 0xff]].concat();
    [&[0x30, body.len() as u8][..], &body].concat()
}

#[test]
fn startup_failures_close_the_connection() {
    let cases: [(&str, Vec<u8>); 3] = [
        ("GSS", frame(b'R', &7i32.to_be_bytes())),
        ("ReadyForQuery before authentication", ready(b'I')),
        (
            "a FATAL error",
            error("FATAL", "28P01", "password authentication failed"),
        ),
    ];
    for (what, input) in cases {
        let mut conn: Connection<&str> = Connection::new(StartupParams::default());
        let mut log = Log::default();
        let err = conn
            .handle_input(&input, &mut BytesMut::new(), &mut log)
            .unwrap_err();
        assert_eq!(conn.phase(), Phase::Closed, "{what}");
        assert!(log.lines.is_empty(), "{what}");
        if what == "a FATAL error" {
            assert!(matches!(err, Error::Db(e) if e.code().code() == "28P01"));
        }
    }
}

// ------------------------------------------------------------ every request kind

#[test]
fn a_simple_query_reports_each_statement() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.query("select 'a'; create table t()", "script", &mut out)
        .unwrap();
    assert_eq!(tags(&out), "Q");
    let reply = script(&[
        row_desc(&["x"]),
        data_row(&[Some("a")]),
        complete("SELECT 1"),
        complete("CREATE TABLE"),
        ready(b'I'),
    ]);
    let (events, wrote) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            r#"script: columns ["x"]"#,
            r#"script: row [Some("a")]"#,
            "script: complete SELECT 1 Some(1)",
            "script: complete CREATE TABLE None",
            "script: done",
        ]
    );
    assert_eq!(wrote, "");
    assert_eq!(conn.pending_len(), 0);
}

#[test]
fn an_empty_query_ends_quietly() {
    let (mut conn, mut log) = ready_connection();
    conn.query("", "empty", &mut BytesMut::new()).unwrap();
    let (events, _) = run(&mut conn, &mut log, &script(&[empty_query(), ready(b'I')])).unwrap();
    assert_eq!(events, ["empty: done"]);
}

#[test]
fn parse_and_describe_report_the_statement() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.parse("s1", "select $1::int4 as a, $2::text as b", [])
        .unwrap();
    req.describe_statement("s1").unwrap();
    req.send("prepare");
    assert_eq!(tags(&out), "PDS");
    let reply = script(&[
        parse_complete(),
        param_desc(&[23, 25]),
        row_desc(&["a", "b"]),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "prepare: parameters [23, 25]",
            r#"prepare: columns ["a", "b"]"#,
            "prepare: done"
        ]
    );
    // A statement without result columns.
    let mut req = conn.request(&mut out);
    req.parse("s2", "create table t()", []).unwrap();
    req.describe_statement("s2").unwrap();
    req.send("ddl");
    let reply = script(&[parse_complete(), param_desc(&[]), no_data(), ready(b'I')]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(events, ["ddl: parameters []", "ddl: no data", "ddl: done"]);
}

#[test]
fn a_statement_past_the_parameter_limit_is_refused_as_it_is_described() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.parse("big", "select ...", []).unwrap();
    req.describe_statement("big").unwrap();
    req.send("big");
    let oids = vec![23u32; 40_000];
    let mut body = Vec::new();
    // The count wraps past 65,535 and is read from the frame length.
    body.extend_from_slice(&(40_000u16).to_be_bytes());
    for o in &oids {
        body.extend_from_slice(&o.to_be_bytes());
    }
    let reply = script(&[parse_complete(), frame(b't', &body), no_data(), ready(b'I')]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert!(events[0]
        .starts_with("big: parameters refused (the number of query arguments cannot exceed 32767"));
    assert_eq!(&events[1..], ["big: no data", "big: done"]);
}

#[test]
fn bind_and_execute_with_a_row_limit_suspends_the_portal() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.bind::<()>(
        "p1",
        "s1",
        [1],
        1,
        |_, buf| {
            buf.extend_from_slice(&5i32.to_be_bytes());
            Ok(false)
        },
        [0],
    )
    .unwrap();
    req.execute("p1", 2).unwrap();
    req.rows_of(1);
    req.send("fetch");
    assert_eq!(tags(&out), "BES");
    let reply = script(&[
        bind_complete(),
        data_row(&[Some("1")]),
        data_row(&[None]),
        suspended(),
        ready(b'T'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            r#"fetch: row [Some("1")]"#,
            "fetch: row [None]",
            "fetch: suspended",
            "fetch: done"
        ]
    );
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
}

#[test]
fn a_parameter_writer_failure_takes_the_bind_back() {
    let (mut conn, _) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.parse("", "select $1", []).unwrap();
    let before = req.written();
    let failed = req.bind("", "", [1], 1, |_, _| Err("no"), [1]);
    assert!(failed.is_err());
    assert_eq!(req.written(), before);
    drop(req);
    // Dropped unsent: the whole request is taken back and nothing is queued.
    assert!(out.is_empty());
    assert_eq!(conn.pending_len(), 0);
}

#[test]
fn close_requests_end_quietly() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.close_portal("p1").unwrap();
    req.close_statement("s1").unwrap();
    req.send("close");
    assert_eq!(tags(&out), "CCS");
    let reply = script(&[close_complete(), close_complete(), ready(b'I')]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(events, ["close: done"]);
}

#[test]
fn a_batch_is_written_in_steps_and_ended_by_one_sync() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.request(&mut out).send_open("batch");
    for _ in 0..2 {
        let mut more = conn.resume_batch(&mut out);
        more.bind::<()>("", "s", [], 0, |_, _| Ok(false), [])
            .unwrap();
        more.execute("", 0).unwrap();
        more.flush();
        more.keep();
    }
    // A step that fails to encode is taken back whole.
    let mut more = conn.resume_batch(&mut out);
    more.execute("", 0).unwrap();
    drop(more);
    conn.resume_batch(&mut out).sync();
    assert_eq!(tags(&out), "BEHBEHS");
    assert_eq!(conn.pending_len(), 1);
    let reply = script(&[
        bind_complete(),
        complete("INSERT 0 1"),
        bind_complete(),
        error("ERROR", "23505", "duplicate key"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "batch: complete INSERT 0 1 Some(1)",
            "batch: error 23505",
            "batch: failed 23505"
        ]
    );
}

#[test]
fn each_execute_of_a_request_has_the_width_announced_for_it() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    for (statement, width) in [("two", 2), ("none", 0), ("one", 1)] {
        req.bind::<()>("", statement, [], 0, |_, _| Ok(false), [])
            .unwrap();
        req.execute("", 0).unwrap();
        req.rows_of(width);
    }
    req.send("batch");
    let reply = script(&[
        bind_complete(),
        data_row(&[Some("a"), Some("b")]),
        complete("SELECT 1"),
        bind_complete(),
        complete("INSERT 0 3"),
        bind_complete(),
        data_row(&[Some("c")]),
        complete("SELECT 1"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(events.len(), 6, "{events:?}");
    assert_eq!(events[3], "batch: row [Some(\"c\")]");

    // A row that does not have its Execute's width is a protocol error.
    let mut req = conn.request(&mut out);
    for width in [1, 2] {
        req.bind::<()>("", "s", [], 0, |_, _| Ok(false), [])
            .unwrap();
        req.execute("", 0).unwrap();
        req.rows_of(width);
    }
    req.send("wrong");
    let reply = script(&[
        bind_complete(),
        data_row(&[Some("a")]),
        complete("SELECT 1"),
        bind_complete(),
        data_row(&[Some("b")]),
    ]);
    assert!(run(&mut conn, &mut log, &reply).is_err());
}

#[test]
fn copy_in_is_fed_and_ended() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.copy_in("copy t from stdin", "copy", &mut out).unwrap();
    assert_eq!(tags(&out), "Q");
    let (events, wrote) = run(&mut conn, &mut log, &copy_in_response()).unwrap();
    assert_eq!(events, ["copy: copy in"]);
    assert_eq!(wrote, "");
    let mut out = BytesMut::new();
    conn.copy_data(b"1\n2\n", &mut out).unwrap();
    conn.copy_done(&mut out);
    assert_eq!(tags(&out), "dc");
    let (events, _) = run(
        &mut conn,
        &mut log,
        &script(&[complete("COPY 2"), ready(b'I')]),
    )
    .unwrap();
    assert_eq!(events, ["copy: complete COPY 2 Some(2)", "copy: done"]);
}

#[test]
fn a_copy_in_whose_caller_left_is_failed() {
    let (mut conn, mut log) = ready_connection();
    log.abandon_copy = true;
    conn.copy_in("copy t from stdin", "copy", &mut BytesMut::new())
        .unwrap();
    let (events, wrote) = run(&mut conn, &mut log, &copy_in_response()).unwrap();
    assert_eq!(events, ["copy: copy in"]);
    assert_eq!(wrote, "f");
    let reply = script(&[error("ERROR", "57014", "COPY abandoned"), ready(b'I')]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(events, ["copy: error 57014", "copy: failed 57014"]);
}

#[test]
fn a_copy_in_nobody_asked_for_is_refused() {
    // Through a simple query: a CopyFail ends it.
    let (mut conn, mut log) = ready_connection();
    conn.query("copy t from stdin", "query", &mut BytesMut::new())
        .unwrap();
    let (events, wrote) = run(&mut conn, &mut log, &copy_in_response()).unwrap();
    assert!(events.is_empty());
    assert_eq!(wrote, "f");
    // Through the extended protocol: one more Sync, since the server ignored ours.
    let mut out = BytesMut::new();
    let mut req = conn.request(&mut out);
    req.execute("", 0).unwrap();
    req.send("extended");
    let reply = script(&[
        error("ERROR", "57014", "refused"),
        ready(b'I'),
        bind_complete(),
        copy_in_response(),
    ]);
    let (events, wrote) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(events, ["query: error 57014", "query: failed 57014"]);
    assert_eq!(wrote, "fS");
    // A second COPY FROM STDIN in a copy_in operation's query string is refused too.
    let (mut conn, mut log) = ready_connection();
    conn.copy_in(
        "copy a from stdin; copy b from stdin",
        "two",
        &mut BytesMut::new(),
    )
    .unwrap();
    let (_, wrote) = run(&mut conn, &mut log, &copy_in_response()).unwrap();
    assert_eq!(wrote, "");
    let (events, wrote) = run(
        &mut conn,
        &mut log,
        &script(&[complete("COPY 0"), copy_in_response()]),
    )
    .unwrap();
    assert_eq!(events, ["two: complete COPY 0 Some(0)"]);
    assert_eq!(wrote, "f");
}

#[test]
fn copy_out_data_arrives_as_events() {
    let (mut conn, mut log) = ready_connection();
    conn.query("copy t to stdout", "out", &mut BytesMut::new())
        .unwrap();
    let reply = script(&[
        copy_out_response(),
        copy_data("1\n"),
        copy_data("2\n"),
        copy_done(),
        complete("COPY 2"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "out: copy out",
            r#"out: data "1\n""#,
            r#"out: data "2\n""#,
            "out: complete COPY 2 Some(2)",
            "out: done"
        ]
    );
}

// ------------------------------------------------------------ errors in each phase

#[test]
fn an_error_in_each_phase_ends_its_operation_only() {
    let phases: [(&str, Vec<u8>); 5] = [
        (
            "parse",
            script(&[error("ERROR", "42601", "syntax"), ready(b'I')]),
        ),
        (
            "bind",
            script(&[
                parse_complete(),
                error("ERROR", "22P02", "bad int"),
                ready(b'I'),
            ]),
        ),
        (
            "execute",
            script(&[
                parse_complete(),
                bind_complete(),
                row_desc(&["a"]),
                data_row(&[Some("1")]),
                error("ERROR", "22012", "division by zero"),
                ready(b'I'),
            ]),
        ),
        (
            "copy",
            script(&[
                copy_in_response(),
                error("ERROR", "22P04", "bad copy data"),
                ready(b'I'),
            ]),
        ),
        (
            "commit",
            script(&[
                complete("BEGIN"),
                error("ERROR", "40001", "serialization"),
                error("ERROR", "25P02", "aborted"),
                ready(b'E'),
            ]),
        ),
    ];
    for (phase, reply) in phases {
        let (mut conn, mut log) = ready_connection();
        let mut out = BytesMut::new();
        if phase == "copy" {
            conn.copy_in("copy t from stdin", "first", &mut out)
                .unwrap();
        } else {
            conn.query("...", "first", &mut out).unwrap();
        }
        conn.query("select 1", "second", &mut out).unwrap();
        let mut input = reply;
        input.extend(script(&[
            row_desc(&["x"]),
            data_row(&[Some("1")]),
            complete("SELECT 1"),
            ready(b'I'),
        ]));
        let (events, _) = run(&mut conn, &mut log, &input).unwrap();
        let failed: Vec<_> = events
            .iter()
            .filter(|e| e.contains("error") || e.contains("failed"))
            .collect();
        assert_eq!(
            failed.len(),
            2,
            "{phase}: one error event and one failed end: {events:?}"
        );
        assert!(
            failed[1].starts_with("first: failed"),
            "{phase}: {events:?}"
        );
        assert_eq!(events.last().unwrap(), "second: done", "{phase}");
        assert_eq!(conn.phase(), Phase::Ready, "{phase}");
    }
}

#[test]
fn a_fatal_error_closes_the_connection() {
    let (mut conn, mut log) = ready_connection();
    conn.query("select pg_sleep(10)", "sleep", &mut BytesMut::new())
        .unwrap();
    let (events, _) = run(&mut conn, &mut log, &error("FATAL", "57P01", "terminating")).unwrap();
    assert_eq!(events, ["sleep: error 57P01"]);
    assert_eq!(conn.phase(), Phase::Closed);
    assert_eq!(conn.take_pending(), ["sleep"]);

    // With nothing pending: the server's last words.
    let (mut conn, mut log) = ready_connection();
    let (events, _) = run(&mut conn, &mut log, &error("FATAL", "57P01", "terminating")).unwrap();
    assert_eq!(events, ["server-error 57P01"]);
    assert_eq!(conn.phase(), Phase::Closed);
}

#[test]
fn messages_out_of_place_end_the_connection() {
    let cases: [(&str, bool, Vec<u8>); 7] = [
        ("ReadyForQuery with nothing pending", false, ready(b'I')),
        ("a row with nothing pending", false, data_row(&[Some("1")])),
        ("a row without a description", true, data_row(&[Some("1")])),
        (
            "a row of the wrong width",
            true,
            script(&[row_desc(&["a", "b"]), data_row(&[Some("1")])]),
        ),
        ("AuthenticationOk after startup", true, auth_ok()),
        ("BackendKeyData after startup", true, key_data(1, 2)),
        (
            "FunctionCallResponse",
            true,
            frame(b'V', &(-1i32).to_be_bytes()),
        ),
    ];
    for (what, pending, input) in cases {
        let (mut conn, mut log) = ready_connection();
        if pending {
            let mut out = BytesMut::new();
            let mut req = conn.request(&mut out);
            req.execute("", 0).unwrap();
            req.send("op");
        }
        let err = conn
            .handle_input(&input, &mut BytesMut::new(), &mut log)
            .unwrap_err();
        assert!(matches!(err, Error::Unexpected(_)), "{what}: {err}");
        assert_eq!(conn.phase(), Phase::Closed, "{what}");
    }
    // Bytes that are not the protocol.
    let (mut conn, mut log) = ready_connection();
    let err = conn
        .handle_input(b"Z\0\0\0\x01", &mut BytesMut::new(), &mut log)
        .unwrap_err();
    assert!(matches!(err, Error::Parse(_)));
}

// ------------------------------------------------------------ pipelining and the stream

#[test]
fn pipelined_operations_end_in_order() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.query("begin", "begin", &mut out).unwrap();
    let mut req = conn.request(&mut out);
    req.parse("", "select 1", []).unwrap();
    req.bind::<()>("", "", [], 0, |_, _| Ok(false), [1])
        .unwrap();
    req.describe_portal("").unwrap();
    req.execute("", 0).unwrap();
    req.send("select");
    conn.query("commit", "commit", &mut out).unwrap();
    assert_eq!(tags(&out), "QPBDESQ");
    assert_eq!(
        conn.pending().copied().collect::<Vec<_>>(),
        ["begin", "select", "commit"]
    );
    let reply = script(&[
        complete("BEGIN"),
        ready(b'T'),
        parse_complete(),
        bind_complete(),
        row_desc(&["?column?"]),
        notice("a notice in the middle"),
        data_row(&[Some("1")]),
        complete("SELECT 1"),
        ready(b'T'),
        param_status("TimeZone", "UTC"),
        complete("COMMIT"),
        notification(9, "chan", "hi"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "begin: complete BEGIN None",
            "begin: done",
            r#"select: columns ["?column?"]"#,
            "notice a notice in the middle",
            r#"select: row [Some("1")]"#,
            "select: complete SELECT 1 Some(1)",
            "select: done",
            "parameter TimeZone=UTC",
            "commit: complete COMMIT None",
            "notification 9 chan hi",
            "commit: done",
        ]
    );
    assert_eq!(conn.parameter("TimeZone"), Some("UTC"));
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
}

/// A face may hand the session over to a part that keeps other operation records
/// (the tokio face's shared client): the queue, the session's state and a message
/// cut off in the middle all survive the change of record type.
#[test]
fn mapped_operations_keep_their_place_and_the_session() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.query("begin", "begin", &mut out).unwrap();
    conn.query("select 1", "select", &mut out).unwrap();
    let reply = script(&[
        complete("BEGIN"),
        ready(b'T'),
        row_desc(&["?column?"]),
        data_row(&[Some("1")]),
        complete("SELECT 1"),
        ready(b'T'),
    ]);
    // Cut inside the select's row: the core holds the start of that message.
    let cut = reply.len() - complete("SELECT 1").len() - ready(b'T').len() - 3;
    let (events, _) = run(&mut conn, &mut log, &reply[..cut]).unwrap();
    assert_eq!(events[..2], ["begin: complete BEGIN None", "begin: done"]);
    assert!(conn.has_partial_input());

    let mut conn: Connection<&'static str> = conn.map_ops(|op| match op {
        "select" => "mapped select",
        other => other,
    });
    assert_eq!(
        conn.pending().copied().collect::<Vec<_>>(),
        ["mapped select"]
    );
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    assert_eq!(conn.process_id(), 42);
    assert_eq!(conn.parameter("server_version"), Some("16.4"));
    let (events, _) = run(&mut conn, &mut log, &reply[cut..]).unwrap();
    assert_eq!(
        events,
        [
            r#"mapped select: row [Some("1")]"#,
            "mapped select: complete SELECT 1 Some(1)",
            "mapped select: done",
        ]
    );
}

/// A conversation with every kind of reply: pipelined requests, rows, COPY both
/// ways, a notice, a notification and an error.
fn long_conversation(conn: &mut Connection<&'static str>) -> Vec<u8> {
    let mut out = BytesMut::new();
    conn.query("select", "select", &mut out).unwrap();
    conn.copy_in("copy in", "copy-in", &mut out).unwrap();
    conn.query("copy out", "copy-out", &mut out).unwrap();
    conn.query("fail", "fail", &mut out).unwrap();
    script(&[
        row_desc(&["a", "b"]),
        data_row(&[Some("one"), None]),
        data_row(&[Some(&"x".repeat(300)), Some("")]),
        complete("SELECT 2"),
        ready(b'I'),
        copy_in_response(),
        complete("COPY 0"),
        ready(b'I'),
        notice("careful"),
        copy_out_response(),
        copy_data("a\tb\n"),
        copy_done(),
        complete("COPY 1"),
        ready(b'I'),
        notification(1, "c", "p"),
        error("ERROR", "42P01", "no such table"),
        ready(b'I'),
    ])
}

#[test]
fn a_message_split_at_any_byte_gives_the_same_events() {
    let (mut conn, mut log) = ready_connection();
    let input = long_conversation(&mut conn);
    let (whole, _) = run(&mut conn, &mut log, &input).unwrap();
    assert_eq!(whole.len(), 16, "{whole:?}");
    for cut in 0..=input.len() {
        let (mut conn, mut log) = ready_connection();
        let again = long_conversation(&mut conn);
        assert_eq!(again, input);
        let (mut events, _) = run(&mut conn, &mut log, &input[..cut]).unwrap();
        events.extend(run(&mut conn, &mut log, &input[cut..]).unwrap().0);
        assert_eq!(events, whole, "cut at byte {cut}");
    }
    // And a byte at a time.
    let (mut conn, mut log) = ready_connection();
    long_conversation(&mut conn);
    let mut events = Vec::new();
    for b in input.chunks(1) {
        events.extend(run(&mut conn, &mut log, b).unwrap().0);
    }
    assert_eq!(events, whole);
}

#[test]
fn a_pause_hands_the_rest_back_to_the_caller() {
    let (mut conn, mut log) = ready_connection();
    let input = long_conversation(&mut conn);
    log.pause_on_rows = true;
    let mut out = BytesMut::new();
    let mut rest = &input[..];
    let mut rounds = 0;
    while !rest.is_empty() {
        let used = conn.handle_input(rest, &mut out, &mut log).unwrap();
        assert!(used > 0);
        rest = &rest[used..];
        rounds += 1;
    }
    assert_eq!(rounds, 3, "two pauses, one at each row");
    let (mut plain, mut plain_log) = ready_connection();
    long_conversation(&mut plain);
    assert_eq!(
        log.lines,
        run(&mut plain, &mut plain_log, &input).unwrap().0
    );
}

#[test]
fn a_pause_inside_a_split_message_takes_only_that_message() {
    let (mut conn, mut log) = ready_connection();
    let input = long_conversation(&mut conn);
    log.pause_on_rows = true;
    // Cut inside the first DataRow: the second read completes it and pauses there.
    let first_row = input.windows(3).position(|w| w == b"one").unwrap();
    let mut out = BytesMut::new();
    assert_eq!(
        conn.handle_input(&input[..first_row], &mut out, &mut log)
            .unwrap(),
        first_row
    );
    let rest = &input[first_row..];
    let used = conn.handle_input(rest, &mut out, &mut log).unwrap();
    assert_eq!(
        &rest[used..used + 1],
        b"D",
        "stopped right after the completed row"
    );
    assert_eq!(
        log.lines.last().unwrap(),
        r#"select: row [Some("one"), None]"#
    );
}

// ------------------------------------------------------------ a pool's reset

#[test]
fn the_footprint_records_what_the_session_did() {
    let (mut conn, mut log) = ready_connection();
    assert_eq!(conn.footprint(), SessionFootprint::default());
    let mut out = BytesMut::new();
    conn.query(
        "listen a; declare c cursor with hold for select 1",
        "script",
        &mut out,
    )
    .unwrap();
    run(
        &mut conn,
        &mut log,
        &script(&[complete("LISTEN"), complete("DECLARE CURSOR"), ready(b'I')]),
    )
    .unwrap();
    let seen = conn.take_footprint();
    assert!(seen.ran && seen.listened, "{seen:?}");
    assert_eq!(conn.footprint(), SessionFootprint::default());

    // A failed statement ran too: it may have changed settings before failing.
    conn.query("select f()", "failing", &mut out).unwrap();
    run(
        &mut conn,
        &mut log,
        &script(&[error("ERROR", "P0001", "boom"), ready(b'I')]),
    )
    .unwrap();
    assert_eq!(
        conn.take_footprint(),
        SessionFootprint {
            ran: true,
            ..Default::default()
        }
    );
}

#[test]
fn a_deferred_query_goes_ahead_of_the_next_request_of_any_kind() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.defer_query("RESET ALL", "reset").unwrap();
    // Nothing goes out until a request does.
    assert!(out.is_empty() && conn.pending_len() == 0);
    let mut req = conn.request(&mut out);
    req.bind::<()>("", "s1", [], 0, |_, _| Ok(false), [1])
        .unwrap();
    req.execute("", 0).unwrap();
    req.send("select");
    assert_eq!(tags(&out), "QBES");
    assert!(!conn.has_deferred());
    let reply = script(&[
        complete("RESET"),
        ready(b'I'),
        bind_complete(),
        complete("SELECT 0"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "reset: complete RESET None",
            "reset: done",
            "select: complete SELECT 0 Some(0)",
            "select: done"
        ]
    );

    // Several wait their turn, in order.
    conn.defer_query("RESET ALL", "first").unwrap();
    conn.defer_query("DISCARD TEMP", "second").unwrap();
    let mut out = BytesMut::new();
    conn.copy_in("copy t from stdin", "copy", &mut out).unwrap();
    assert_eq!(tags(&out), "QQQ");
    assert_eq!(
        conn.pending().copied().collect::<Vec<_>>(),
        ["first", "second", "copy"]
    );

    // One never sent is handed back with the pending ones when the link goes.
    conn.defer_query("RESET ALL", "unsent").unwrap();
    assert_eq!(conn.take_pending(), ["first", "second", "copy", "unsent"]);
    assert!(!conn.has_deferred());
}

#[test]
fn statements_dropped_by_the_user_are_counted() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    conn.query(
        "deallocate all; discard all; deallocate s1; discard temp",
        "q",
        &mut out,
    )
    .unwrap();
    let reply = script(&[
        complete("DEALLOCATE ALL"),
        complete("DISCARD ALL"),
        complete("DEALLOCATE"),
        complete("DISCARD TEMP"),
        ready(b'I'),
    ]);
    run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(conn.statements_discarded(), 3);
}

#[test]
fn a_deferred_query_with_a_nul_is_refused_at_once() {
    let (mut conn, _) = ready_connection();
    assert!(conn.defer_query("RESET\0ALL", "bad").is_err());
    assert!(!conn.has_deferred());
}

#[test]
fn a_request_refused_at_its_first_message_is_told_apart() {
    let (mut conn, mut log) = ready_connection();
    let mut out = BytesMut::new();
    for op in ["refused", "ran"] {
        let mut req = conn.request(&mut out);
        req.bind::<()>("", "s1", [], 0, |_, _| Ok(false), [1])
            .unwrap();
        req.execute("", 0).unwrap();
        req.send(op);
    }
    let reply = script(&[
        // The Bind itself fails: nothing ran.
        error("ERROR", "26000", "prepared statement \"s1\" does not exist"),
        ready(b'I'),
        // The Bind is accepted and the statement fails as it runs (EXECUTE x inside).
        bind_complete(),
        error("ERROR", "26000", "prepared statement \"x\" does not exist"),
        ready(b'I'),
    ]);
    let (events, _) = run(&mut conn, &mut log, &reply).unwrap();
    assert_eq!(
        events,
        [
            "refused: error 26000",
            "refused: rejected",
            "refused: failed 26000",
            "ran: error 26000",
            "ran: failed 26000"
        ]
    );
}
