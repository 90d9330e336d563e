//! The connection state machine fed with whatever the "server" sends: `process()` must
//! never panic, and the queue of operations must stay consistent (FIFO completion,
//! messages routed to an operation only while one is pending).
//!
//! Input: one flags byte, then the server's bytes.
//! - bit 0: the client has a password (reaches the MD5/cleartext/SCRAM replies);
//! - bit 1: a canned startup (AuthenticationOk, BackendKeyData, ParameterStatus,
//!   ReadyForQuery) runs first, so the fuzzer's bytes start in the Ready phase;
//! - bit 2: stop at the first error from `process()`, as a client would; otherwise
//!   keep feeding, which `process()` must survive too;
//! - bit 3: push a new operation every time one completes;
//! - bits 4..=6: how many operations to push once startup is done (0..=7).
#![no_main]

use bytes::BytesMut;
use ferropg_core::conn::{Connection, Phase, Routed, StartupParams};
use ferropg_core::message::{parse_message, Message};
use ferropg_fuzz::{check_frontend_frames, step, walk, Step};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: u32 = 64;

struct Ops {
    next_id: u32,
    next_done: u32,
}

impl Ops {
    fn push(&mut self, conn: &mut Connection<u32>) {
        if self.next_id < MAX_OPS {
            conn.push(self.next_id);
            self.next_id += 1;
        }
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

fuzz_target!(|data: &[u8]| {
    let Some((&flags, stream)) = data.split_first() else {
        return;
    };
    let password = flags & 1 != 0;
    let auto_startup = flags & 2 != 0;
    let stop_at_error = flags & 4 != 0;
    let refill = flags & 8 != 0;
    let initial_ops = (flags >> 4) & 7;

    let mut conn: Connection<u32> = Connection::new(StartupParams {
        user: "fuzz".into(),
        database: Some("db".into()),
        password: password.then(|| "secret".into()),
        options: vec![("application_name".into(), "fuzz".into())],
    });
    let mut out = BytesMut::new();
    conn.start(&mut out).expect("StartupMessage");
    let mut ops = Ops {
        next_id: 0,
        next_done: 0,
    };
    let mut startup_done = false;

    if auto_startup {
        let canned = canned_startup();
        let mut rest = &canned[..];
        while let Ok(Some((msg, used))) = parse_message(rest) {
            conn.process(msg, &mut out).expect("canned startup");
            rest = &rest[used..];
        }
        assert_eq!(conn.phase(), Phase::Ready);
        assert_eq!(conn.process_id(), 42);
        startup_done = true;
        for _ in 0..initial_ops {
            ops.push(&mut conn);
        }
    }

    let mut rest = stream;
    while !rest.is_empty() {
        let (msg, used) = match step(rest) {
            Step::Message(msg, used) => (msg, used),
            Step::BadBody(_, used) => {
                rest = &rest[used..];
                continue;
            }
            Step::BadHeader(_) | Step::NeedMore => break,
        };
        rest = &rest[used..];
        walk(&msg);

        let phase_before = conn.phase();
        let pending_before = conn.pending_len();
        let is_rfq = matches!(msg, Message::ReadyForQuery(_));
        out.clear();
        match conn.process(msg, &mut out) {
            Ok(routed) => match routed {
                Routed::Handled => {
                    assert_eq!(phase_before, Phase::Startup, "Handled after startup");
                }
                Routed::StartupDone => {
                    assert!(!startup_done, "startup finished twice");
                    assert_eq!(phase_before, Phase::Startup);
                    assert_eq!(conn.phase(), Phase::Ready);
                    startup_done = true;
                    for _ in 0..initial_ops {
                        ops.push(&mut conn);
                    }
                }
                Routed::Op(m) => {
                    assert!(
                        pending_before > 0,
                        "message routed with no operation pending"
                    );
                    assert!(!matches!(m, Message::ReadyForQuery(_)));
                    assert_eq!(conn.pending_len(), pending_before);
                    assert!(conn.head_mut().is_some());
                }
                Routed::OpDone(id) => {
                    assert!(is_rfq, "an operation ended without ReadyForQuery");
                    assert_eq!(id, ops.next_done, "operations completed out of order");
                    ops.next_done += 1;
                    assert_eq!(conn.pending_len() + 1, pending_before);
                    if refill {
                        ops.push(&mut conn);
                    }
                }
                Routed::Notice(f) => {
                    let _ = f.iter().count();
                }
                Routed::Notification { .. } => {}
                Routed::ParameterChanged { name, value } => {
                    assert_eq!(conn.parameter(name), Some(value));
                }
                Routed::UnsolicitedError(f) => {
                    assert_eq!(
                        pending_before, 0,
                        "unsolicited error with an operation pending"
                    );
                    let _ = f.iter().count();
                }
            },
            Err(e) => {
                let _ = e.to_string();
                if stop_at_error {
                    break;
                }
            }
        }
        check_frontend_frames(&out);
        let _ = conn.parameters().count();
        let _ = (conn.transaction_status(), conn.secret_key().len());
        assert!(conn.pending().count() == conn.pending_len());
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
