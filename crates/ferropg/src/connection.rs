//! [`Connection`]: one session, driven inline by its owner.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferropg_core::conn::{
    Connection as CoreConnection, Phase, Request as CoreRequest, StartupParams,
};
use ferropg_core::message::frontend::{self, BindFailure};
use ferropg_core::message::TransactionStatus;
use ferropg_core::statement_cache::{self, Lookup, StatementCache};
use ferropg_core::{names, pooler, sqlstate, DbError};
use postgres_types::{BorrowToSql, IsNull, ToSql, Type};

use crate::cancel::{timed, CancelGate, CancelToken, Deadline};
use crate::client::{Client, ClientDriver, Session, Waiting};
use crate::config::ClientSettings;
use crate::copy::{CopyIn, CopyOut};
use crate::exchange::{Response, NO_OP};
use crate::introspect::{is_placeholder, TypeCache};
use crate::notification::{Notification, Notifications};
use crate::row::Row;
use crate::simple::SimpleQueryMessage;
use crate::socket::{Endpoint, Socket};
use crate::statement::{
    type_from_oid, CloseQueue, Column, PendingName, Source, Statement, ToStatement,
};
use crate::stream::RowStream;
use crate::tls::Tls;
use crate::transaction::{Transaction, TransactionBuilder};
use crate::Error;

/// Hands out a distinct id to every connection, so statements know their own.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A notice handler: called with each NOTICE, WARNING, INFO, ... the server sends.
pub(crate) type NoticeHandler = Box<dyn FnMut(&DbError) + Send>;

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
/// **SQL text is prepared through a statement cache** (asyncpg's rules, see
/// [`Config::statement_cache_size`](crate::Config::statement_cache_size)): the
/// first run of a query prepares it as a named statement, later runs only bind and
/// execute it, in one round trip. With the cache off, SQL text is the unnamed
/// statement, parsed anew each time.
///
/// **Dropping a future** (say, under `tokio::time::timeout`) is safe: the next call
/// first reads the rest of the abandoned response, up to its ReadyForQuery, so the
/// connection stays in step. A query that keeps running on the server is best
/// stopped with a [`CancelToken`], or with [`set_timeout`](Connection::set_timeout),
/// which does both: it cancels a call that takes too long and leaves the
/// connection usable.
///
/// After a server error the connection stays usable (within a transaction, the
/// transaction is aborted until it is rolled back, as always in PostgreSQL). After
/// an I/O error, a protocol violation or a FATAL error it is closed, and every call
/// returns an error of kind [`Closed`](crate::ErrorKind::Closed).
pub struct Connection {
    /// The link to the server; `None` once a [`Client`](crate::Client) took it over.
    pub(crate) socket: Option<Socket>,
    pub(crate) endpoint: Endpoint,
    /// The protocol; each operation is known by its id.
    pub(crate) core: CoreConnection<u64>,
    pub(crate) read_buf: BytesMut,
    /// Bytes read but not yet handed to the core (a stream paused at a row).
    pub(crate) unread: Bytes,
    pub(crate) write_buf: BytesMut,
    pub(crate) id: u64,
    pub(crate) next_op: u64,
    pub(crate) closed_reason: Option<String>,
    pub(crate) close_queue: CloseQueue,
    pub(crate) cleanup_sql: Vec<String>,
    pub(crate) notice_handler: Option<NoticeHandler>,
    pub(crate) notifications: VecDeque<Notification>,
    /// Portals dropped while open, to close with the next request.
    pub(crate) cleanup_portals: Vec<String>,
    next_portal: u64,
    /// Statements prepared from SQL text, by text.
    cache: StatementCache<String, Statement>,
    /// The longest SQL text the cache takes, in characters (0: no limit).
    max_cacheable: usize,
    /// The origin of the cache's clock.
    clock: Instant,
    /// The per-call time limit.
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    /// The TLS settings and server name the connection used, for its cancel requests.
    pub(crate) tls: Option<(Tls, String)>,
    /// Non-built-in types learned from the catalog.
    pub(crate) types: TypeCache,
    /// Cancel requests sent for this connection and not yet answered.
    pub(crate) cancel_gate: Arc<CancelGate>,
    /// A transaction-mode pooler sits in between (see
    /// [`enter_pooler_mode`](Connection::enter_pooler_mode)).
    pub(crate) pooler_mode: bool,
    /// The startup probe for a pooler in between, and what it found.
    pub(crate) probe: Probe,
}

/// The startup probe of a connection (`ferropg_core::pooler`): the operation
/// that carries it until its answer is in, and whether the answer suspected a
/// pooler.
#[derive(Debug, Default)]
pub(crate) struct Probe {
    /// The probe's operation while it is unanswered; `NO_OP` after.
    pub(crate) op: u64,
    /// The server process was not the one the startup's backend key named.
    pub(crate) suspected: bool,
}

/// What a request runs: a statement to bind, or SQL text parsed in the same request.
enum Target<'s> {
    /// A prepared statement: the caller's, a cached one, or the unnamed statement
    /// just described.
    Bound { statement: Statement, cached: bool },
    /// SQL text without parameters, parsed in the request itself: under a new name
    /// (with a Describe, to be cached afterwards) or as the unnamed statement.
    Parse {
        sql: &'s str,
        name: Option<PendingName>,
    },
}

/// A request sent (or buffered), and what its response is collected into.
pub(crate) struct Request {
    pub(crate) op: u64,
    pub(crate) resp: Response,
    /// A statement this request parses under a new name, and the text to cache it by.
    adopt: Option<(String, PendingName)>,
    /// The statement came from the cache (a stale one clears the cache).
    cached: bool,
    /// The request bound a statement by its name (see `pooler_found`).
    by_name: bool,
    /// The statement bound, kept alive with the request (and with a portal on it).
    pub(crate) statement: Option<Statement>,
}

