//! How a [`Client`] turns a call into requests: which statement runs (the shared
//! statement cache, a statement prepared first, or SQL text parsed in the request
//! itself), the types learned from the catalog, and what a finished request leaves
//! in the cache.
//!
//! The rules are the [`Connection`](crate::Connection)'s, with one difference that
//! pipelining imposes: SQL text with parameters and the cache off is prepared as a
//! named statement of its own, closed after the call, never as the unnamed
//! statement, which another task's request could replace between the Parse and
//! the Bind.

use std::sync::Arc;

use ferropg_core::message::frontend;
use ferropg_core::message::TransactionStatus;
use ferropg_core::pooler;
use postgres_types::{BorrowToSql, Type};

use super::feed::FeedTx;
use super::shared::{Reply, ReplyTo};
use super::Client;
use crate::connection::{bind, bind_statement, check_count, is_stale, statement_lost, NO_PARAMS};
use crate::exchange::Response;
use crate::introspect::is_placeholder;
use crate::row::Row;
use crate::statement::{type_from_oid, Column, PendingName, Source, Statement};
use crate::Error;

/// What a request runs.
enum Target<'s> {
    /// A prepared statement: the caller's, a cached one, or one of the call's own.
    Bound { statement: Statement, cached: bool },
    /// SQL text without parameters, parsed in the request itself: under a new name
    /// (described, to be cached afterwards) or as the unnamed statement.
    Parse {
        sql: &'s str,
        name: Option<PendingName>,
    },
}

/// A prepared statement ready to bind, from [`Client::bound`].
pub(super) struct Bound {
    pub(super) statement: Statement,
    /// Its columns, every type learned.
    pub(super) columns: Arc<[Column]>,
    /// It came from the shared cache (a stale one clears the cache).
    pub(super) cached: bool,
}

/// A request sent, and what finishing it takes.
struct InFlight {
    reply: Reply,
    /// A statement the request parses under a new name, and the text to cache it
    /// by. If the call is dropped first, the name is closed.
    adopt: Option<(String, PendingName)>,
    /// The statement came from the cache (a stale one clears the cache).
    cached: bool,
    /// The request bound a statement by its name (see `Client::pooler_found`).
    by_name: bool,
    /// The statement bound, kept alive until its reply.
    _statement: Option<Statement>,
}

impl Client {
    /// Runs one statement with the extended protocol; `collect` keeps the rows.
    pub(super) async fn run<P: BorrowToSql>(
        &self,
        source: Source<'_>,
        params: &[P],
        collect: bool,
    ) -> Result<Response, Error> {
        let mut retried = false;
        loop {
            let req = self.start(source, params, collect).await?;
            let mut resp = req.reply.response().await?;
            if let Some((sql, name)) = req.adopt {
                self.adopt(sql, name, &mut resp);
            }
            let Some(db) = resp.error.take() else {
                return Ok(resp);
            };
            let err = Error::db(db);
            if self.statement_failed(&err, req.cached, req.by_name) && !retried {
                retried = true;
                continue;
            }
            return Err(err);
        }
    }

    /// Learns what a request's error says of the statement it bound: one bound by
    /// name (`by_name`) and missing from the session means a pooler (see
    /// [`pooler_found`](Client::pooler_found)); a stale one from the cache
    /// (`cached`) clears the cache. True when the request may simply run again:
    /// its Bind was refused, so nothing of it ran, and outside a transaction
    /// nothing else was lost either.
    pub(super) fn statement_failed(&self, err: &Error, cached: bool, by_name: bool) -> bool {
        let pooler = by_name && self.pooler_found(err);
        if !((cached && is_stale(err)) || pooler) {
            return false;
        }
        if cached {
            self.clear_statement_cache();
        }
        self.transaction_status() == TransactionStatus::Idle
    }

    /// Caches a statement a request parsed under a new name, once the server
    /// described it (even if running it failed: the statement exists).
    fn adopt(&self, sql: String, name: PendingName, resp: &mut Response) {
        let (Some(params), Some(columns)) = (resp.params.take(), &resp.columns) else {
            // The Parse failed: the guard's Close of a statement that does not
            // exist is harmless.
            return;
        };
        let params = params.into_iter().map(type_from_oid).collect();
        let statement = Statement::new(
            name.into_name(),
            &sql,
            self.shared.id,
            params,
            columns.clone(),
            &self.shared.close_queue,
        );
        self.shared.cache_put(sql, statement);
    }

