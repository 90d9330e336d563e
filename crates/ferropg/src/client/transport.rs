//! How a [`ClientDriver`](super::ClientDriver) writes and reads: over TCP or a
//! Unix socket, split so that callers write to it as well (see
//! `Shared::submit_to`'s fast path), or over TLS, which the driver alone touches.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use ferropg_core::conn::Phase;

use super::shared::Shared;
use crate::socket::{PlainReader, PlainWriter, Socket};
use crate::Error;

/// The driver's end of the connection.
pub(super) enum Transport {
    /// TCP or Unix: the read half. The write half is behind the client's lock
    /// ([`State::writer`](super::shared::State)): bytes are written straight from
    /// the callers' buffer, by the driver or by a caller whose request is all there
    /// is to write; whoever writes takes them from the front, so they go out in
    /// the order they were queued.
    Plain(PlainReader),
    /// TLS (its I/O takes `&mut`): the driver takes the callers' bytes out of the
    /// shared buffer and writes them itself.
    Tls {
        socket: Socket,
        /// Bytes taken from the callers' buffer and not yet written.
        out: BytesMut,
        /// The TLS layer may hold written bytes until flushed.
        needs_flush: bool,
    },
}

impl Transport {
    /// The transport over `socket`, and the write half callers may write to, if
    /// any.
    pub(super) fn new(socket: Socket) -> (Transport, Option<PlainWriter>) {
        match socket.into_split() {
            Ok((reader, writer)) => (Transport::Plain(reader), Some(writer)),
            Err(socket) => (
                Transport::Tls {
                    socket,
                    out: BytesMut::with_capacity(4 * 1024),
                    needs_flush: false,
                },
                None,
            ),
        }
    }

    /// Writes what callers queued, as far as the socket takes it, registering the
    /// driver to be woken for more. Returns whether anything was written, and
    /// whether the session is over (closed, and Terminate, if queued, written).
    pub(super) fn write(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
    ) -> Result<(bool, bool), Error> {
        match self {
            Transport::Plain(_) => {
                let mut guard = shared.lock();
                shared.set_driver(&mut guard, cx.waker());
                let state = &mut *guard;
                let mut wrote = false;
                if let Some(writer) = &mut state.writer {
                    while !state.write_buf.is_empty() {
                        match writer.poll_write(cx, &state.write_buf) {
                            Poll::Ready(Ok(0)) => return Err(stopped_reading()),
                            Poll::Ready(Ok(n)) => {
                                state.write_buf.advance(n);
                                wrote = true;
                            }
                            Poll::Ready(Err(e)) => {
                                return Err(Error::io("writing to the server", e))
                            }
                            Poll::Pending => break,
                        }
                    }
                }
                if wrote {
                    state.wake_copy_sender();
                }
                let over = state.core.phase() == Phase::Closed && state.write_buf.is_empty();
                if over {
                    // Dropped: the write half shuts down, the server sees the end.
                    state.writer = None;
                }
                Ok((wrote, over))
            }
            Transport::Tls {
                socket,
                out,
                needs_flush,
            } => {
                let closed = {
                    let mut state = shared.lock();
                    shared.set_driver(&mut state, cx.waker());
                    if out.is_empty() && !state.write_buf.is_empty() {
                        // The emptied buffer goes back, keeping its capacity.
                        std::mem::swap(out, &mut state.write_buf);
                        state.wake_copy_sender();
                    }
                    state.core.phase() == Phase::Closed && state.write_buf.is_empty()
                };
                let mut wrote = false;
                while !out.is_empty() {
                    match socket.poll_write(cx, out) {
                        Poll::Ready(Ok(0)) => return Err(stopped_reading()),
                        Poll::Ready(Ok(n)) => {
                            out.advance(n);
                            *needs_flush = true;
                            wrote = true;
                        }
                        Poll::Ready(Err(e)) => return Err(Error::io("writing to the server", e)),
                        Poll::Pending => break,
                    }
                }
                if *needs_flush {
                    match socket.poll_flush(cx) {
                        Poll::Ready(Ok(())) => *needs_flush = false,
                        Poll::Ready(Err(e)) => return Err(Error::io("writing to the server", e)),
                        Poll::Pending => {}
                    }
                }
                Ok((wrote, closed && out.is_empty() && !*needs_flush))
            }
        }
    }

    /// Reads what has arrived into `buf`.
    pub(super) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<io::Result<usize>> {
        match self {
            Transport::Plain(reader) => reader.poll_read_buf(cx, buf),
            // A read that is not ready yet is dropped and started again next
            // time: `read_buf` takes nothing until bytes are there.
            Transport::Tls { socket, .. } => pin!(socket.read_buf(buf)).poll(cx),
        }
    }

    /// Shuts the write half down once the session is over.
    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            // Shut down with the write half, once written out.
            Transport::Plain(_) => Poll::Ready(()),
            Transport::Tls { socket, .. } => socket.poll_shutdown(cx).map(|_| ()),
        }
    }
}

fn stopped_reading() -> Error {
    Error::closed("the server stopped reading")
}