/// What to do with the portal a request binds.
#[derive(Clone, Copy)]
pub(crate) struct Exec<'p> {
    /// The portal ("" for the unnamed one).
    pub(crate) portal: &'p str,
    /// Execute it with this row limit (0: all rows), or only bind it.
    pub(crate) max_rows: Option<i32>,
    /// Rows are handed out as they arrive, before their types could be looked up:
    /// SQL text is described (and its types learned) before it runs, even without
    /// parameters.
    pub(crate) learn_first: bool,
}

impl Connection {
    /// A connection over `socket`, before startup.
    pub(crate) fn new(
        socket: Socket,
        endpoint: Endpoint,
        params: StartupParams,
        settings: ClientSettings,
        connect_timeout: Option<Duration>,
    ) -> Connection {
        let mut core = CoreConnection::new(params);
        if let Some(certificate) = socket.server_certificate() {
            core.set_server_certificate(certificate);
        }
        Connection {
            socket: Some(socket),
            endpoint,
            core,
            read_buf: BytesMut::with_capacity(16 * 1024),
            unread: Bytes::new(),
            write_buf: BytesMut::with_capacity(4 * 1024),
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            next_op: NO_OP,
            closed_reason: None,
            close_queue: Arc::new(Mutex::new(Vec::new())),
            cleanup_sql: Vec::new(),
            notice_handler: None,
            notifications: VecDeque::new(),
            cleanup_portals: Vec::new(),
            next_portal: 0,
            cache: StatementCache::new(
                settings.statement_cache_size,
                settings.max_cached_statement_lifetime.as_secs_f64(),
            ),
            max_cacheable: settings.max_cacheable_statement_size,
            clock: Instant::now(),
            timeout: settings.command_timeout,
            connect_timeout,
            tls: None,
            types: TypeCache::default(),
            cancel_gate: Arc::default(),
            pooler_mode: false,
            probe: Probe::default(),
        }
    }

    /// Runs startup and authentication, up to the first ReadyForQuery.
    pub(crate) async fn startup(&mut self) -> Result<(), Error> {
        self.core
            .start(&mut self.write_buf)
            .map_err(Error::from_core)?;
        let mut resp = Response::default();
        loop {
            self.flush().await?;
            self.read_events(NO_OP, &mut resp).await?;
            if resp.started {
                self.probe_for_pooler();
                return Ok(());
            }
        }
    }

    /// Holds a query back to ride ahead of the first request: whether the server
    /// runs in the process the startup's backend key names. A pooler in between
    /// (pgbouncer) answers startup with a key of its own.
    fn probe_for_pooler(&mut self) {
        let sql = pooler::probe_query(self.core.process_id());
        let op = self.next_op_id();
        if self.core.defer_query(&sql, op).is_ok() {
            self.probe.op = op;
        }
    }

    /// Whether statements are bound as the unnamed one, parsed again in the
    /// request that runs them (the core's `pooler::binds_unnamed`).
    pub(crate) fn binds_unnamed(&self) -> bool {
        pooler::binds_unnamed(
            self.pooler_mode,
            self.probe.suspected,
            self.core.transaction_status(),
        )
    }

