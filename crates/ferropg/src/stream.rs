//! Results a row at a time: [`RowStream`] (one query's rows as they arrive) and
//! [`Portal`] (a named portal inside a transaction, fetched in steps).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use postgres_types::{BorrowToSql, ToSql};

use crate::cancel::{timed, StepTimer};
use crate::connection::{Exec, Request};
use crate::portal::{fetched, Fetch};
use crate::row::Row;
use crate::statement::{Column, Source, Statement, ToStatement};
use crate::transaction::Transaction;
use crate::{Connection, Error};

/// The rows of one query, read from the socket as they are asked for: from
/// [`Connection::query_stream`], [`Connection::query_raw`] or
/// [`Transaction::query_stream`].
///
/// It is a [`Stream`] of rows (use `futures::StreamExt` or `TryStreamExt` on it),
/// and has its own [`next`](RowStream::next) for use without the `futures` crate.
///
/// Nothing is buffered beyond the rows one socket read brings, so a result of any
/// size takes bounded memory (the server waits while the rows are not read).
///
/// Dropping the stream before its end is safe: the connection's next call reads
/// and discards the rest of the result first.
pub struct RowStream<'a> {
    conn: &'a mut Connection,
    req: Request,
    /// The connection's time limit for each row; a timer only when one is set.
    timer: StepTimer,
    done: bool,
    failed: bool,
}

impl<'a> RowStream<'a> {
    /// Sends the query (flushed, so the server starts at once).
    pub(crate) async fn start<P: BorrowToSql>(
        conn: &'a mut Connection,
        source: Source<'_>,
        params: &[P],
    ) -> Result<RowStream<'a>, Error> {
        let exec = Exec {
            portal: "",
            max_rows: Some(0),
            learn_first: true,
        };
        let mut req = conn.start(source, params, exec).await?;
        req.resp.stream_rows = true;
        conn.flush().await?;
        Ok(RowStream {
            conn,
            req,
            timer: StepTimer::default(),
            done: false,
            failed: false,
        })
    }

    /// The next row; `None` at the end of the result. A server error (a failing
    /// row, a cancel) comes as `Some(Err(..))` once, after which the stream ends.
    /// Each call is bounded by the connection's
    /// [`timeout`](Connection::set_timeout); after a timeout the stream goes on
    /// with the cancelled query's error.
    ///
    /// Cancel-safe: a dropped `next()` future loses no row.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Option<Result<Row, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Reads up to the next row or the end.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Row>, Error>> {
        let conn = &mut *self.conn;
        loop {
            // Rows already read are handed out before anything else is looked at
            // (a connection that failed after them has ended the stream already).
            if let Some(row) = self.req.resp.streamed.pop_front() {
                return Poll::Ready(Ok(Some(row)));
            }
            conn.check_open()?;
            if self.req.resp.ended {
                self.done = true;
                let result = match self.req.resp.error.take() {
                    Some(e) => Err(Error::db(e)),
                    None => Ok(()),
                };
                conn.complete(&mut self.req, &result);
                return Poll::Ready(result.map(|()| None));
            }
            ready!(conn.poll_flush(cx))?;
            ready!(conn.poll_events(cx, self.req.op, &mut self.req.resp))?;
        }
    }

    /// The result columns: known at once for a prepared or cached statement, and
    /// after the first [`next`](RowStream::next) otherwise.
    pub fn columns(&self) -> Option<&[Column]> {
        self.req.resp.columns.as_deref()
    }

    /// The row count of the command tag, once the stream has ended without error.
    pub fn rows_affected(&self) -> Option<u64> {
        (self.done && !self.failed && self.req.resp.completed)
            .then_some(self.req.resp.rows_affected)
    }
}

impl Stream for RowStream<'_> {
    type Item = Result<Row, Error>;

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
            Ok(row) => row.map(Ok),
            Err(e) => {
                if this.conn.is_closed() {
                    this.done = true;
                }
                if this.done {
                    this.failed = true;
                }
                Some(Err(e))
            }
        })
    }
}

