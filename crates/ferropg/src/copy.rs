//! COPY on a [`Connection`]: [`CopyIn`] feeds `COPY ... FROM STDIN` (and
//! [`BinaryCopyIn`](crate::BinaryCopyIn) writes rows into it), [`CopyOut`] reads
//! `COPY ... TO STDOUT`.
//!
//! Both directions use the simple query protocol. After an error (or a CopyFail)
//! the server answers ErrorResponse and ReadyForQuery at once and ignores any
//! CopyData still on its way, so nothing else has to be sent to get back in step.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferropg_core::sqlstate;
use futures_core::Stream;
use futures_sink::Sink;

use crate::cancel::{timed, StepTimer};
use crate::exchange::Response;
use crate::{Connection, Error};

/// Buffered COPY data is written out once it reaches this size (on a shared
/// client: a sender waits for the driver beyond it).
pub(crate) const FLUSH_AT: usize = 128 * 1024;

/// How often a COPY whose data trickles in looks at what the server said, so that a
/// server error or a lost connection ends it even before a buffer fills.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A `COPY ... FROM STDIN` in progress, from [`Connection::copy_in`]: a sink for
/// the data, in whatever format the COPY names (text, csv, binary).
///
/// [`send`](CopyIn::send) data in chunks of any size (rows may be split across
/// chunks), then [`finish`](CopyIn::finish) to commit the COPY and get its row
/// count, or [`abort`](CopyIn::abort) to make it fail (a CopyFail), which rolls it
/// back. Data is buffered and written in large pieces.
///
/// **Dropped** without `finish` or `abort`, the COPY is aborted: a CopyFail goes
/// out with the connection's next request.
///
/// If the server rejects the data midway (a malformed row, a constraint), it says
/// so at once; `send` notices when it writes, and returns that error from then on,
/// as `finish` does.
pub struct CopyIn<'a> {
    conn: &'a mut Connection,
    op: u64,
    /// The operation's record; `resp.ended` once the server ended the COPY.
    resp: Response,
    /// `finish` or `abort` took over: dropping no longer aborts.
    closing: bool,
    /// When `send` last looked at what the server said.
    polled: Instant,
    /// The connection's time limit for each step of the [`Sink`]; a timer only
    /// when one is set.
    timer: StepTimer,
}