    /// Runs a statement and returns all its rows.
    ///
    /// `statement` is SQL text (one statement, with `$1`, `$2`, ... placeholders) or
    /// a [`Statement`] from [`prepare`](Connection::prepare). SQL text goes through
    /// the statement cache: a cached query takes one round trip (Bind, Execute,
    /// Sync); the first run takes one without parameters and two with (their types
    /// come from the server). With the cache off, SQL text is the unnamed statement,
    /// parsed each time, in one or two round trips likewise.
    ///
    /// A cached statement the server no longer accepts (its result type changed
    /// with the schema, or it was deallocated) clears the cache; outside a
    /// transaction the query is then prepared and run again once, as asyncpg does.
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
        let deadline = self.deadline();
        let source = statement.__source();
        timed(deadline, async {
            let resp = self.run(source, params, true).await?;
            let mut rows = resp.rows.unwrap_or_default();
            self.retype_rows(&mut rows).await?;
            Ok(rows)
        })
        .await
    }

    /// Runs a statement and returns its rows one at a time, as they arrive, instead
    /// of collecting them: memory stays bounded by one socket read, whatever the
    /// size of the result.
    ///
    /// The stream borrows the connection until dropped. Dropping it early is safe:
    /// the next call reads (and discards) the rest of the result first; to stop a
    /// long query sooner, cancel it (see [`cancel_token`](Connection::cancel_token))
    /// or fetch it in steps with a [`Portal`](crate::Portal).
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let mut rows = conn.query_stream("select g from generate_series(1, 1000000) g", &[]).await?;
    /// let mut sum = 0i64;
    /// while let Some(row) = rows.next().await {
    ///     sum += i64::from(row?.get::<_, i32>(0));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query_stream<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'_>, Error>
    where
        T: ?Sized + ToStatement,
    {
        let deadline = self.deadline();
        timed(
            deadline,
            RowStream::start(self, statement.__source(), params),
        )
        .await
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
        let deadline = self.deadline();
        let resp = timed(deadline, self.run(statement.__source(), params, false)).await?;
        Ok(resp.rows_affected)
    }

    /// Runs one or more `;`-separated statements with the simple query protocol,
    /// without parameters, discarding any rows. Without an explicit transaction,
    /// the statements run in one implicit transaction: an error rolls back all of
    /// them.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        let deadline = self.deadline();
        timed(deadline, self.simple(sql)).await
    }

    /// [`query_stream`](Connection::query_stream) with the parameters given by
    /// an iterator (of values, references, `&dyn ToSql`, boxed values: anything
    /// [`BorrowToSql`]), as tokio-postgres's `query_raw`.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// let ids = vec![1i32, 2, 3];
    /// let rows: Vec<_> = conn
    ///     .query_raw("select $1::int4 + $2::int4 + $3::int4", &ids)
    ///     .await?
    ///     .try_collect()
    ///     .await?;
    /// assert_eq!(rows[0].get::<_, i32>(0), 6);
    /// # Ok(()) }
    /// ```
    pub async fn query_raw<T, P, I>(
        &mut self,
        statement: &T,
        params: I,
    ) -> Result<RowStream<'_>, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        let params: Vec<P> = params.into_iter().collect();
        let deadline = self.deadline();
        timed(
            deadline,
            RowStream::start(self, statement.__source(), &params),
        )
        .await
    }

    /// [`execute`](Connection::execute) with the parameters given by an
    /// iterator, as tokio-postgres's `execute_raw`.
    pub async fn execute_raw<T, P, I>(&mut self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        let params: Vec<P> = params.into_iter().collect();
        let deadline = self.deadline();
        let resp = timed(deadline, self.run(statement.__source(), &params, false)).await?;
        Ok(resp.rows_affected)
    }

    /// Runs a statement with the parameter types given beside the values, in
    /// one round trip and without preparing it first (Parse, Bind, Describe,
    /// Execute, Sync), as tokio-postgres's `query_typed`. Nothing is cached: this
    /// suits a statement run once, or a connection pooler that cannot keep
    /// prepared statements.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// use ferropg::Type;
    ///
    /// let rows = conn
    ///     .query_typed("select $1 || '!'", &[(&"hi", Type::TEXT)])
    ///     .await?;
    /// assert_eq!(rows[0].get::<_, &str>(0), "hi!");
    /// # Ok(()) }
    /// ```
    pub async fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        let deadline = self.deadline();
        timed(deadline, async {
            frontend::check_parameter_count(params.len()).map_err(|e| Error::encode(e.0))?;
            let op = self.begin_op().await?;
            let mut wire = self.core.request(&mut self.write_buf);
            encode_typed(&mut wire, sql, params)?;
            wire.send(op);
            let mut resp = Response {
                describe: true,
                rows: Some(Vec::new()),
                ..Response::default()
            };
            self.finish(op, &mut resp).await?;
            let mut rows = resp.rows.unwrap_or_default();
            self.retype_rows(&mut rows).await?;
            Ok(rows)
        })
        .await
    }

    /// Runs one or more `;`-separated statements with the simple query protocol
    /// and returns what they sent, in order: each result's columns, its rows with
    /// every value as text, and each statement's row count. Without an explicit
    /// transaction the statements run in one implicit transaction. Do not put
    /// values from outside into `sql`: there are no parameters here (see
    /// [`quote`](crate::quote) if you must).
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// use ferropg::SimpleQueryMessage;
    ///
    /// for message in conn.simple_query("select 1 as n, null; select 'two'").await? {
    ///     match message {
    ///         SimpleQueryMessage::Row(row) => println!("{:?} {:?}", row.get(0), row.get(1)),
    ///         SimpleQueryMessage::CommandComplete(n) => println!("{n} rows"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        let deadline = self.deadline();
        timed(deadline, async {
            let op = self.begin_op().await?;
            self.send_simple(op, sql)?;
            let mut resp = Response {
                simple: Some(Vec::new()),
                ..Response::default()
            };
            self.finish(op, &mut resp).await?;
            Ok(resp.simple.unwrap_or_default())
        })
        .await
    }

    /// Prepares a named statement, taking its parameter types from the server.
    /// The statement is the caller's (not cached): it is closed once every clone of
    /// it is dropped.
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.prepare_typed(sql, &[]).await
    }

    /// Prepares a named statement, fixing the types of the first parameters
    /// (the server infers the others).
    pub async fn prepare_typed(&mut self, sql: &str, types: &[Type]) -> Result<Statement, Error> {
        let deadline = self.deadline();
        timed(deadline, self.prepare_named(sql, types)).await
    }

    /// The statement the cache holds for `sql`, prepared (and cached) first if it
    /// holds none: the statement that [`query`](Connection::query) and the other
    /// methods run for that text. When the cache evicts it, it is closed on the
    /// server only once the returned handle (and its clones) are dropped too.
    ///
    /// With the cache off, or for a text longer than
    /// [`max_cacheable_statement_size`](crate::Config::max_cacheable_statement_size),
    /// this is [`prepare`](Connection::prepare).
    pub async fn prepare_cached(&mut self, sql: &str) -> Result<Statement, Error> {
        let deadline = self.deadline();
        timed(deadline, async {
            if !self.cacheable(sql) {
                return self.prepare_named(sql, &[]).await;
            }
            if let Some(statement) = self.cache_lookup(sql) {
                return Ok(statement);
            }
            let statement = self.prepare_named(sql, &[]).await?;
            self.cache_put(sql, statement.clone());
            Ok(statement)
        })
        .await
    }

    /// Empties the statement cache. Its statements are closed on the server with
    /// the next request (those still held by a [`Statement`] handle once it is
    /// dropped).
    pub fn clear_statement_cache(&mut self) {
        drop(self.cache.clear());
    }

    /// How many statements the cache holds.
    pub fn statement_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Starts a transaction (`BEGIN`). See [`Transaction`] for what happens when it
    /// is dropped without [`commit`](Transaction::commit).
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        let deadline = self.deadline();
        timed(deadline, Transaction::begin(self)).await
    }

    /// Options for a transaction to start: isolation level, read-only,
    /// deferrable. See [`TransactionBuilder`].
    pub fn build_transaction(&mut self) -> TransactionBuilder<'_> {
        TransactionBuilder::new(self)
    }

    /// Starts `COPY ... FROM STDIN` (sent with the simple query protocol) and
    /// returns the sink to feed it; see [`CopyIn`]. Fails, with the server's
    /// error or one of kind [`Copy`](crate::ErrorKind::Copy), if `sql` does not
    /// start a COPY FROM STDIN.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let mut copy = conn.copy_in("copy item (id, name) from stdin (format csv)").await?;
    /// copy.send("1,apple\n2,pear\n").await?;
    /// let rows = copy.finish().await?;
    /// assert_eq!(rows, 2);
    /// # Ok(()) }
    /// ```
    pub async fn copy_in(&mut self, sql: &str) -> Result<CopyIn<'_>, Error> {
        let deadline = self.deadline();
        timed(deadline, CopyIn::start(self, sql)).await
    }

    /// Starts `COPY ... TO STDOUT` (sent with the simple query protocol) and
    /// returns the stream of its data; see [`CopyOut`]. Fails, with the server's
    /// error or one of kind [`Copy`](crate::ErrorKind::Copy), if `sql` does not
    /// start a COPY TO STDOUT.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let mut copy = conn.copy_out("copy item to stdout (format csv)").await?;
    /// let mut csv = Vec::new();
    /// while let Some(chunk) = copy.next().await {
    ///     csv.extend_from_slice(&chunk?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn copy_out(&mut self, sql: &str) -> Result<CopyOut<'_>, Error> {
        let deadline = self.deadline();
        timed(deadline, CopyOut::start(self, sql)).await
    }

    /// Sets the time limit of every later call that waits for the server (`None`,
    /// or a zero duration: no limit, the default unless
    /// [`Config::command_timeout`](crate::Config::command_timeout) set one).
    ///
    /// A call that takes longer fails with an error of kind
    /// [`Timeout`](crate::ErrorKind::Timeout), after a CancelRequest for the
    /// running query went out on a side connection (as with [`CancelToken`]). The
    /// connection stays usable: the next call first waits for the cancelled query's
    /// end (its ReadyForQuery). Inside a transaction, the cancelled statement
    /// aborts the transaction, as any error does.
    ///
    /// The limit applies to each call on its own: the query methods, `prepare*`,
    /// `batch_execute`, starting and ending transactions, `copy_in`/`copy_out`, and
    /// each step of a stream ([`RowStream::next`], [`Portal::fetch`](crate::Portal::fetch),
    /// [`CopyIn::send`], [`CopyIn::finish`], [`CopyOut::next`]). Waiting for a
    /// [`notification`](Connection::notification) is not limited.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// use std::time::Duration;
    ///
    /// conn.set_timeout(Some(Duration::from_millis(100)));
    /// let err = conn.execute("select pg_sleep(5)", &[]).await.unwrap_err();
    /// assert_eq!(err.kind(), ferropg::ErrorKind::Timeout);
    /// conn.set_timeout(None);
    /// conn.execute("select 1", &[]).await?; // waits for the cancelled query first
    /// # Ok(()) }
    /// ```
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout.filter(|t| !t.is_zero());
    }

    /// The time limit of each call, as set by [`set_timeout`](Connection::set_timeout).
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
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
        if let Some(socket) = &mut self.socket {
            let _ = socket.shutdown().await;
        }
        result
    }

    /// Hands the session over to a shared, pipelining [`Client`] and the
    /// [`ClientDriver`] that does its I/O (spawn the driver). What the connection
    /// learned carries over: its statement cache (and the [`Statement`]s prepared
    /// on it stay valid on the client), the types it learned, its notice handler
    /// and the notifications not taken yet. Responses of calls whose futures were
    /// dropped are read first; the statements and transactions they left to clean
    /// up are closed and rolled back by the client's driver.
    ///
    /// ```no_run
    /// # async fn f(conn: ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let (client, driver) = conn.into_client().await?;
    /// tokio::spawn(driver);
    /// client.execute("select 1", &[]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn into_client(mut self) -> Result<(Client, ClientDriver), Error> {
        // A request must not be pipelined behind an abandoned COPY FROM STDIN, nor
        // go out before a cancel request still on its way has been answered.
        self.settle().await?;
        self.check_open()?;
        self.write_cleanup()?;
        let Some(socket) = self.socket.take() else {
            return Err(Error::closed("the connection's socket is gone"));
        };
        let cancel = self.cancel_token();
        // The shell left behind is closed: its Drop sends nothing.
        let mut shell = CoreConnection::new(StartupParams::default());
        shell.mark_closed();
        // The startup probe, if unanswered, is answered to the client.
        let probe = std::mem::take(&mut self.probe);
        let mut probe_reply = None;
        let core = std::mem::replace(&mut self.core, shell).map_ops(|op| {
            if op == probe.op && op != NO_OP {
                let (waiting, reply) = Waiting::replying();
                probe_reply = Some(reply);
                waiting
            } else {
                Waiting::unheard()
            }
        });
        let empty_cache = StatementCache::new(0, 0.0);
        let session = Session {
            core,
            write_buf: std::mem::take(&mut self.write_buf),
            cache: std::mem::replace(&mut self.cache, empty_cache),
            types: std::mem::take(&mut self.types),
            notifications: std::mem::take(&mut self.notifications),
            notice_handler: self.notice_handler.take(),
            id: self.id,
            close_queue: Arc::clone(&self.close_queue),
            max_cacheable: self.max_cacheable,
            clock: self.clock,
            cancel,
            probe: probe_reply,
            pooler_suspected: probe.suspected,
        };
        let read_buf = std::mem::take(&mut self.read_buf);
        let unread = std::mem::take(&mut self.unread);
        let pooler_mode = self.pooler_mode;
        let (client, driver) = Client::from_session(session, socket, read_buf, unread);
        if pooler_mode {
            client.enter_pooler_mode();
        }
        Ok((client, driver))
    }

    /// True once the connection is closed (by [`close`](Connection::close), by the
    /// server, or after an error that ended the session).
    pub fn is_closed(&self) -> bool {
        self.core.phase() == Phase::Closed
    }

    /// Forgets the types learned from the catalog and the cached statements. Call it
    /// after changing a type this connection has used (`ALTER TYPE ...`): both are
    /// learned again on next use.
    pub fn reload_schema_state(&mut self) {
        self.types.clear();
        // Statements dropped here are closed on the server with the next request.
        drop(self.cache.clear());
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
            tls: self.tls.clone(),
            process_id: self.core.process_id(),
            secret_key: self.core.secret_key().to_vec(),
            connect_timeout: self.connect_timeout,
            gate: Arc::clone(&self.cancel_gate),
        }
    }

    /// Calls `handler` with every notice (NOTICE, WARNING, INFO, ...) the server
    /// sends; by default they are discarded.
    pub fn set_notice_handler(&mut self, handler: impl FnMut(&DbError) + Send + 'static) {
        self.notice_handler = Some(Box::new(handler));
    }

    /// Takes the notifications received so far (after `LISTEN channel`): those that
    /// arrived with the responses of earlier calls. It does not read the socket;
    /// [`notification`](Connection::notification) does.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        self.notifications.drain(..).collect()
    }

    /// Waits for the next notification (after `LISTEN channel`). Notifications
    /// sent while the connection is idle wait in the socket; this reads them, in
    /// order. One that came in earlier with a query's response (and was not taken
    /// with [`take_notifications`](Connection::take_notifications)) is returned at
    /// once.
    ///
    /// Cancel-safe: under `tokio::select!` or a timeout, a notification is never
    /// lost. Loops over it make a notification stream:
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// conn.batch_execute("listen jobs").await?;
    /// loop {
    ///     let n = conn.notification().await?;
    ///     println!("{}: {}", n.channel(), n.payload());
    /// }
    /// # }
    /// ```
    pub async fn notification(&mut self) -> Result<Notification, Error> {
        std::future::poll_fn(|cx| self.poll_notification(cx)).await
    }

    /// The notifications as a [`Stream`](futures_core::Stream): each
    /// [`notification`](Connection::notification) in turn, for as long as the
    /// stream is polled. An error (the connection closed) comes once, and the
    /// stream ends. It borrows the connection; drop it to run queries.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// conn.batch_execute("listen jobs").await?;
    /// let mut jobs = conn.notifications();
    /// while let Some(n) = jobs.try_next().await? {
    ///     println!("{}: {}", n.channel(), n.payload());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn notifications(&mut self) -> Notifications<'_> {
        Notifications::new(self)
    }

    /// [`notification`](Connection::notification), polled by hand.
    pub(crate) fn poll_notification(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Notification, Error>> {
        loop {
            if let Some(n) = self.notifications.pop_front() {
                return Poll::Ready(Ok(n));
            }
            self.check_open()?;
            // A pending ROLLBACK would otherwise hold notifications back; it must
            // not be pipelined behind an abandoned operation (see `settle`).
            if self.core.pending_len() == 0 {
                self.write_cleanup()?;
            }
            ready!(self.poll_flush(cx))?;
            // Everything that came in the same read is taken in, so that a burst of
            // notifications lands in the queue together.
            ready!(self.poll_events(cx, NO_OP, &mut Response::default()))?;
        }
    }

    /// The limit of the next call, and how to cancel it.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        self.timeout.map(|limit| Deadline {
            limit,
            token: self.cancel_token(),
        })
    }

    /// Runs `sql` with the simple query protocol, discarding rows.
    async fn simple(&mut self, sql: &str) -> Result<(), Error> {
        let op = self.begin_op().await?;
        self.send_simple(op, sql)?;
        self.finish(op, &mut Response::default()).await
    }

    /// The cache's clock, in seconds (0 when statements never expire).
    fn now(&self) -> f64 {
        if self.cache.max_lifetime() > 0.0 {
            self.clock.elapsed().as_secs_f64()
        } else {
            0.0
        }
    }

    /// Whether the statement cache takes `sql`.
    pub(crate) fn cacheable(&self, sql: &str) -> bool {
        statement_cache::takes(sql, self.cache.max_size() > 0, self.max_cacheable)
    }

    /// The live cached statement for `sql`; an expired one is dropped (and closed
    /// unless a handle still holds it).
    pub(crate) fn cache_lookup(&mut self, sql: &str) -> Option<Statement> {
        let now = self.now();
        match self.cache.get_borrowed(sql, now) {
            Lookup::Hit(statement) => Some(statement.clone()),
            Lookup::Miss => None,
            Lookup::Expired(old) => {
                drop(old);
                None
            }
        }
    }

    /// Caches `statement` for `sql`; what that evicts is closed lazily.
    pub(crate) fn cache_put(&mut self, sql: &str, statement: Statement) {
        let now = self.now();
        drop(self.cache.put(sql.to_owned(), statement, now));
    }

    /// A fresh statement name, closed if its preparation is abandoned.
    fn new_statement_name(&mut self) -> PendingName {
        PendingName::new(names::next_unique_name("stmt"), &self.close_queue)
    }

    /// A fresh portal name.
    pub(crate) fn new_portal_name(&mut self) -> String {
        self.next_portal += 1;
        format!("ferropg_p{}", self.next_portal)
    }

    /// Prepares `sql` as a new named statement.
    pub(crate) async fn prepare_named(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        if self.pooler_mode {
            // Only described: parsed again, unnamed, in each request that runs it.
            let (params, columns) = self.describe("", sql, types).await?;
            return Ok(Statement::unnamed(sql, self.id, params, columns));
        }
        let name = self.new_statement_name();
        match self.describe(name.name(), sql, types).await {
            Ok((params, columns)) => Ok(Statement::new(
                name.into_name(),
                sql,
                self.id,
                params,
                columns,
                &self.close_queue,
            )),
            Err(e) => {
                // The whole response was read: the Parse failed, nothing to close.
                name.into_name();
                Err(e)
            }
        }
    }

    /// Parses `sql` as statement `name` and describes it, learning the types it uses.
    async fn describe(
        &mut self,
        name: &str,
        sql: &str,
        types: &[Type],
    ) -> Result<(Vec<Type>, Arc<[Column]>), Error> {
        let (params, columns) = self.parse_and_describe(name, sql, types).await?;
        let column_oids = columns.iter().map(|c| c.type_().oid());
        let queried = self
            .learn_types(params.iter().copied().chain(column_oids).collect())
            .await?;
        if queried && name.is_empty() {
            // The catalog query took the unnamed statement (with the cache off it is
            // one too): parse ours again, now with nothing left to learn.
            self.parse_and_describe(name, sql, types).await?;
        }
        let params = params.into_iter().map(|oid| self.types.get(oid)).collect();
        let columns = self.retype(&columns).unwrap_or(columns);
        Ok((params, columns))
    }

    /// One round trip: Parse, Describe, Sync. Returns the parameter OIDs and the
    /// columns as the server described them.
    async fn parse_and_describe(
        &mut self,
        name: &str,
        sql: &str,
        types: &[Type],
    ) -> Result<(Vec<u32>, Arc<[Column]>), Error> {
        let op = self.begin_op().await?;
        let mut req = self.core.request(&mut self.write_buf);
        req.parse(name, sql, types.iter().map(Type::oid))?;
        req.describe_statement(name)?;
        req.send(op);
        let mut resp = Response {
            describe: true,
            ..Response::default()
        };
        self.finish(op, &mut resp).await?;
        // A statement past the limit could never be bound: it fails here, the
        // connection (already at its ReadyForQuery) goes on.
        if let Some(why) = resp.unbindable {
            return Err(Error::encode(why));
        }
        let params = resp.params.unwrap_or_default();
        let columns = resp.columns.unwrap_or_else(|| Arc::from([]));
        Ok((params, columns))
    }

    /// Asks the catalog about the types of `oids` nothing is known of yet. True when
    /// that took a query.
    pub(crate) async fn learn_types(&mut self, oids: Vec<u32>) -> Result<bool, Error> {
        let unknown = self.types.unknown(oids);
        if unknown.is_empty() {
            return Ok(false);
        }
        let version = self
            .server_version()
            .and_then(|v| {
                v.split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(0);
        let sql = ferropg_core::introspect::types_query(version * 10000);
        // Boxed: this runs a query, which may describe a statement, which comes here
        // (with only built-in types, so no further).
        let rows = Box::pin(self.query(sql.as_str(), &[&unknown])).await?;
        self.types.learn(&rows)?;
        Ok(true)
    }

    /// `columns` with the types learned since they were read, if any changed.
    pub(crate) fn retype(&self, columns: &Arc<[Column]>) -> Option<Arc<[Column]>> {
        self.types.retype(columns)
    }

    /// `columns` with every type the catalog knows, asking it about those nothing is
    /// known of yet.
    pub(crate) async fn learned_columns(
        &mut self,
        columns: &Arc<[Column]>,
    ) -> Result<Arc<[Column]>, Error> {
        if columns.iter().any(|c| is_placeholder(c.type_())) {
            self.learn_types(columns.iter().map(|c| c.type_().oid()).collect())
                .await?;
        }
        Ok(self.retype(columns).unwrap_or_else(|| columns.clone()))
    }

    /// Learns the column types of rows read without a described statement (SQL text
    /// parsed in the same request) and gives the rows the full types.
    async fn retype_rows(&mut self, rows: &mut [Row]) -> Result<(), Error> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let columns = first.columns_arc().clone();
        // Most results have only built-in (or already learned) types: nothing to do.
        if !columns.iter().any(|c| is_placeholder(c.type_())) {
            return Ok(());
        }
        let new = self.learned_columns(&columns).await?;
        for row in rows {
            row.set_columns(new.clone());
        }
        Ok(())
    }

    /// Runs one statement with the extended protocol; `collect` keeps the rows.
    async fn run<P: BorrowToSql>(
        &mut self,
        source: Source<'_>,
        params: &[P],
        collect: bool,
    ) -> Result<Response, Error> {
        let exec = Exec {
            portal: "",
            max_rows: Some(0),
            learn_first: false,
        };
        let mut retried = false;
        loop {
            let mut req = self.start(source, params, exec).await?;
            if collect {
                req.resp.rows = Some(Vec::new());
            }
            let result = self.finish(req.op, &mut req.resp).await;
            if self.complete(&mut req, &result) && !retried {
                retried = true;
                continue;
            }
            return result.map(|()| req.resp);
        }
    }

    /// What `source` runs as: a cache hit, a statement prepared now (SQL text with
    /// parameters needs their types first), or SQL text to parse in the request.
    async fn target<'s>(
        &mut self,
        source: Source<'s>,
        nparams: usize,
        learn_first: bool,
    ) -> Result<Target<'s>, Error> {
        match source {
            Source::Prepared(statement) => {
                if statement.connection_id() != self.id {
                    return Err(Error::wrong_connection());
                }
                check_count(statement.params().len(), nparams)?;
                Ok(Target::Bound {
                    statement: statement.clone(),
                    cached: false,
                })
            }
            Source::Sql(sql) if self.cacheable(sql) => {
                if let Some(statement) = self.cache_lookup(sql) {
                    check_count(statement.params().len(), nparams)?;
                    return Ok(Target::Bound {
                        statement,
                        cached: true,
                    });
                }
                if nparams == 0 && !learn_first {
                    // Behind a pooler a named statement could not be bound later.
                    let name = (!self.pooler_mode).then(|| self.new_statement_name());
                    return Ok(Target::Parse { sql, name });
                }
                let statement = self.prepare_named(sql, &[]).await?;
                self.cache_put(sql, statement.clone());
                check_count(statement.params().len(), nparams)?;
                Ok(Target::Bound {
                    statement,
                    cached: true,
                })
            }
            Source::Sql(sql) if nparams == 0 && !learn_first => {
                Ok(Target::Parse { sql, name: None })
            }
            Source::Sql(sql) => {
                let (types, columns) = self.describe("", sql, &[]).await?;
                check_count(types.len(), nparams)?;
                Ok(Target::Bound {
                    statement: Statement::unnamed(sql, self.id, types, columns),
                    cached: false,
                })
            }
        }
    }

    /// Encodes and queues the request that binds `source` to `exec.portal` and
    /// (unless `exec.max_rows` is `None`) executes it. Nothing is flushed.
    pub(crate) async fn start<P: BorrowToSql>(
        &mut self,
        source: Source<'_>,
        params: &[P],
        exec: Exec<'_>,
    ) -> Result<Request, Error> {
        // Refused before a statement is prepared for it: nothing is sent.
        frontend::check_parameter_count(params.len()).map_err(|e| Error::encode(e.0))?;
        let target = self.target(source, params.len(), exec.learn_first).await?;
        // A statement cached from a run that parsed it may still hold stand-in types.
        let learned = match (&target, exec.learn_first) {
            (Target::Bound { statement, .. }, true) => {
                Some(self.learned_columns(statement.columns_arc()).await?)
            }
            _ => None,
        };
        let op = self.begin_op().await?;
        let portal = exec.portal;
        let mut req = Request {
            op,
            resp: Response::default(),
            adopt: None,
            cached: false,
            by_name: false,
            statement: None,
        };
        let unnamed = self.binds_unnamed();
        let mut wire = self.core.request(&mut self.write_buf);
        match target {
            Target::Bound { statement, cached } => {
                let by_name = bind_statement(&mut wire, portal, &statement, params, unnamed)?;
                if !by_name {
                    // Parsed again: the portal's description gives the columns as
                    // they are now, should the result type have changed.
                    wire.describe_portal(portal)?;
                    req.resp.describe = true;
                }
                if let Some(max) = exec.max_rows {
                    wire.execute(portal, max)?;
                }
                wire.rows_of(statement.columns_arc().len());
                wire.send(op);
                req.resp.columns = Some(learned.unwrap_or_else(|| statement.columns_arc().clone()));
                req.cached = cached;
                req.by_name = by_name;
                req.statement = Some(statement);
            }
            Target::Parse { sql, name } => {
                // A new name is described as a statement (for the cache); the
                // unnamed statement's portal always, even when its rows are discarded:
                // the core checks every row against its description.
                let stmt = name.as_ref().map_or("", PendingName::name);
                let encoded = (|| {
                    wire.parse(stmt, sql, [])?;
                    if stmt.is_empty() {
                        bind(&mut wire, portal, stmt, &[], NO_PARAMS)?;
                        wire.describe_portal(portal)?;
                    } else {
                        wire.describe_statement(stmt)?;
                        bind(&mut wire, portal, stmt, &[], NO_PARAMS)?;
                    }
                    if let Some(max) = exec.max_rows {
                        wire.execute(portal, max)?;
                    }
                    Ok::<(), Error>(())
                })();
                if let Err(e) = encoded {
                    // Nothing was sent: nothing to close.
                    if let Some(name) = name {
                        name.into_name();
                    }
                    return Err(e);
                }
                wire.send(op);
                req.resp.describe = true;
                req.adopt = name.map(|name| (sql.to_owned(), name));
            }
        }
        Ok(req)
    }

    /// Finishes a request whose response was read to its ReadyForQuery: caches a
    /// statement it parsed under a new name, and clears the cache when a cached
    /// statement turned out stale. True when the request should run again (stale,
    /// and not inside a transaction).
    pub(crate) fn complete(&mut self, req: &mut Request, result: &Result<(), Error>) -> bool {
        if let Some((sql, name)) = req.adopt.take() {
            match (req.resp.params.take(), &req.resp.columns) {
                (Some(params), Some(columns)) => {
                    let params = params.into_iter().map(type_from_oid).collect();
                    let statement = Statement::new(
                        name.into_name(),
                        &sql,
                        self.id,
                        params,
                        columns.clone(),
                        &self.close_queue,
                    );
                    req.statement = Some(statement.clone());
                    let now = self.now();
                    drop(self.cache.put(sql, statement, now));
                }
                // The Parse failed: there is nothing to close.
                _ => drop(name.into_name()),
            }
        }
        let Err(e) = result else {
            return false;
        };
        let pooler = req.by_name && self.pooler_found(e);
        if !(pooler || (req.cached && is_stale(e))) {
            return false;
        }
        if req.cached {
            self.clear_statement_cache();
        }
        // Its Bind was refused, so nothing of it ran.
        self.transaction_status() == TransactionStatus::Idle
    }

    /// Whether statements are bound as the unnamed one, parsed again in each
    /// request: behind a transaction-mode pooler (pgbouncer's `pool_mode =
    /// transaction`), where each request may reach another server session. The
    /// connection switches by itself the first time a statement it prepared is
    /// missing (see [`enter_pooler_mode`](Connection::enter_pooler_mode)).
    pub fn pooler_mode(&self) -> bool {
        self.pooler_mode
    }

    /// Whether a transaction-mode pooler may sit in between: the startup's backend
    /// key did not name the server process that answered (pgbouncer gives clients
    /// keys of its own). The probe rides ahead of the first request; once its
    /// answer is in, statements are bound unnamed inside transaction blocks, where
    /// a statement missing from the server session a request reaches would abort
    /// the transaction.
    pub fn pooler_suspected(&self) -> bool {
        self.probe.suspected && !self.pooler_mode
    }

    /// Binds every statement as the unnamed one from now on, parsed again (with
    /// the parameter types already known) in the request that runs it, and its
    /// portal described, so a changed result type is still seen: one round trip
    /// per call, as before, and nothing that a server session may lack. The
    /// connection does this by itself when a named statement of its own is
    /// missing (SQLSTATE 26000) or already there (42P05), unless a
    /// `DEALLOCATE`/`DISCARD ALL` of the user's explains it; the failed call is run
    /// again when nothing of it ran (outside a transaction block), and inside one
    /// its error is returned. A [`Client`](crate::Client) made from this
    /// connection keeps the mode.
    pub fn enter_pooler_mode(&mut self) {
        self.pooler_mode = true;
    }

    /// Switches to pooler mode when `err` says that a statement this connection
    /// named is not in the session its request reached (or another of that name
    /// is), and no statement was discarded by the user's own commands. True when
    /// the connection is in pooler mode now.
    fn pooler_found(&mut self, err: &Error) -> bool {
        let lost = statement_lost(err);
        if lost && pooler::loss_means_pooler(self.core.statements_discarded()) {
            self.pooler_mode = true;
        }
        self.pooler_mode && lost
    }
}

