//! The connection state machine fed with whatever the "server" sends, through
//! `handle_input` in reads of random sizes: it must never panic, and the queue of
//! operations must stay consistent (FIFO completion, operation events only while an
//! operation is pending, nothing after an error).
//!
//! Input: one flags byte, one byte of read size, then the server's bytes.
//! - bit 0: the client has a password (reaches the MD5/cleartext/SCRAM replies);
//! - bit 1: a canned startup (AuthenticationOk, BackendKeyData, ParameterStatus,
//!   ReadyForQuery) runs first, so the fuzzer's bytes start in the Ready phase;
//! - bit 3: queue a new operation every time one completes;
//! - bits 4..=6: how many operations to queue once startup is done (0..=7).
#![no_main]

use bytes::BytesMut;
use ferropg_core::conn::{Connection, Events, Flow, Outcome, Phase, StartupParams};
use ferropg_core::message::DataRow;
use ferropg_core::DbError;
use ferropg_fuzz::check_frontend_frames;
use libfuzzer_sys::fuzz_target;

const MAX_OPS: u32 = 64;

#[derive(Default)]
struct Check {
    ready: bool,
    next_done: u32,
    finished: Vec<u32>,
}

impl Events<u32> for Check {
    fn ready(&mut self) {
        assert!(!self.ready, "startup finished twice");
        self.ready = true;
    }
    fn notice(&mut self, notice: DbError) {
        let _ = notice.to_string();
    }
    fn server_error(&mut self, error: DbError) {
        let _ = (error.code(), error.is_fatal());
    }
    fn row(&mut self, _op: &mut u32, row: DataRow<'_>) -> Flow {
        assert_eq!(row.values().count(), row.len());
        Flow::Continue
    }
    fn done(&mut self, op: u32, outcome: Outcome) -> Flow {
        assert_eq!(op, self.next_done, "operations completed out of order");
        self.next_done += 1;
        self.finished.push(op);
        let _ = outcome.map_err(|e| e.to_string());
        Flow::Continue
    }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn canned_startup() -> Vec<u8> {
    let mut v = frame(b'R', &0i32.to_be_bytes());
    v.extend(frame(b'K', &[0, 0, 0, 42, 1, 2, 3, 4]));
    v.extend(frame(b'S', b"server_version\x0016.4\x00"));
    v.extend(frame(b'Z', b"I"));
    v
}

fn queue(conn: &mut Connection<u32>, next_id: &mut u32, out: &mut BytesMut) {
    if *next_id < MAX_OPS {
        conn.query("select 1", *next_id, out).expect("Query");
        *next_id += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, read_size, stream @ ..] = data else {
        return;
    };
    let read_size = usize::from(*read_size).max(1);
    let password = flags & 1 != 0;
    let auto_startup = flags & 2 != 0;
    let refill = flags & 8 != 0;
    let initial_ops = (flags >> 4) & 7;

    let mut conn: Connection<u32> = Connection::new(StartupParams {
        user: "fuzz".into(),
        database: Some("db".into()),
        password: password.then(|| "secret".into()),
        options: vec![("application_name".into(), "fuzz".into())],
        ..Default::default()
    });
    let mut out = BytesMut::new();
    conn.start(&mut out).expect("StartupMessage");
    let mut check = Check::default();
    let mut next_id = 0;
    let mut queued_at_startup = false;

    if auto_startup {
        let canned = canned_startup();
        let used = conn
            .handle_input(&canned, &mut out, &mut check)
            .expect("canned startup");
        assert_eq!(used, canned.len());
        assert_eq!(conn.phase(), Phase::Ready);
        assert_eq!(conn.process_id(), 42);
    }

    for chunk in stream.chunks(read_size) {
        if check.ready && !queued_at_startup {
            queued_at_startup = true;
            for _ in 0..initial_ops {
                queue(&mut conn, &mut next_id, &mut out);
            }
        }
        out.clear();
        let finished_before = check.finished.len();
        match conn.handle_input(chunk, &mut out, &mut check) {
            Ok(used) => assert_eq!(used, chunk.len(), "nothing paused, all is taken"),
            Err(e) => {
                let _ = e.to_string();
                assert_eq!(conn.phase(), Phase::Closed, "an error closes the connection");
                assert!(!conn.has_partial_input());
                break;
            }
        }
        check_frontend_frames(&out);
        if refill {
            for _ in finished_before..check.finished.len() {
                queue(&mut conn, &mut next_id, &mut out);
            }
        }
        let _ = conn.parameters().count();
        let _ = (conn.transaction_status(), conn.secret_key().len());
        assert_eq!(conn.pending().count(), conn.pending_len());
        assert_eq!(
            conn.pending_len() as u32,
            next_id - check.next_done,
            "every queued operation is pending or done"
        );
    }

    let pending = conn.pending_len();
    assert_eq!(conn.take_pending().len(), pending);
    assert_eq!(conn.pending_len(), 0);
    out.clear();
    conn.terminate(&mut out);
    assert_eq!(conn.phase(), Phase::Closed);
    check_frontend_frames(&out);
    out.clear();
    conn.terminate(&mut out);
    assert!(out.is_empty(), "Terminate written twice");
});
