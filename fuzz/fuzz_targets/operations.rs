//! The operation layer after a scripted request: a ready connection queues one to
//! four requests of the kinds the faces send (simple query, COPY in, parse/describe,
//! bind/execute with a row limit, close, an open batch), then takes random server
//! bytes in reads of random sizes, with an event sink that sometimes pauses. Nothing
//! may panic, and the events must keep the contract:
//! - an operation event only for the operation at the head of the queue, which is
//!   pending; `done` in FIFO order, once per operation;
//! - each row as wide as the columns last described for its operation (or as the
//!   request announced);
//! - at most one `error` per operation, and `done` fails exactly when one came;
//! - a pause takes at least one byte and no more than it was given;
//! - everything the core writes is well-framed frontend messages.
//!
//! Input: the request kinds (two bits each), the read size, a pause mask, then the
//! server's bytes.
#![no_main]

use bytes::BytesMut;
use ferropg_core::conn::{Connection, CopyIn, Events, Flow, Outcome, Phase, StartupParams};
use ferropg_core::message::frontend::EncodeError;
use ferropg_core::message::{DataRow, ParameterDescription, RowDescription};
use ferropg_core::DbError;
use ferropg_fuzz::check_frontend_frames;
use libfuzzer_sys::fuzz_target;

/// The fuzzer's record of an operation.
struct Op {
    id: u32,
    /// The width its rows must have, when known.
    width: Option<usize>,
    errors: u32,
}

struct Check {
    next_done: u32,
    pause_mask: u8,
    events: u32,
}

impl Check {
    fn pause(&mut self) -> Flow {
        self.events += 1;
        if self.pause_mask >> (self.events % 8) & 1 == 1 {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
}

impl Events<Op> for Check {
    fn parameters(&mut self, _op: &mut Op, types: Result<ParameterDescription<'_>, EncodeError>) {
        if let Ok(t) = types {
            assert_eq!(t.types().count(), t.len());
            assert!(t.len() <= 32767);
        }
    }
    fn columns(&mut self, op: &mut Op, columns: Option<&RowDescription<'_>>) {
        op.width = Some(columns.map_or(0, |c| {
            assert_eq!(c.fields().count(), c.len());
            c.len()
        }));
    }
    fn row(&mut self, op: &mut Op, row: DataRow<'_>) -> Flow {
        assert_eq!(Some(row.len()), op.width, "a row of another width reached the face");
        assert_eq!(row.values().count(), row.len());
        self.pause()
    }
    fn copy_in_ready(&mut self, op: &mut Op) -> CopyIn {
        if op.id % 2 == 0 {
            CopyIn::Feed
        } else {
            CopyIn::Abandon
        }
    }
    fn copy_data(&mut self, _op: &mut Op, _data: &[u8]) -> Flow {
        self.pause()
    }
    fn command_complete(&mut self, _op: &mut Op, tag: &str, rows: Option<u64>) {
        assert!(!tag.contains('\0'));
        if let Some(n) = rows {
            assert!(tag.ends_with(&n.to_string()));
        }
    }
    fn error(&mut self, op: &mut Op, error: &DbError) {
        op.errors += 1;
        assert_eq!(op.errors, 1, "a second error event for one operation");
        let _ = error.to_string();
    }
    fn done(&mut self, op: Op, outcome: Outcome) -> Flow {
        assert_eq!(op.id, self.next_done, "operations completed out of order");
        self.next_done += 1;
        assert_eq!(outcome.is_err(), op.errors == 1, "the outcome disagrees with the error events");
        self.pause()
    }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn op(id: u32, width: Option<usize>) -> Op {
    Op { id, width, errors: 0 }
}

/// Queues request `kind` as operation `id`.
fn request(conn: &mut Connection<Op>, kind: u8, id: u32, out: &mut BytesMut) {
    match kind & 3 {
        0 => conn.query("select 1; copy t to stdout", op(id, None), out).unwrap(),
        1 => conn.copy_in("copy t from stdin", op(id, None), out).unwrap(),
        2 => {
            let mut req = conn.request(out);
            req.parse("s", "select $1", [23]).unwrap();
            req.describe_statement("s").unwrap();
            req.bind::<()>("p", "s", [1], 1, |_, b| {
                b.extend_from_slice(&[0, 0, 0, 1]);
                Ok(false)
            }, [1])
            .unwrap();
            req.execute("p", 2).unwrap();
            req.close_portal("p").unwrap();
            req.send(op(id, None));
        }
        _ => {
            let mut req = conn.request(out);
            req.rows_of(2);
            req.send_open(op(id, Some(2)));
            let mut more = conn.resume_batch(out);
            more.execute("", 0).unwrap();
            more.flush();
            more.sync();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [kinds, read_size, pause_mask, stream @ ..] = data else {
        return;
    };
    let mut conn: Connection<Op> = Connection::new(StartupParams {
        user: "fuzz".into(),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    conn.start(&mut out).unwrap();
    let mut check = Check {
        next_done: 0,
        pause_mask: *pause_mask,
        events: 0,
    };
    let mut startup = frame(b'R', &0i32.to_be_bytes());
    startup.extend(frame(b'Z', b"I"));
    conn.handle_input(&startup, &mut out, &mut check).unwrap();
    assert_eq!(conn.phase(), Phase::Ready);
    // The StartupMessage has no tag byte: only what follows is checked.
    out.clear();

    let count = (kinds >> 6) + 1;
    for id in 0..u32::from(count) {
        request(&mut conn, kinds >> (2 * id), id, &mut out);
    }
    check_frontend_frames(&out);

    let read_size = usize::from(*read_size).max(1);
    for chunk in stream.chunks(read_size) {
        let mut rest = chunk;
        while !rest.is_empty() {
            out.clear();
            match conn.handle_input(rest, &mut out, &mut check) {
                Ok(used) => {
                    assert!(used > 0 && used <= rest.len(), "took {used} of {}", rest.len());
                    rest = &rest[used..];
                }
                Err(e) => {
                    let _ = e.to_string();
                    assert_eq!(conn.phase(), Phase::Closed);
                    return;
                }
            }
            check_frontend_frames(&out);
            assert_eq!(conn.pending_len() as u32, u32::from(count) - check.next_done);
        }
    }
});