/// True for the errors of a cached statement the server no longer runs: its plan
/// would change its result type (asyncpg's test: SQLSTATE 0A000 raised by
/// `RevalidateCachedQuery`), or it no longer exists (`DEALLOCATE`, `DISCARD ALL`).
pub(crate) fn is_stale(err: &Error) -> bool {
    let Some(db) = err.as_db_error() else {
        return false;
    };
    db.is_stale_plan() || *db.code() == sqlstate::INVALID_SQL_STATEMENT_NAME
}

/// The error for a parameter count that does not match the statement's.
pub(crate) fn check_count(expected: usize, got: usize) -> Result<(), Error> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::parameter_count(expected, got))
    }
}

/// Encodes a statement whose parameter types come with the values: the unnamed
/// statement parsed with those types, bound, its portal described (for the
/// columns) and executed, in one request.
pub(crate) fn encode_typed<T>(
    req: &mut CoreRequest<'_, T>,
    sql: &str,
    params: &[(&(dyn ToSql + Sync), Type)],
) -> Result<(), Error> {
    req.parse("", sql, params.iter().map(|(_, ty)| ty.oid()))?;
    let formats = (!params.is_empty()).then_some(1i16);
    let write = |i: usize, buf: &mut BytesMut| -> Result<bool, Error> {
        let (value, ty) = &params[i];
        match value.to_sql_checked(ty, buf) {
            Ok(IsNull::Yes) => Ok(true),
            Ok(IsNull::No) => Ok(false),
            Err(e) => Err(Error::to_sql(i, e)),
        }
    };
    req.bind("", "", formats, params.len(), write, [1])
        .map_err(|e| match e {
            BindFailure::Param(e) => e,
            BindFailure::Encode(e) => Error::encode(e.0),
        })?;
    req.describe_portal("")?;
    req.execute("", 0)?;
    Ok(())
}

