//! [`Client`]: one session shared by many tasks, their requests pipelined.

mod batch;
mod copy_in;
mod driver;
mod feed;
mod portal;
mod requests;
mod reset;
mod shared;
mod streams;
mod transaction;
mod transport;

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ferropg_core::message::frontend;
use ferropg_core::message::TransactionStatus;
use ferropg_core::DbError;
use postgres_types::{BorrowToSql, ToSql, Type};

pub use copy_in::ClientCopyIn;
pub use driver::ClientDriver;
use feed::FeedHandle;
pub use portal::ClientPortal;
pub(crate) use reset::DeferredReset;
use shared::{ReplyTo, Shared};
pub(crate) use shared::{Session, Waiting};
pub use streams::{ClientCopyOut, ClientNotifications, ClientRowStream};
pub use transaction::{ClientTransaction, ClientTransactionBuilder};
use transport::Transport;

use crate::cancel::CancelToken;
use crate::connection::encode_typed;
use crate::exchange::Response;
use crate::notification::Notification;
use crate::row::Row;
use crate::simple::SimpleQueryMessage;
use crate::socket::Socket;
use crate::statement::{Statement, ToStatement};
use crate::{Config, Error};

/// A session with a PostgreSQL server that many tasks use at once, through `&self`
/// (put it in an [`Arc`] to share it). Its [`ClientDriver`] does the I/O and must
/// be running: [`Client::connect`] spawns it, [`connect_client`] hands it over.
///
/// **Requests are pipelined.** Each call writes its request at once, without
/// waiting for the replies to earlier ones, and the replies come back in the order
/// the requests were queued: ten tasks that query at the same time share one round
/// trip rather than taking ten. Each request is a Sync group of its own, so a
/// server error fails only the call that caused it.
///
/// SQL text goes through one **statement cache** for all callers (the rules of
/// [`Connection::query`](crate::Connection::query)): a statement one task prepared
/// is bound by the others.
///
/// **Dropping a call's future** (under `tokio::time::timeout`, `select!`, or an
/// aborted task) never disturbs the other callers: a request already written runs
/// to its end, and the driver reads its reply and discards it. Nothing sends a
/// CancelRequest on a drop, since on a pipelined connection it could stop another
/// task's query. To stop a long query, use [`cancel_token`](Client::cancel_token)
/// (which stops whatever the server runs at that moment). There is no per-call
/// timeout here; [`Config::command_timeout`] applies to [`Connection`](crate::Connection)s
/// only.
///
/// Exclusive use, for a transaction, takes `&mut self` as in tokio-postgres:
/// [`transaction`](Client::transaction), [`build_transaction`](Client::build_transaction).
/// Rows can be streamed ([`query_raw`](Client::query_raw)), COPY run both ways
/// ([`copy_in`](Client::copy_in), [`copy_out`](Client::copy_out)), statements sent
/// as a [`Batch`](crate::Batch) or run for many rows of parameters
/// ([`execute_many`](Client::execute_many)), and a transaction's rows fetched in
/// steps from a portal ([`ClientTransaction::bind`], [`ClientPortal`]).
///
/// Over TCP and Unix sockets, a request that finds the connection idle is written
/// by its caller, without waking the driver (which reads the reply); under load the
/// driver writes what several callers queued in one system call.
///
/// When the connection ends (the server went away, a FATAL error), every call in
/// flight fails with an error of kind [`Closed`](crate::ErrorKind::Closed) and so
/// does every later one.
///
/// **Behind pgbouncer** (transaction pooling) nothing needs setting: the client
/// suspects the pooler from its startup, and switches to
/// [`pooler_mode`](Client::pooler_mode) the first time a statement it prepared
/// is missing, running that call again; statements are then parsed again in each
/// request, at no extra round trip.
///
/// ```no_run
/// use std::sync::Arc;
///
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://postgres@localhost/postgres".parse()?;
/// let client = Arc::new(ferropg::Client::connect(&config).await?);
/// let mut tasks = Vec::new();
/// for i in 0..10i32 {
///     let client = Arc::clone(&client);
///     tasks.push(tokio::spawn(async move {
///         let row = client.query_one("select $1::int4 * 2", &[&i]).await?;
///         Ok::<i32, ferropg::Error>(row.get(0))
///     }));
/// }
/// for (i, task) in tasks.into_iter().enumerate() {
///     assert_eq!(task.await.unwrap()?, 2 * i as i32);
/// }
/// # Ok(()) }
/// ```
pub struct Client {
    shared: Arc<Shared>,
}

