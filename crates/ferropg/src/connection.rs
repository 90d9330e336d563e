//! [`Connection`]: one session, driven inline by its owner.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use ferropg_core::conn::{Connection as CoreConnection, Phase, Routed, StartupParams};
use ferropg_core::message::frontend::{self, BindFailure, EncodeError};
use ferropg_core::message::{parse_message, TransactionStatus};
use ferropg_core::DbError;
use postgres_types::{IsNull, ToSql, Type};

use crate::cancel::CancelToken;
use crate::exchange::{Op, Response, NO_OP};
use crate::notification::Notification;
use crate::row::Row;
use crate::socket::{Endpoint, Socket};
use crate::statement::{type_from_oid, CloseQueue, Column, Source, Statement, ToStatement};
use crate::transaction::Transaction;
use crate::Error;

/// Hands out a distinct id to every connection, so statements know their own.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A notice handler: called with each NOTICE, WARNING, INFO, ... the server sends.
type NoticeHandler = Box<dyn FnMut(&DbError) + Send>;

/// An open session with a PostgreSQL server.
///
/// There is no background task: each `&mut self` method writes its request and
/// reads the response on the calling task, so one connection serves one caller at a
/// time (one connection per task).
///
/// Values are sent and received in binary format: parameters through
/// [`ToSql`], with the types the server inferred for the statement, and columns
/// through [`FromSql`](postgres_types::FromSql) with [`Row::get`].
///
/// **Dropping a future** (say, under `tokio::time::timeout`) is safe: the next call
/// first reads the rest of the abandoned response, up to its ReadyForQuery, so the
/// connection stays in step. A query that keeps running on the server is best
/// stopped with a [`CancelToken`].
///
/// After a server error the connection stays usable (within a transaction, the
/// transaction is aborted until it is rolled back, as always in PostgreSQL). After
/// an I/O error, a protocol violation or a FATAL error it is closed, and every call
/// returns an error of kind [`Closed`](crate::ErrorKind::Closed).
pub struct Connection {
    pub(crate) socket: Socket,
    pub(crate) endpoint: Endpoint,
    pub(crate) core: CoreConnection<Op>,
    pub(crate) read_buf: BytesMut,
    pub(crate) write_buf: BytesMut,
    pub(crate) id: u64,
    pub(crate) next_op: u64,
    next_statement: u64,
    pub(crate) closed_reason: Option<String>,
    pub(crate) close_queue: CloseQueue,
    pub(crate) cleanup_sql: Vec<String>,
    pub(crate) notice_handler: Option<NoticeHandler>,
    pub(crate) notifications: VecDeque<Notification>,
    connect_timeout: Option<Duration>,
}

impl Connection {
    /// A connection over `socket`, before startup.
    pub(crate) fn new(
        socket: Socket,
        endpoint: Endpoint,
        params: StartupParams,
        connect_timeout: Option<Duration>,
    ) -> Connection {
        Connection {
            socket,
            endpoint,
            core: CoreConnection::new(params),
            read_buf: BytesMut::with_capacity(16 * 1024),
            write_buf: BytesMut::with_capacity(4 * 1024),
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            next_op: NO_OP,
            next_statement: 0,
            closed_reason: None,
            close_queue: Arc::new(Mutex::new(Vec::new())),
            cleanup_sql: Vec::new(),
            notice_handler: None,
            notifications: VecDeque::new(),
            connect_timeout,
        }
    }

    /// Runs startup and authentication, up to the first ReadyForQuery.
    pub(crate) async fn startup(&mut self) -> Result<(), Error> {
        self.core
            .start(&mut self.write_buf)
            .map_err(Error::from_core)?;
        loop {
            self.flush().await?;
            let frame = self.read_frame().await?;
            let msg = match parse_message(&frame) {
                Ok(Some((msg, _))) => msg,
                Ok(None) => return Err(self.fail(Error::protocol("incomplete message"))),
                Err(e) => return Err(self.fail(Error::protocol(e.to_string()))),
            };
            match self.core.process(msg, &mut self.write_buf) {
                Ok(Routed::StartupDone) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(self.fail(Error::from_core(e))),
            }
        }
    }