/// No parameters, for [`bind`].
pub(crate) const NO_PARAMS: &[&(dyn ToSql + Sync)] = &[];

/// Whether `err` says that a named statement is missing from the server session
/// (26000) or that one of that name is already there (42P05): the signs of a
/// transaction-mode pooler, unless the user's own `DEALLOCATE` explains them.
pub(crate) fn statement_lost(err: &Error) -> bool {
    err.code().is_some_and(pooler::statement_lost)
}

/// Writes the Bind of `statement` to `portal`: by its name (the unnamed statement
/// an earlier request prepared included), or behind a transaction-mode pooler
/// (`pooler`) as the unnamed statement parsed again in the same request with the
/// parameter types known, since the server session a request reaches may not have
/// the one prepared. Returns whether it relied on the server having the
/// statement already.
pub(crate) fn bind_statement<T, P: BorrowToSql>(
    wire: &mut CoreRequest<'_, T>,
    portal: &str,
    statement: &Statement,
    params: &[P],
    pooler: bool,
) -> Result<bool, Error> {
    if pooler {
        wire.parse(
            "",
            statement.sql(),
            statement.params().iter().map(Type::oid),
        )?;
        bind(wire, portal, "", statement.params(), params)?;
        return Ok(false);
    }
    bind(wire, portal, statement.name(), statement.params(), params)?;
    Ok(true)
}