    /// Encodes and queues the request that runs `source` (preparing it first when
    /// its parameter types must come from the server).
    async fn start<P: BorrowToSql>(
        &self,
        source: Source<'_>,
        params: &[P],
        collect: bool,
    ) -> Result<InFlight, Error> {
        // Refused before a statement is prepared for it: nothing is sent.
        frontend::check_parameter_count(params.len()).map_err(|e| Error::encode(e.0))?;
        let target = self.target(source, params.len(), false).await?;
        let mut resp = Response {
            rows: collect.then(Vec::new),
            ..Response::default()
        };
        match target {
            Target::Bound { statement, cached } => {
                resp.columns = Some(statement.columns_arc().clone());
                let mut by_name = false;
                let reply = self.shared.submit(resp, |state, mut op| {
                    let pooler = state.binds_unnamed();
                    let mut wire = state.core.request(&mut state.write_buf);
                    by_name = bind_statement(&mut wire, "", &statement, params, pooler)?;
                    if by_name {
                        wire.rows_of(statement.columns_arc().len());
                    } else {
                        // Parsed again: the portal's description gives the columns
                        // as they are now, should the result type have changed.
                        wire.describe_portal("")?;
                        op.resp.describe = true;
                    }
                    wire.execute("", 0)?;
                    wire.send(op);
                    Ok(())
                })?;
                Ok(InFlight {
                    reply,
                    adopt: None,
                    cached,
                    by_name,
                    _statement: Some(statement),
                })
            }
            Target::Parse { sql, name } => {
                resp.describe = true;
                let stmt = name.as_ref().map_or("", PendingName::name);
                let reply = self.shared.submit(resp, |state, op| {
                    let mut wire = state.core.request(&mut state.write_buf);
                    wire.parse(stmt, sql, [])?;
                    // A new name is described as a statement (for the cache); the
                    // unnamed statement's portal always: the core checks every row
                    // against its description.
                    if stmt.is_empty() {
                        bind(&mut wire, "", stmt, &[], NO_PARAMS)?;
                        wire.describe_portal("")?;
                    } else {
                        wire.describe_statement(stmt)?;
                        bind(&mut wire, "", stmt, &[], NO_PARAMS)?;
                    }
                    wire.execute("", 0)?;
                    wire.send(op);
                    Ok(())
                })?;
                Ok(InFlight {
                    reply,
                    adopt: name.map(|name| (sql.to_owned(), name)),
                    cached: false,
                    by_name: false,
                    _statement: None,
                })
            }
        }
    }