impl<'a> CopyIn<'a> {
    /// Sends `sql` and waits for the server's CopyInResponse.
    pub(crate) async fn start(conn: &'a mut Connection, sql: &str) -> Result<CopyIn<'a>, Error> {
        let op = conn.begin_op().await?;
        conn.core.copy_in(sql, op, &mut conn.write_buf)?;
        conn.flush().await?;
        let mut resp = Response::default();
        loop {
            conn.read_events(op, &mut resp).await?;
            if resp.copy_in_ready {
                return Ok(CopyIn {
                    conn,
                    op,
                    resp,
                    closing: false,
                    polled: Instant::now(),
                    timer: StepTimer::default(),
                });
            }
            if resp.ended {
                return Err(match resp.error.take() {
                    Some(e) => Error::db(e),
                    None => Error::copy("the statement did not start a COPY FROM STDIN"),
                });
            }
            if !conn.write_buf.is_empty() {
                conn.flush().await?;
            }
        }
    }

    /// Sends a chunk of COPY data. It is buffered and written once enough has
    /// accumulated (then bounded by the connection's
    /// [`timeout`](Connection::set_timeout)); `finish` writes the rest.
    pub async fn send(&mut self, data: impl AsRef<[u8]>) -> Result<(), Error> {
        self.check()?;
        let conn = &mut *self.conn;
        conn.core.copy_data(data.as_ref(), &mut conn.write_buf)?;
        self.maybe_flush().await
    }

    /// Queues a whole CopyData message, without copying it when nothing else is
    /// buffered; `frame` is left empty.
    pub(crate) async fn send_frame(&mut self, frame: &mut BytesMut) -> Result<(), Error> {
        self.check()?;
        let out = &mut self.conn.write_buf;
        if out.is_empty() {
            // The two buffers take turns: the one just written out comes back.
            std::mem::swap(out, frame);
        } else {
            out.extend_from_slice(frame);
        }
        frame.clear();
        self.maybe_flush().await
    }

    /// Fails when the COPY is over: the server's error, or a closed connection.
    fn check(&mut self) -> Result<(), Error> {
        self.conn.check_open()?;
        if self.resp.ended {
            return Err(match &self.resp.error {
                Some(e) => Error::db(e.clone()),
                None => Error::copy("the COPY has already ended"),
            });
        }
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), Error> {
        if self.conn.write_buf.len() < FLUSH_AT {
            if self.polled.elapsed() < POLL_EVERY {
                return Ok(());
            }
            self.polled = Instant::now();
            self.poll_response()?;
            return self.check();
        }
        self.polled = Instant::now();
        let deadline = self.conn.deadline();
        timed(deadline, self.conn.flush()).await?;
        self.poll_response()?;
        self.check()
    }

    /// Takes in what the server has sent so far, without waiting: an early error
    /// ends the COPY.
    fn poll_response(&mut self) -> Result<(), Error> {
        let conn = &mut *self.conn;
        conn.read_buf.reserve(4096);
        let read = match &mut conn.socket {
            Some(socket) => socket.try_read_buf(&mut conn.read_buf),
            None => Err(crate::exchange::detached()),
        };
        let at_end = match read {
            Ok(n) => n == 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => return Err(conn.fail(Error::io("reading from the server", e))),
        };
        loop {
            conn.take_read();
            if self.resp.ended || conn.unread.is_empty() {
                break;
            }
            conn.process(self.op, &mut self.resp)?;
        }
        if at_end && !self.resp.ended {
            // The server hung up (its last words, a FATAL error, were routed above).
            let reason = match &self.resp.error {
                Some(e) => format!("the server closed the connection during COPY: {e}"),
                None => "the server closed the connection during COPY".to_owned(),
            };
            return Err(conn.fail(Error::closed(reason)));
        }
        Ok(())
    }

    /// Ends the data (CopyDone) and waits for the server to finish: returns the
    /// number of rows copied, or the error that made the COPY fail. Bounded by the
    /// connection's [`timeout`](Connection::set_timeout).
    pub async fn finish(mut self) -> Result<u64, Error> {
        self.closing = true;
        let deadline = self.conn.deadline();
        timed(deadline, self.end(None)).await?;
        Ok(self.resp.rows_affected)
    }

    /// Makes the COPY fail with `message` (a CopyFail): the server rolls back what
    /// it copied (and, inside a transaction, aborts the transaction). Returns
    /// `Ok(())` once the server confirmed; if the COPY had already failed for
    /// another reason, that error.
    pub async fn abort(mut self, message: &str) -> Result<(), Error> {
        self.closing = true;
        let deadline = self.conn.deadline();
        match timed(deadline, self.end(Some(message))).await {
            Err(e) if e.code() == Some(&sqlstate::QUERY_CANCELED) && !self.failed_before() => {
                Ok(())
            }
            Err(e) => Err(e),
            Ok(()) => Ok(()),
        }
    }

    /// True when the server had ended the COPY with an error before `abort`.
    fn failed_before(&self) -> bool {
        self.resp.ended && self.resp.error.is_some()
    }

    /// Sends CopyDone (or CopyFail with `fail`) and reads to ReadyForQuery.
    async fn end(&mut self, fail: Option<&str>) -> Result<(), Error> {
        self.conn.check_open()?;
        if self.resp.ended {
            return match &self.resp.error {
                Some(e) => Err(Error::db(e.clone())),
                None => Ok(()),
            };
        }
        let conn = &mut *self.conn;
        match fail {
            Some(message) => conn.core.copy_fail(message, &mut conn.write_buf)?,
            None => conn.core.copy_done(&mut conn.write_buf),
        }
        let result = self.conn.finish(self.op, &mut self.resp).await;
        // Over, whatever the outcome: a failed read has closed the connection.
        self.resp.ended = true;
        result
    }
}

impl CopyIn<'_> {
    /// The number of rows copied, once the COPY has ended successfully (after
    /// [`Sink::poll_close`], say `SinkExt::close`).
    pub fn rows_affected(&self) -> Option<u64> {
        (self.resp.ended && self.resp.completed && self.resp.error.is_none())
            .then_some(self.resp.rows_affected)
    }

    /// Runs one step of the [`Sink`] within the connection's time limit.
    fn poll_limited(
        &mut self,
        cx: &mut Context<'_>,
        step: impl FnOnce(&mut Self, &mut Context<'_>) -> Poll<Result<(), Error>>,
    ) -> Poll<Result<(), Error>> {
        let step = step(self, cx);
        let conn = &*self.conn;
        self.timer
            .bound(cx, step, conn.timeout(), || conn.cancel_token())
    }

    /// Writes everything buffered, then takes in what the server said so far.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.conn.poll_flush(cx))?;
        self.polled = Instant::now();
        self.poll_response()?;
        Poll::Ready(self.check())
    }
}