    /// Runs a statement and returns all its rows.
    ///
    /// `statement` is SQL text (one statement, with `$1`, `$2`, ... placeholders) or
    /// a [`Statement`] from [`prepare`](Connection::prepare). SQL text is prepared
    /// as the unnamed statement each time: without parameters in one round trip,
    /// with parameters in two (their types come from the server).
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let rows = conn.query("select id, name from users where id > $1", &[&10i32]).await?;
    /// for row in &rows {
    ///     let id: i32 = row.get("id");
    ///     let name: Option<&str> = row.get(1);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let resp = self.run(statement.__source(), params, true).await?;
        Ok(resp.rows.unwrap_or_default())
    }

    /// Runs a statement that must return exactly one row; otherwise an error of kind
    /// [`RowCount`](crate::ErrorKind::RowCount).
    pub async fn query_one<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        let mut rows = self.query(statement, params).await?;
        match rows.len() {
            1 => Ok(rows.remove(0)),
            n => Err(Error::row_count("one row", n)),
        }
    }

    /// Runs a statement that returns at most one row; more is an error of kind
    /// [`RowCount`](crate::ErrorKind::RowCount).
    pub async fn query_opt<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let mut rows = self.query(statement, params).await?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows.pop()),
            n => Err(Error::row_count("at most one row", n)),
        }
    }

    /// Runs a statement and returns the number of rows it affected (from its
    /// command tag: inserted, updated, deleted, selected, copied...; 0 for
    /// statements without a count). Rows it returns are discarded.
    pub async fn execute<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        let resp = self.run(statement.__source(), params, false).await?;
        Ok(resp.rows_affected)
    }

    /// Runs one or more `;`-separated statements with the simple query protocol,
    /// without parameters, discarding any rows. Without an explicit transaction,
    /// the statements run in one implicit transaction: an error rolls back all of
    /// them.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        let op = self.begin_op().await?;
        self.send_simple(op, sql)?;
        self.finish(op, &mut Response::default()).await
    }

    /// Prepares a named statement, taking its parameter types from the server.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.prepare_typed(sql, &[]).await
    }

    /// Prepares a named statement, fixing the types of the first parameters
    /// (the server infers the others).
    pub async fn prepare_typed(&mut self, sql: &str, types: &[Type]) -> Result<Statement, Error> {
        self.next_statement += 1;
        let name = format!("ferropg_s{}", self.next_statement);
        let (params, columns) = self.describe(&name, sql, types).await?;
        Ok(Statement::new(
            name,
            self.id,
            params,
            columns,
            &self.close_queue,
        ))
    }

    /// Starts a transaction (`BEGIN`). See [`Transaction`] for what happens when it
    /// is dropped without [`commit`](Transaction::commit).
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        Transaction::begin(self).await
    }

    /// Sends Terminate and closes the connection; later calls fail with
    /// [`Closed`](crate::ErrorKind::Closed). Closing a closed connection does nothing.
    pub async fn close(&mut self) -> Result<(), Error> {
        if self.is_closed() {
            return Ok(());
        }
        self.core.terminate(&mut self.write_buf);
        self.closed_reason = Some("the connection was closed by the client".into());
        let result = self.flush().await;
        let _ = self.socket.shutdown().await;
        result
    }

    /// True once the connection is closed (by [`close`](Connection::close), by the
    /// server, or after an error that ended the session).
    pub fn is_closed(&self) -> bool {
        self.core.phase() == Phase::Closed
    }

    /// The server's version as it reports it (`server_version`, e.g. `"16.4"`).
    pub fn server_version(&self) -> Option<&str> {
        self.core.parameter("server_version")
    }

    /// A run-time parameter the server reports (`server_version`, `TimeZone`,
    /// `integer_datetimes`, `application_name`, ...), as last reported.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.core.parameter(name)
    }

    /// The process ID of the server backend serving this session.
    pub fn backend_pid(&self) -> i32 {
        self.core.process_id()
    }

    /// The transaction status of the last ReadyForQuery.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.core.transaction_status()
    }

    /// What is needed to cancel this connection's running query from elsewhere.
    pub fn cancel_token(&self) -> CancelToken {
        CancelToken {
            endpoint: self.endpoint.clone(),
            process_id: self.core.process_id(),
            secret_key: self.core.secret_key().to_vec(),
            connect_timeout: self.connect_timeout,
        }
    }

    /// Calls `handler` with every notice (NOTICE, WARNING, INFO, ...) the server
    /// sends; by default they are discarded.
    pub fn set_notice_handler(&mut self, handler: impl FnMut(&DbError) + Send + 'static) {
        self.notice_handler = Some(Box::new(handler));
    }

    /// Takes the notifications received so far (after `LISTEN channel`).
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.notifications.drain(..).collect()
    }

    /// Waits for the next notification (after `LISTEN channel`), reading from the
    /// socket if none has arrived yet.
    pub async fn notification(&mut self) -> Result<Notification, Error> {
        loop {
            if let Some(n) = self.notifications.pop_front() {
                return Ok(n);
            }
            self.check_open()?;
            // A pending ROLLBACK would otherwise hold notifications back.
            self.write_cleanup()?;
            self.flush().await?;
            let frame = self.read_frame().await?;
            self.route(&frame, NO_OP)?;
            if !self.write_buf.is_empty() {
                self.flush().await?;
            }
        }
    }

    /// Parses `sql` as statement `name` and describes it.
    async fn describe(
        &mut self,
        name: &str,
        sql: &str,
        types: &[Type],
    ) -> Result<(Vec<Type>, Arc<[Column]>), Error> {
        let op = self.begin_op().await?;
        self.encode(|buf| {
            frontend::parse(name, sql, types.iter().map(Type::oid), buf)?;
            frontend::describe(b'S', name, buf)?;
            frontend::sync(buf);
            Ok::<(), EncodeError>(())
        })?;
        self.core.push(Op {
            id: op,
            extended: true,
        });
        let mut resp = Response {
            describe: true,
            ..Response::default()
        };
        self.finish(op, &mut resp).await?;
        let params = resp.params.unwrap_or_default();
        let params = params.into_iter().map(type_from_oid).collect();
        let columns = resp.columns.unwrap_or_else(|| Arc::from([]));
        Ok((params, columns))
    }

    /// Runs one statement with the extended protocol; `collect` keeps the rows.
    async fn run(
        &mut self,
        source: Source<'_>,
        params: &[&(dyn ToSql + Sync)],
        collect: bool,
    ) -> Result<Response, Error> {
        let mut resp = Response {
            rows: collect.then(Vec::new),
            ..Response::default()
        };
        let op = match source {
            Source::Prepared(statement) => {
                if statement.connection_id() != self.id {
                    return Err(Error::wrong_connection());
                }
                check_count(statement.params().len(), params.len())?;
                resp.columns = Some(statement.columns_arc().clone());
                let op = self.begin_op().await?;
                self.send_bind(op, statement.name(), statement.params(), params)?;
                op
            }
            Source::Sql(sql) if params.is_empty() => {
                // Parse, bind and run in one round trip; Describe of the portal
                // gives the columns in the formats asked for.
                resp.describe = collect;
                let op = self.begin_op().await?;
                self.encode(|buf| {
                    frontend::parse("", sql, [], buf)?;
                    bind(buf, "", &[], &[])?;
                    if collect {
                        frontend::describe(b'P', "", buf)?;
                    }
                    frontend::execute("", 0, buf)?;
                    frontend::sync(buf);
                    Ok::<(), Error>(())
                })?;
                self.core.push(Op {
                    id: op,
                    extended: true,
                });
                op
            }
            Source::Sql(sql) => {
                let (types, columns) = self.describe("", sql, &[]).await?;
                check_count(types.len(), params.len())?;
                resp.columns = Some(columns);
                let op = self.begin_op().await?;
                self.send_bind(op, "", &types, params)?;
                op
            }
        };
        self.finish(op, &mut resp).await?;
        Ok(resp)
    }

    /// Encodes Bind, Execute and Sync for `statement` and queues them as `op`.
    fn send_bind(
        &mut self,
        op: u64,
        statement: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), Error> {
        self.encode(|buf| {
            bind(buf, statement, types, params)?;
            frontend::execute("", 0, buf)?;
            frontend::sync(buf);
            Ok::<(), Error>(())
        })?;
        self.core.push(Op {
            id: op,
            extended: true,
        });
        Ok(())
    }
}