    /// What `source` runs as. With `learn_first` (rows handed out as they come,
    /// before their types could be looked up), SQL text is always prepared first.
    async fn target<'s>(
        &self,
        source: Source<'s>,
        nparams: usize,
        learn_first: bool,
    ) -> Result<Target<'s>, Error> {
        let sql = match source {
            Source::Prepared(statement) => {
                if statement.connection_id() != self.shared.id {
                    return Err(Error::wrong_connection());
                }
                check_count(statement.params().len(), nparams)?;
                return Ok(Target::Bound {
                    statement: statement.clone(),
                    cached: false,
                });
            }
            Source::Sql(sql) => sql,
        };
        match self.shared.cache_lookup(sql) {
            Ok(Some(statement)) => {
                check_count(statement.params().len(), nparams)?;
                Ok(Target::Bound {
                    statement,
                    cached: true,
                })
            }
            // Behind a pooler a named statement could not be bound later.
            Ok(None) if nparams == 0 && !learn_first && self.pooler_mode() => {
                Ok(Target::Parse { sql, name: None })
            }
            Ok(None) if nparams == 0 && !learn_first => Ok(Target::Parse {
                sql,
                name: Some(self.shared.new_statement_name()),
            }),
            Ok(None) => {
                let statement = self.prepare_named(sql, &[]).await?;
                self.shared.cache_put(sql.to_owned(), statement.clone());
                check_count(statement.params().len(), nparams)?;
                Ok(Target::Bound {
                    statement,
                    cached: true,
                })
            }
            // Not cached: the unnamed statement when parsed in the same request,
            // else a statement of the call's own, closed once the call drops it.
            Err(()) if nparams == 0 && !learn_first => Ok(Target::Parse { sql, name: None }),
            Err(()) => {
                let statement = self.prepare_named(sql, &[]).await?;
                check_count(statement.params().len(), nparams)?;
                Ok(Target::Bound {
                    statement,
                    cached: false,
                })
            }
        }
    }

    /// Starts a row stream: the statement prepared (its column types learned)
    /// first, then bound and executed, its rows going into `feed`.
    pub(super) async fn start_stream<P: BorrowToSql>(
        &self,
        source: Source<'_>,
        params: &[P],
        feed: FeedTx<Row>,
    ) -> Result<(Statement, Arc<[Column]>, bool), Error> {
        let Bound {
            statement,
            columns,
            cached,
        } = self.bound(source, params.len()).await?;
        let resp = Response {
            columns: Some(columns.clone()),
            ..Response::default()
        };
        self.shared
            .submit_to(resp, ReplyTo::Rows(feed), |state, op| {
                let pooler = state.binds_unnamed();
                let mut wire = state.core.request(&mut state.write_buf);
                bind_statement(&mut wire, "", &statement, params, pooler)?;
                wire.execute("", 0)?;
                wire.rows_of(statement.columns_arc().len());
                wire.send(op);
                Ok(())
            })?;
        Ok((statement, columns, cached))
    }

    /// The prepared statement `source` runs as (SQL text is prepared and cached
    /// first), with its columns' types all learned: for requests whose rows are
    /// built before there is a chance to look types up (streams, batches).
    pub(super) async fn bound(&self, source: Source<'_>, nparams: usize) -> Result<Bound, Error> {
        frontend::check_parameter_count(nparams).map_err(|e| Error::encode(e.0))?;
        let Target::Bound { statement, cached } = self.target(source, nparams, true).await? else {
            unreachable!("SQL text is prepared first when asked to learn first");
        };
        // A statement cached from a run that parsed it may still hold stand-in types.
        let columns = self.learned_columns(statement.columns_arc()).await?;
        Ok(Bound {
            statement,
            columns,
            cached,
        })
    }

    /// `columns` with every type the catalog knows, asking it about those nothing
    /// is known of yet.
    pub(super) async fn learned_columns(
        &self,
        columns: &Arc<[Column]>,
    ) -> Result<Arc<[Column]>, Error> {
        if columns.iter().any(|c| is_placeholder(c.type_())) {
            self.learn_types(columns.iter().map(|c| c.type_().oid()).collect())
                .await?;
        }
        let retyped = self.shared.lock().types.retype(columns);
        Ok(retyped.unwrap_or_else(|| columns.clone()))
    }

    /// Prepares `sql` as a new named statement, learning the types it uses.
    pub(super) async fn prepare_named(
        &self,
        sql: &str,
        types: &[Type],
    ) -> Result<Statement, Error> {
        // On any error the guard closes the name: harmless if the Parse failed.
        // Behind a pooler the statement is only described: it is parsed again,
        // unnamed, in each request that runs it.
        let name = (!self.pooler_mode()).then(|| self.shared.new_statement_name());
        let server_name = name.as_ref().map_or("", PendingName::name);
        let (params, columns) = self.parse_and_describe(server_name, sql, types).await?;
        let column_oids = columns.iter().map(|c| c.type_().oid());
        self.learn_types(params.iter().copied().chain(column_oids).collect())
            .await?;
        let (params, columns) = {
            let state = self.shared.lock();
            let params = params.into_iter().map(|oid| state.types.get(oid)).collect();
            (params, state.types.retype(&columns).unwrap_or(columns))
        };
        Ok(match name {
            Some(name) => Statement::new(
                name.into_name(),
                sql,
                self.shared.id,
                params,
                columns,
                &self.shared.close_queue,
            ),
            None => Statement::unnamed(sql, self.shared.id, params, columns),
        })
    }

    /// One round trip: Parse, Describe, Sync. Returns the parameter OIDs and the
    /// columns as the server described them.
    async fn parse_and_describe(
        &self,
        name: &str,
        sql: &str,
        types: &[Type],
    ) -> Result<(Vec<u32>, Arc<[Column]>), Error> {
        let resp = Response {
            describe: true,
            ..Response::default()
        };
        let reply = self.shared.submit(resp, |state, op| {
            let mut wire = state.core.request(&mut state.write_buf);
            wire.parse(name, sql, types.iter().map(Type::oid))?;
            wire.describe_statement(name)?;
            wire.send(op);
            Ok(())
        })?;
        let mut resp = reply.response().await?;
        if let Some(e) = resp.error.take() {
            return Err(Error::db(e));
        }
        // A statement past the limit could never be bound.
        if let Some(why) = resp.unbindable {
            return Err(Error::encode(why));
        }
        let params = resp.params.unwrap_or_default();
        let columns = resp.columns.unwrap_or_else(|| Arc::from([]));
        Ok((params, columns))
    }

    /// Asks the catalog about the types of `oids` nothing is known of yet.
    async fn learn_types(&self, oids: Vec<u32>) -> Result<(), Error> {
        let (unknown, version) = {
            let state = self.shared.lock();
            let unknown = state.types.unknown(oids);
            let version = state
                .core
                .parameter("server_version")
                .and_then(|v| {
                    v.split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .unwrap_or(0);
            (unknown, version)
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let sql = ferropg_core::introspect::types_query(version * 10000);
        // Boxed: this runs a query, which may prepare a statement, which comes here
        // (with only built-in types, so no further).
        let rows = Box::pin(self.query(sql.as_str(), &[&unknown])).await?;
        self.shared.lock().types.learn(&rows)
    }

    /// Learns the column types of rows read without a described statement (SQL text
    /// parsed in the same request) and gives the rows the full types.
    pub(super) async fn retype_rows(&self, rows: &mut [Row]) -> Result<(), Error> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let columns = first.columns_arc().clone();
        // Most results have only built-in (or already learned) types: nothing to do.
        if !columns.iter().any(|c| is_placeholder(c.type_())) {
            return Ok(());
        }
        self.learn_types(columns.iter().map(|c| c.type_().oid()).collect())
            .await?;
        let Some(new) = self.shared.lock().types.retype(&columns) else {
            return Ok(());
        };
        for row in rows {
            row.set_columns(new.clone());
        }
        Ok(())
    }
}

impl Client {
    /// Whether statements are bound as the unnamed one, parsed again in each
    /// request: behind a transaction-mode pooler (pgbouncer's `pool_mode =
    /// transaction`), where each request may reach another server session. The
    /// client switches by itself the first time a statement it prepared is missing
    /// (see [`enter_pooler_mode`](Client::enter_pooler_mode)).
    pub fn pooler_mode(&self) -> bool {
        self.shared.lock().pooler_mode
    }

    /// Whether a transaction-mode pooler may sit in between: the startup's backend
    /// key did not name the server process that answered (pgbouncer gives clients
    /// keys of its own). Statements are then bound unnamed inside transaction
    /// blocks, and a pool's reset only ends an open transaction.
    pub fn pooler_suspected(&self) -> bool {
        let mut state = self.shared.lock();
        state.behind_pooler() && !state.pooler_mode
    }

    /// Binds every statement as the unnamed one from now on, parsed again (with
    /// the parameter types already known) in the request that runs it, and its
    /// portal described, so a changed result type is still seen: one round trip
    /// per call, as before, and nothing that a server session may lack. A client
    /// does this by itself when a named statement of its own is missing (SQLSTATE
    /// 26000) or already there (42P05), unless a `DEALLOCATE`/`DISCARD ALL` of the
    /// user's explains it; a [`Pool`](crate::Pool) then switches all its clients.
    /// The failed call is run again when nothing of it ran (outside a transaction
    /// block); inside one its error is returned.
    pub fn enter_pooler_mode(&self) {
        self.shared.lock().pooler_mode = true;
    }

    /// Switches to pooler mode when `err` says that a statement this client named
    /// is not in the session its request reached (or another of that name is),
    /// and no statement was discarded by the user's own commands. True when the
    /// client is in pooler mode now.
    pub(super) fn pooler_found(&self, err: &Error) -> bool {
        let lost = statement_lost(err);
        let mut state = self.shared.lock();
        if lost && pooler::loss_means_pooler(state.core.statements_discarded()) {
            state.pooler_mode = true;
        }
        state.pooler_mode && lost
    }
}