/// The COPY data as a [`Sink`] of [`Bytes`] (tokio-postgres's `CopyInSink`):
/// `SinkExt::send` and `send_all` feed it, `SinkExt::close` commits the COPY
/// (then [`rows_affected`](CopyIn::rows_affected) has the count). Data is buffered
/// and written in large pieces; each step is bounded by the connection's
/// [`timeout`](Connection::set_timeout). (One item type only, so that `close`
/// needs no annotation; `Bytes::from` takes a `Vec<u8>` or a `String` without a
/// copy.)
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// use bytes::Bytes;
/// use futures_util::SinkExt;
///
/// let mut copy = conn.copy_in("copy item (id, name) from stdin (format csv)").await?;
/// copy.send(Bytes::from_static(b"1,apple\n")).await?;
/// copy.send(Bytes::from(b"2,pear\n".to_vec())).await?;
/// copy.close().await?;
/// assert_eq!(copy.rows_affected(), Some(2));
/// # Ok(()) }
/// ```
impl Sink<Bytes> for CopyIn<'_> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.check()?;
        if this.conn.write_buf.len() < FLUSH_AT {
            return Poll::Ready(Ok(()));
        }
        this.poll_limited(cx, Self::poll_write_out)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        let this = self.get_mut();
        this.check()?;
        let conn = &mut *this.conn;
        conn.core.copy_data(&item, &mut conn.write_buf)?;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.check()?;
        this.poll_limited(cx, Self::poll_write_out)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            this.conn.check_open()?;
            if this.resp.ended {
                // The server ended the COPY early: its error.
                return Poll::Ready(match &this.resp.error {
                    Some(e) => Err(Error::db(e.clone())),
                    None => Ok(()),
                });
            }
            let conn = &mut *this.conn;
            conn.core.copy_done(&mut conn.write_buf);
        }
        if this.resp.ended {
            return Poll::Ready(Ok(()));
        }
        this.poll_limited(cx, |this, cx| {
            let result = ready!(this.conn.poll_finish(cx, this.op, &mut this.resp));
            // Over, whatever the outcome: a failed read has closed the connection.
            this.resp.ended = true;
            // Kept for `finish`, should it be called after the close.
            if let Err(e) = &result {
                this.resp.error = e.as_db_error().cloned();
            }
            Poll::Ready(result)
        })
    }
}

impl fmt::Debug for CopyIn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyIn")
            .field("ended", &self.resp.ended)
            .finish_non_exhaustive()
    }
}

impl Drop for CopyIn<'_> {
    fn drop(&mut self) {
        if !self.closing && !self.resp.ended && !self.conn.is_closed() {
            // Goes out with the next request; the server then rolls the COPY back
            // and ends the operation, which that request reads past.
            let conn = &mut *self.conn;
            let _ = conn
                .core
                .copy_fail("the COPY was abandoned by the client", &mut conn.write_buf);
        }
    }
}

/// A `COPY ... TO STDOUT` in progress, from [`Connection::copy_out`]: the data in
/// the chunks the server sends (one row each, for text and csv), read as they
/// are asked for.
///
/// Dropping it before the end is safe: the connection's next call reads and
/// discards the rest.
pub struct CopyOut<'a> {
    conn: &'a mut Connection,
    op: u64,
    resp: Response,
    /// The connection's time limit for each chunk; a timer only when one is set.
    timer: StepTimer,
    done: bool,
}

impl<'a> CopyOut<'a> {
    /// Sends `sql` and waits for the server's CopyOutResponse.
    pub(crate) async fn start(conn: &'a mut Connection, sql: &str) -> Result<CopyOut<'a>, Error> {
        let op = conn.begin_op().await?;
        conn.send_simple(op, sql)?;
        conn.flush().await?;
        let mut resp = Response {
            stream_copy: true,
            ..Response::default()
        };
        loop {
            conn.read_events(op, &mut resp).await?;
            if resp.copy_out_started {
                return Ok(CopyOut {
                    conn,
                    op,
                    resp,
                    timer: StepTimer::default(),
                    done: false,
                });
            }
            if resp.ended {
                return Err(match resp.error.take() {
                    Some(e) => Error::db(e),
                    None => Error::copy("the statement did not start a COPY TO STDOUT"),
                });
            }
            if !conn.write_buf.is_empty() {
                conn.flush().await?;
            }
        }
    }

    /// The next chunk of data (a shared slice of what was read, not a copy);
    /// `None` at the end. An error (the query failed, was cancelled) comes once as
    /// `Some(Err(..))`, and then the stream ends. Each call is bounded by the
    /// connection's [`timeout`](Connection::set_timeout). The same as the
    /// [`Stream`] implementation's.
    ///
    /// Cancel-safe: a dropped `next()` future loses no data.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, Error>> {
        let conn = &mut *self.conn;
        conn.check_open()?;
        loop {
            if let Some(chunk) = self.resp.next_chunk.take() {
                return Poll::Ready(Ok(Some(chunk)));
            }
            // The end may have come with the CopyOutResponse, in the same read.
            if self.resp.ended {
                self.done = true;
                return Poll::Ready(match &self.resp.error {
                    Some(e) => Err(Error::db(e.clone())),
                    None => Ok(None),
                });
            }
            ready!(conn.poll_flush(cx))?;
            ready!(conn.poll_events(cx, self.op, &mut self.resp))?;
        }
    }

    /// The number of rows copied, once the stream has ended without error.
    pub fn rows_affected(&self) -> Option<u64> {
        (self.done && self.resp.error.is_none() && self.resp.completed)
            .then_some(self.resp.rows_affected)
    }
}

impl Stream for CopyOut<'_> {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let step = this.poll_step(cx);
        let conn = &*this.conn;
        let result = ready!(this
            .timer
            .bound(cx, step, conn.timeout(), || conn.cancel_token()));
        Poll::Ready(match result {
            Ok(chunk) => chunk.map(Ok),
            Err(e) => {
                if this.conn.is_closed() {
                    this.done = true;
                }
                Some(Err(e))
            }
        })
    }
}

impl fmt::Debug for CopyOut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOut")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
