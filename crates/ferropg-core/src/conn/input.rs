//! Cutting the server's byte stream into messages: whole messages are parsed where
//! they lie in the caller's input; only a message split across reads is copied, into
//! the connection's own buffer, so a large result is not copied on its way to the
//! decoders.

use bytes::BytesMut;

use super::{Connection, Events, Flow};
use crate::error::Error;
use crate::message::backend::{frame_len, parse_message};

/// A backend message's header: the tag byte and the Int32 length.
const HEADER_LEN: usize = 5;

/// A split-message buffer grown past this is let go once its message is handled,
/// so one huge row does not pin its memory for the connection's life.
const KEEP_CAPACITY: usize = 64 * 1024;

impl<T> Connection<T> {
    pub(super) fn take_input<E: Events<T>>(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
        events: &mut E,
    ) -> Result<usize, Error> {
        let mut rest = input;
        if !self.partial.is_empty() {
            if !complete_split_message(&mut self.partial, &mut rest) {
                return Ok(input.len());
            }
            // Taken out while it is handled: the events borrow the message.
            let split = std::mem::take(&mut self.partial);
            let flow = match parse_message(&split)? {
                Some((msg, _)) => self.dispatch(msg, out, events)?,
                None => return Err(Error::Unexpected("incomplete message".into())),
            };
            self.partial = split;
            self.partial.clear();
            if self.partial.capacity() > KEEP_CAPACITY {
                self.partial = Vec::new();
            }
            if flow == Flow::Pause {
                return Ok(input.len() - rest.len());
            }
        }
        loop {
            let Some((msg, len)) = parse_message(rest)? else {
                self.partial.extend_from_slice(rest);
                return Ok(input.len());
            };
            rest = &rest[len..];
            if self.dispatch(msg, out, events)? == Flow::Pause {
                return Ok(input.len() - rest.len());
            }
        }
    }
}

/// Moves bytes from the front of `data` onto `partial`, the start of a message an
/// earlier read left unfinished, until that message is whole. Returns false when
/// `data` ran out first. A header that cannot be valid counts as whole: parsing it
/// reports the error.
fn complete_split_message(partial: &mut Vec<u8>, data: &mut &[u8]) -> bool {
    loop {
        let want = match frame_len(partial) {
            Ok(Some(total)) if partial.len() >= total => return true,
            Ok(Some(total)) => total,
            Ok(None) => HEADER_LEN,
            Err(_) => return true,
        };
        let n = (want - partial.len()).min(data.len());
        if n == 0 {
            return false;
        }
        partial.extend_from_slice(&data[..n]);
        *data = &data[n..];
    }
}