/// Writes an `execute_many` group: a Bind and an Execute of `statement` for each
/// of `rows`, by its name, or behind a transaction-mode pooler (`pooler`) after one
/// Parse of it as the unnamed statement for the whole group (see [`bind_statement`]).
pub(crate) fn execute_rows<'r, T, P: BorrowToSql + 'r>(
    wire: &mut CoreRequest<'_, T>,
    statement: &Statement,
    rows: impl IntoIterator<Item = &'r [P]>,
    pooler: bool,
) -> Result<(), Error> {
    let name = if pooler {
        wire.parse(
            "",
            statement.sql(),
            statement.params().iter().map(Type::oid),
        )?;
        ""
    } else {
        statement.name()
    };
    for row in rows {
        bind(wire, "", name, statement.params(), row)?;
        wire.execute("", 0)?;
    }
    Ok(())
}

/// Encodes a Bind of `portal`: every parameter in binary, converted with its
/// statement type, and every result column asked for in binary.
pub(crate) fn bind<T, P: BorrowToSql>(
    req: &mut CoreRequest<'_, T>,
    portal: &str,
    statement: &str,
    types: &[Type],
    params: &[P],
) -> Result<(), Error> {
    let formats = (!params.is_empty()).then_some(1i16);
    let write = |i: usize, buf: &mut BytesMut| -> Result<bool, Error> {
        let (Some(param), Some(ty)) = (params.get(i), types.get(i)) else {
            return Err(Error::parameter_count(types.len(), params.len()));
        };
        match param.borrow_to_sql().to_sql_checked(ty, buf) {
            Ok(IsNull::Yes) => Ok(true),
            Ok(IsNull::No) => Ok(false),
            Err(e) => Err(Error::to_sql(i, e)),
        }
    };
    req.bind(portal, statement, formats, params.len(), write, [1])
        .map_err(|e| match e {
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
            if let Some(socket) = &mut self.socket {
                let _ = socket.try_write(&buf);
            }
        }
    }
}