/// Connects with `config` (as [`connect`](crate::connect) does) and returns the
/// shared [`Client`] with its [`ClientDriver`], the future that does the
/// connection's I/O. Spawn the driver on the runtime; it ends when the client is
/// dropped, or with the error that ended the connection.
///
/// ```no_run
/// # async fn f() -> Result<(), ferropg::Error> {
/// let config: ferropg::Config = "postgresql://postgres@localhost/postgres".parse()?;
/// let (client, driver) = ferropg::connect_client(&config).await?;
/// tokio::spawn(async move {
///     if let Err(e) = driver.await {
///         eprintln!("connection error: {e}");
///     }
/// });
/// let n: i32 = client.query_one("select 1", &[]).await?.get(0);
/// # Ok(()) }
/// ```
pub async fn connect_client(config: &Config) -> Result<(Client, ClientDriver), Error> {
    crate::connect(config).await?.into_client().await
}

impl Client {
    /// Connects with `config` and spawns the [`ClientDriver`] with
    /// `tokio::spawn`: [`connect_client`] for the common case.
    pub async fn connect(config: &Config) -> Result<Client, Error> {
        let (client, driver) = connect_client(config).await?;
        // The driver's error reaches every call in flight and every later one.
        tokio::spawn(driver);
        Ok(client)
    }

    /// The client over a session taken from a connection, and its driver.
    pub(crate) fn from_session(
        session: Session,
        socket: Socket,
        read_buf: BytesMut,
        unread: Bytes,
    ) -> (Client, ClientDriver) {
        let (transport, writer) = Transport::new(socket);
        let shared = Shared::new(session, writer);
        let driver = ClientDriver::new(Arc::clone(&shared), transport, read_buf, unread);
        (Client { shared }, driver)
    }