/// The error for a parameter count that does not match the statement's.
fn check_count(expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::parameter_count(expected, got))
    }
}

/// Encodes a Bind of the unnamed portal: every parameter in binary, converted with
/// its statement type, and every result column asked for in binary.
fn bind(
    buf: &mut BytesMut,
    statement: &str,
    types: &[Type],
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), Error> {
    let formats = (!params.is_empty()).then_some(1i16);
    let write = |i: usize, buf: &mut BytesMut| -> Result<bool, Error> {
        let (Some(param), Some(ty)) = (params.get(i), types.get(i)) else {
            return Err(Error::parameter_count(types.len(), params.len()));
        };
        match param.to_sql_checked(ty, buf) {
            Ok(IsNull::Yes) => Ok(true),
            Ok(IsNull::No) => Ok(false),
            Err(e) => Err(Error::to_sql(i, e)),
        }
    };
    frontend::bind("", statement, formats, params.len(), write, [1], buf).map_err(|e| match e {
        BindFailure::Param(e) => e,
        BindFailure::Encode(e) => Error::encode(e.0),
    })
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("endpoint", &self.endpoint)
            .field("backend_pid", &self.core.process_id())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    /// Sends Terminate if that can be done without waiting, so that the server
    /// logs a clean disconnect; the server rolls back any open transaction.
    fn drop(&mut self) {
        if !self.is_closed() && self.write_buf.is_empty() {
            let mut buf = BytesMut::with_capacity(5);
            frontend::terminate(&mut buf);
            let _ = self.socket.try_write(&buf);
        }
    }
}
