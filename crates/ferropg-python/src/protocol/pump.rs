//! The blocking face's read loop: the socket read and handed to the protocol until an
//! operation's future is done, with no Python between the two and the GIL released
//! while waiting.

use std::io;
use std::os::fd::RawFd;

/// Bytes asked of one read.
pub(super) const READ_SIZE: usize = 64 * 1024;

/// What one wait on the socket gave.
pub(super) enum Read {
    /// Bytes, in the buffer's first `n`.
    Bytes(usize),
    /// The peer closed the stream.
    End,
    /// A signal arrived: Python's handlers must run before waiting again.
    Interrupted,
    /// The socket failed (the event loop's own read then reports how).
    Failed,
}

/// Waits for `fd` (non-blocking) to be readable, then reads into `buf`.
pub(super) fn wait_and_read(fd: RawFd, buf: &mut [u8]) -> Read {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the length given.
        let ready = unsafe { libc::poll(&mut pfd, 1, -1) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::Interrupted => Read::Interrupted,
                _ => Read::Failed,
            };
        }
        // SAFETY: `buf` is valid for writes of its length; the fd is the caller's.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return Read::Bytes(n as usize);
        }
        if n == 0 {
            return Read::End;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => continue,
            io::ErrorKind::Interrupted => return Read::Interrupted,
            _ => return Read::Failed,
        }
    }
}
