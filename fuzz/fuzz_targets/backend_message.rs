//! Arbitrary bytes as a stream from the server: parse message after message the way a
//! client's read loop does, and walk every view of each message. Must never panic.
//!
//! A frame whose body is invalid is skipped rather than ending the input (a client would
//! drop the connection there), so one input can reach the messages behind it.
#![no_main]

use ferropg_fuzz::{step, walk, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        let used = match step(rest) {
            Step::Message(msg, used) => {
                walk(&msg);
                used
            }
            Step::BadBody(_, used) => used,
            Step::BadHeader(_) | Step::NeedMore => break,
        };
        assert!(used > 0 && used <= rest.len());
        rest = &rest[used..];
    }
});
