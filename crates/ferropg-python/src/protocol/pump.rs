//! The blocking face's socket calls: the request written straight to the socket, then
//! the socket read and handed to the protocol until an operation's future is done, with
//! no Python between the two and the GIL released while waiting.

use std::io;
use std::os::fd::RawFd;

/// Bytes asked of one read.
pub(super) const READ_SIZE: usize = 64 * 1024;

/// What one read of the socket gave.
pub(super) enum Read {
    /// Bytes, in the buffer's first `n`.
    Bytes(usize),
    /// Nothing yet: wait for the socket to become readable.
    Later,
    /// The peer closed the stream.
    End,
    /// A signal arrived: Python's handlers must run before waiting again.
    Interrupted,
    /// The socket failed (the event loop's own read then reports how).
    Failed,
}

/// Reads what `fd` (non-blocking) holds into `buf`, without waiting.
pub(super) fn read_now(fd: RawFd, buf: &mut [u8]) -> Read {
    // SAFETY: `buf` is valid for writes of its length; the fd is the caller's.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n > 0 {
        return Read::Bytes(n as usize);
    }
    if n == 0 {
        return Read::End;
    }
    match io::Error::last_os_error().kind() {
        io::ErrorKind::WouldBlock => Read::Later,
        io::ErrorKind::Interrupted => Read::Interrupted,
        _ => Read::Failed,
    }
}

/// Waits for `fd` to be readable, then reads into `buf` (never [`Read::Later`]).
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
            return match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => Read::Interrupted,
                _ => Read::Failed,
            };
        }
        match read_now(fd, buf) {
            Read::Later => continue,
            other => return other,
        }
    }
}

/// Writes as much of `data` to `fd` (non-blocking) as it takes now; returns how many
/// bytes went. The rest (a full socket buffer, an error) is the event loop's to send
/// or to report.
pub(super) fn send_now(fd: RawFd, data: &[u8]) -> usize {
    let mut sent = 0;
    while sent < data.len() {
        let rest = &data[sent..];
        // SAFETY: `rest` is valid for reads of its length; the fd is the caller's.
        // MSG_NOSIGNAL: a closed peer is an error to report, not a SIGPIPE.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n > 0 {
            sent += n as usize;
        } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            break;
        }
    }
    sent
}