    /// Runs a statement and returns all its rows: SQL text (one statement, `$1`,
    /// `$2`, ... placeholders; through the shared statement cache) or a
    /// [`Statement`] prepared on this client. See
    /// [`Connection::query`](crate::Connection::query) for the round trips each
    /// takes; concurrent calls share them.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let resp = self.run(statement.__source(), params, true).await?;
        let mut rows = resp.rows.unwrap_or_default();
        self.retype_rows(&mut rows).await?;
        Ok(rows)
    }

    /// Runs a statement that must return exactly one row; otherwise an error of kind
    /// [`RowCount`](crate::ErrorKind::RowCount).
    pub async fn query_one<T>(
        &self,
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
        &self,
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
    /// command tag; 0 for statements without a count). Rows it returns are
    /// discarded.
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        let resp = self.run(statement.__source(), params, false).await?;
        Ok(resp.rows_affected)
    }

    /// Runs a statement and returns its rows as they arrive (a [`Stream`](futures_core::Stream)),
    /// with the parameters given by an iterator (of values, references,
    /// `&dyn ToSql`, boxed values: anything [`BorrowToSql`]), as tokio-postgres's
    /// `query_raw`. SQL text is prepared first (and cached), so that the column
    /// types are known before the first row. See [`ClientRowStream`] for its
    /// memory bound.
    ///
    /// ```no_run
    /// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// let mut rows = client
    ///     .query_raw("select g from generate_series(1, $1::int4) g", [1_000_000i32])
    ///     .await?;
    /// let mut sum = 0i64;
    /// while let Some(row) = rows.try_next().await? {
    ///     sum += i64::from(row.get::<_, i32>(0));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query_raw<T, P, I>(
        &self,
        statement: &T,
        params: I,
    ) -> Result<ClientRowStream, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        let params: Vec<P> = params.into_iter().collect();
        let feed = FeedHandle::new();
        let (statement, columns, cached) = self
            .start_stream(statement.__source(), &params, feed.sender())
            .await?;
        Ok(ClientRowStream::new(
            feed,
            statement,
            columns,
            cached,
            Arc::clone(&self.shared),
        ))
    }

    /// [`execute`](Client::execute) with the parameters given by an iterator, as
    /// tokio-postgres's `execute_raw`.
    pub async fn execute_raw<T, P, I>(&self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        let params: Vec<P> = params.into_iter().collect();
        let resp = self.run(statement.__source(), &params, false).await?;
        Ok(resp.rows_affected)
    }

    /// Runs a statement with the parameter types given beside the values, in one
    /// round trip, without preparing it first; nothing is cached. See
    /// [`Connection::query_typed`](crate::Connection::query_typed).
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        frontend::check_parameter_count(params.len()).map_err(|e| Error::encode(e.0))?;
        let resp = Response {
            describe: true,
            rows: Some(Vec::new()),
            ..Response::default()
        };
        // The unnamed statement is safe here: parsed and bound in one request,
        // which nothing of another task's can come between.
        let reply = self.shared.submit(resp, |state, op| {
            let mut wire = state.core.request(&mut state.write_buf);
            encode_typed(&mut wire, sql, params)?;
            wire.send(op);
            Ok(())
        })?;
        let resp = reply.response().await?;
        if let Some(e) = resp.error {
            return Err(Error::db(e));
        }
        let mut rows = resp.rows.unwrap_or_default();
        self.retype_rows(&mut rows).await?;
        Ok(rows)
    }

    /// Runs one or more `;`-separated statements with the simple query protocol
    /// and returns what they sent: each result's columns, its rows as text, each
    /// statement's row count. See
    /// [`Connection::simple_query`](crate::Connection::simple_query).
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        let resp = Response {
            simple: Some(Vec::new()),
            ..Response::default()
        };
        let reply = self.shared.submit(resp, |state, op| {
            state.core.query(sql, op, &mut state.write_buf)?;
            Ok(())
        })?;
        let resp = reply.response().await?;
        match resp.error {
            Some(e) => Err(Error::db(e)),
            None => Ok(resp.simple.unwrap_or_default()),
        }
    }

    /// Starts `COPY ... FROM STDIN` and returns the sink to feed it, once the
    /// server is ready for the data; see [`ClientCopyIn`]. Meanwhile, and until the
    /// COPY ends, other tasks' requests are held back (the server would take them
    /// for COPY data) and go out right after it; a second COPY FROM STDIN waits for
    /// the first. Fails, with the server's error or one of kind
    /// [`Copy`](crate::ErrorKind::Copy), if `sql` does not start a COPY FROM STDIN.
    ///
    /// ```no_run
    /// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
    /// let mut copy = client.copy_in("copy item (id, name) from stdin (format csv)").await?;
    /// copy.send("1,apple\n2,pear\n").await?;
    /// assert_eq!(copy.finish().await?, 2);
    /// # Ok(()) }
    /// ```
    pub async fn copy_in(&self, sql: &str) -> Result<ClientCopyIn<'_>, Error> {
        ClientCopyIn::start(self, sql).await
    }

    /// Starts `COPY ... TO STDOUT` and returns the stream of its data, once the
    /// server has begun sending it; see [`ClientCopyOut`]. Fails, with the
    /// server's error or one of kind [`Copy`](crate::ErrorKind::Copy), if `sql`
    /// does not start a COPY TO STDOUT.
    ///
    /// ```no_run
    /// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// let copy = client.copy_out("copy item to stdout (format csv)").await?;
    /// let chunks: Vec<bytes::Bytes> = copy.try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn copy_out(&self, sql: &str) -> Result<ClientCopyOut, Error> {
        let feed = FeedHandle::new();
        self.shared.submit_to(
            Response::default(),
            ReplyTo::Chunks(feed.sender()),
            |state, op| {
                state.core.query(sql, op, &mut state.write_buf)?;
                Ok(())
            },
        )?;
        ClientCopyOut::start(feed).await
    }

    /// Runs one or more `;`-separated statements with the simple query protocol,
    /// without parameters, discarding any rows. Without an explicit transaction,
    /// the statements run in one implicit transaction: an error rolls back all of
    /// them. A `COPY ... FROM STDIN` among them fails (use a
    /// [`Connection`](crate::Connection) for COPY).
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        let reply = self.shared.submit(Response::default(), |state, op| {
            state.core.query(sql, op, &mut state.write_buf)?;
            Ok(())
        })?;
        match reply.response().await?.error {
            Some(e) => Err(Error::db(e)),
            None => Ok(()),
        }
    }

    /// Prepares a named statement, taking its parameter types from the server. The
    /// statement is the caller's (not cached), usable by any task on this client;
    /// it is closed once every clone of it is dropped.
    pub async fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.prepare_named(sql, &[]).await
    }

    /// Prepares a named statement, fixing the types of the first parameters (the
    /// server infers the others).
    pub async fn prepare_typed(&self, sql: &str, types: &[Type]) -> Result<Statement, Error> {
        self.prepare_named(sql, types).await
    }

    /// The statement the shared cache holds for `sql`, prepared (and cached) first
    /// if it holds none: the statement [`query`](Client::query) runs for that
    /// text. See [`Connection::prepare_cached`](crate::Connection::prepare_cached).
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement, Error> {
        match self.shared.cache_lookup(sql) {
            Ok(Some(statement)) => Ok(statement),
            Ok(None) => {
                let statement = self.prepare_named(sql, &[]).await?;
                self.shared.cache_put(sql.to_owned(), statement.clone());
                Ok(statement)
            }
            Err(()) => self.prepare_named(sql, &[]).await,
        }
    }

    /// Empties the statement cache. Its statements are closed on the server with
    /// the next request (those still held by a [`Statement`] handle once it is
    /// dropped).
    pub fn clear_statement_cache(&self) {
        let dropped = self.shared.lock().cache.clear();
        drop(dropped);
    }

    /// How many statements the shared cache holds.
    pub fn statement_cache_len(&self) -> usize {
        self.shared.lock().cache.len()
    }

    /// Forgets the types learned from the catalog and the cached statements. Call it
    /// after changing a type this client has used (`ALTER TYPE ...`).
    pub fn reload_schema_state(&self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.types.clear();
            state.cache.clear()
        };
        drop(dropped);
    }

    /// Starts a transaction (`BEGIN`). It takes the client exclusively (`&mut`), so
    /// that no other task's statement lands inside it: a client shared through an
    /// [`Arc`] cannot start one. See [`ClientTransaction`] for what a drop without
    /// [`commit`](ClientTransaction::commit) does.
    pub async fn transaction(&mut self) -> Result<ClientTransaction<'_>, Error> {
        ClientTransaction::begin(self).await
    }

    /// Options for a transaction to start (isolation level, read-only,
    /// deferrable): see [`ClientTransactionBuilder`]. Exclusive, as
    /// [`transaction`](Client::transaction) is.
    pub fn build_transaction(&mut self) -> ClientTransactionBuilder<'_> {
        ClientTransactionBuilder::new(self)
    }

    /// What is needed to cancel the query the server runs for this client from
    /// elsewhere. On a pipelined client that is whichever task's query runs when
    /// the request arrives: use it only when no other task may be waiting.
    pub fn cancel_token(&self) -> CancelToken {
        self.shared.cancel.clone()
    }

    /// True once the connection is closed (the client's calls then fail at once).
    pub fn is_closed(&self) -> bool {
        self.shared.lock().check_open().is_err()
    }

    /// The process ID of the server backend serving this session.
    pub fn backend_pid(&self) -> i32 {
        self.shared.backend_pid
    }

    /// A run-time parameter the server reports (`server_version`, `TimeZone`,
    /// ...), as last reported.
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.shared.lock().core.parameter(name).map(str::to_owned)
    }

    /// The transaction status of the last ReadyForQuery read (with requests in
    /// flight, that of the last one answered).
    pub fn transaction_status(&self) -> TransactionStatus {
        self.shared.lock().core.transaction_status()
    }

    /// Calls `handler` with every notice (NOTICE, WARNING, INFO, ...) the server
    /// sends, whichever call it comes with; by default they are discarded. It runs
    /// on the driver's task, under the client's lock: keep it short, and do not
    /// call the client from it.
    pub fn set_notice_handler(&self, handler: impl FnMut(&DbError) + Send + 'static) {
        self.shared.lock().notice_handler = Some(Box::new(handler));
    }

    /// Takes the notifications received so far (after `LISTEN channel`).
    pub fn take_notifications(&self) -> Vec<Notification> {
        self.shared.lock().notifications.drain(..).collect()
    }

    /// The notifications as a [`Stream`](futures_core::Stream): each
    /// [`notification`](Client::notification) in turn. The client goes on
    /// serving queries meanwhile.
    ///
    /// ```no_run
    /// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// client.batch_execute("listen jobs").await?;
    /// let mut jobs = client.notifications();
    /// while let Some(n) = jobs.try_next().await? {
    ///     println!("{}: {}", n.channel(), n.payload());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn notifications(&self) -> ClientNotifications<'_> {
        ClientNotifications::new(self)
    }

    /// Waits for the next notification (after `LISTEN channel`). The driver reads
    /// them as they arrive, whatever the client is doing. Several tasks may wait:
    /// each notification goes to one of them. Cancel-safe.
    pub async fn notification(&self) -> Result<Notification, Error> {
        loop {
            let notified = self.shared.notified.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.shared.lock();
                if let Some(n) = state.notifications.pop_front() {
                    return Ok(n);
                }
                state.check_open()?;
            }
            notified.await;
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("backend_pid", &self.shared.backend_pid)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Client {
    /// Sends Terminate through the driver, which then ends; the server rolls back
    /// any open transaction.
    fn drop(&mut self) {
        let pending = {
            let mut guard = self.shared.lock();
            let state = &mut *guard;
            if state.check_open().is_err() {
                return;
            }
            state.core.terminate(&mut state.write_buf);
            state.closed_reason = Some("the client was dropped".to_owned());
            state.wake_driver();
            // Only abandoned requests can be left: nobody waits for them.
            state.core.take_pending()
        };
        drop(pending);
    }
}