impl fmt::Debug for RowStream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowStream")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// A named portal: a query bound with its parameters inside a transaction, whose
/// rows are fetched in steps with [`fetch`](Portal::fetch) (an Execute with a row
/// limit each time). Made by [`Transaction::bind`]; a [`Client`](crate::Client)'s
/// are [`ClientPortal`](crate::ClientPortal)s.
///
/// The portal borrows the transaction; run other statements in between through
/// [`transaction`](Portal::transaction). It is closed on the server when dropped
/// (with the connection's next request), and in any case when the transaction ends.
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// let mut tx = conn.transaction().await?;
/// let mut portal = tx.bind("select g from generate_series(1, $1) g", &[&1000i32]).await?;
/// while !portal.is_done() {
///     for row in portal.fetch(100).await? {
///         let g: i32 = row.get(0);
///     }
///     portal.transaction().execute("select 1", &[]).await?;
/// }
/// drop(portal);
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct Portal<'t, 'c> {
    tx: &'t mut Transaction<'c>,
    name: String,
    columns: Arc<[Column]>,
    /// Keeps the statement from being closed under the portal.
    _statement: Option<Statement>,
    done: bool,
}

impl<'t, 'c> Portal<'t, 'c> {
    /// Binds `source` to a new portal, in one round trip (two for SQL text with
    /// parameters that is not cached yet).
    pub(crate) async fn bind(
        tx: &'t mut Transaction<'c>,
        source: Source<'_>,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Portal<'t, 'c>, Error> {
        let conn = tx.conn_mut();
        let name = conn.new_portal_name();
        let exec = Exec {
            portal: &name,
            max_rows: None,
            learn_first: false,
        };
        let mut req = conn.start(source, params, exec).await?;
        let result = conn.finish(req.op, &mut req.resp).await;
        conn.complete(&mut req, &result);
        result?;
        let columns = req.resp.columns.take().unwrap_or_else(|| Arc::from([]));
        // The portal is bound and the connection idle: its rows come later, so the
        // column types can be looked up now.
        let columns = conn.learned_columns(&columns).await?;
        Ok(Portal {
            tx,
            name,
            columns,
            _statement: req.statement,
            done: false,
        })
    }

    /// Fetches up to `max_rows` more rows (0: all the rest), in one round trip.
    /// Fewer than asked means the end; after it (see [`is_done`](Portal::is_done))
    /// this returns no rows without asking the server. Bounded by the connection's
    /// [`timeout`](Connection::set_timeout).
    pub async fn fetch(&mut self, max_rows: usize) -> Result<Vec<Row>, Error> {
        if self.done {
            return Ok(Vec::new());
        }
        let deadline = self.tx.connection().deadline();
        timed(deadline, self.fetch_inner(max_rows)).await
    }

    async fn fetch_inner(&mut self, max_rows: usize) -> Result<Vec<Row>, Error> {
        let fetch = Fetch::new(&self.name, &self.columns, Fetch::limit(max_rows));
        let conn = self.tx.conn_mut();
        let op = conn.begin_op().await?;
        let mut req = conn.core.request(&mut conn.write_buf);
        fetch.write(&mut req)?;
        req.send(op);
        let mut resp = fetch.response(true);
        let result = conn.finish(op, &mut resp).await;
        let (rows, more) = fetched(&mut resp);
        if result.is_err() || !more {
            self.done = true;
        }
        result?;
        Ok(rows)
    }

    /// True once the portal has given its last row (or failed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The result columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The portal's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The transaction the portal lives in, to run other statements between
    /// fetches (it cannot be committed or rolled back while the portal lives).
    pub fn transaction(&mut self) -> &mut Transaction<'c> {
        self.tx
    }
}

impl fmt::Debug for Portal<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Drop for Portal<'_, '_> {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        self.tx.conn_mut().cleanup_portals.push(name);
    }
}

impl<'c> Transaction<'c> {
    /// Binds a statement (SQL text or a [`Statement`]) and its parameters to a new
    /// named [`Portal`], to fetch its rows in steps. Named portals live until the
    /// end of their transaction, hence this is a method of [`Transaction`].
    pub async fn bind<'t, T>(
        &'t mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Portal<'t, 'c>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let deadline = self.connection().deadline();
        timed(deadline, Portal::bind(self, statement.__source(), params)).await
    }

    /// [`Connection::query_stream`] within the transaction.
    pub async fn query_stream<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'_>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.conn_mut().query_stream(statement, params).await
    }
}
