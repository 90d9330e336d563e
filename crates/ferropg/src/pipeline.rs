//! A [`Connection`]'s explicit pipelines: [`Batch`]es and `execute_many`, as on a
//! [`Client`](crate::Client) (see `client/batch.rs`), driven inline: every request
//! is written before the first reply is read.

use std::collections::VecDeque;
use std::sync::Arc;

use postgres_types::BorrowToSql;

use crate::batch::{groups_in_flight, Batch, BatchCollect, BatchResult, RowGroups};
use crate::cancel::timed;
use crate::connection::{bind_statement, check_count, execute_rows, is_stale};
use crate::exchange::Response;
use crate::statement::{Column, Source, Statement, ToStatement};
use crate::{Connection, Error};

/// A statement ready to bind in a pipeline.
struct Bound {
    statement: Statement,
    /// Its columns, every type learned.
    columns: Arc<[Column]>,
    cached: bool,
}

impl Connection {
    /// [`Client::batch_atomic`](crate::Client::batch_atomic): the statements of
    /// `batch` in one request with one Sync, all or nothing. Bounded by the
    /// connection's [`timeout`](Connection::set_timeout) as one call.
    pub async fn batch_atomic(&mut self, batch: &Batch<'_>) -> Result<Vec<BatchResult>, Error> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = self.deadline();
        timed(deadline, async {
            let bound = self.bind_all(batch).await?;
            let op = self.begin_op().await?;
            let pooler = self.binds_unnamed();
            let mut wire = self.core.request(&mut self.write_buf);
            for (b, entry) in bound.iter().zip(&batch.entries) {
                bind_statement(&mut wire, "", &b.statement, &entry.params, pooler)?;
                wire.execute("", 0)?;
                wire.rows_of(b.columns.len());
            }
            wire.send(op);
            let collect = bound
                .iter()
                .zip(&batch.entries)
                .map(|(b, entry)| (b.columns.clone(), entry.keep_rows))
                .collect();
            let mut resp = Response {
                batch: Some(BatchCollect::new(collect)),
                ..Response::default()
            };
            let result = self.finish(op, &mut resp).await;
            self.forget_if_stale(&bound, &result);
            result?;
            Ok(resp.batch.map(|b| b.results).unwrap_or_default())
        })
        .await
    }

    /// [`Client::batch_independent`](crate::Client::batch_independent): the
    /// statements of `batch` each with its own Sync, all written at once, each
    /// succeeding or failing on its own.
    pub async fn batch_independent(
        &mut self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Result<BatchResult, Error>>, Error> {
        let deadline = self.deadline();
        timed(deadline, async {
            let bound = self.bind_all(batch).await?;
            // Waits out abandoned requests once: the ops queued below are ours.
            let mut op = self.begin_op().await?;
            let mut sent = Vec::with_capacity(bound.len());
            for (i, (b, entry)) in bound.iter().zip(&batch.entries).enumerate() {
                if i > 0 {
                    op = self.next_op_id();
                }
                let pooler = self.binds_unnamed();
                let mut wire = self.core.request(&mut self.write_buf);
                let encoded = bind_statement(&mut wire, "", &b.statement, &entry.params, pooler)
                    .and_then(|_| Ok(wire.execute("", 0)?));
                sent.push(encoded.map(|()| {
                    wire.rows_of(b.columns.len());
                    wire.send(op);
                    op
                }));
            }
            let mut results = Vec::with_capacity(sent.len());
            for ((sent, b), entry) in sent.into_iter().zip(&bound).zip(&batch.entries) {
                let op = match sent {
                    Ok(op) => op,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                let mut resp = Response {
                    columns: Some(b.columns.clone()),
                    rows: entry.keep_rows.then(Vec::new),
                    ..Response::default()
                };
                let result = self.finish(op, &mut resp).await;
                if let Err(e) = &result {
                    if e.as_db_error().is_none() {
                        // The connection is gone: nothing more will come.
                        return Err(result.unwrap_err());
                    }
                }
                self.forget_if_stale(std::slice::from_ref(b), &result);
                results.push(
                    result.map(|()| {
                        BatchResult::new(resp.rows.unwrap_or_default(), resp.rows_affected)
                    }),
                );
            }
            Ok(results)
        })
        .await
    }

    /// [`Client::execute_many`](crate::Client::execute_many): `statement` once for
    /// each row of parameters, in Sync groups of which only a few wait for their
    /// replies at a time. Not atomic outside a transaction; bounded by the
    /// connection's [`timeout`](Connection::set_timeout) as one call.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let mut tx = conn.transaction().await?;
    /// let rows = (0..1000i32).map(|i| [i, i * i]);
    /// let n = tx.execute_many("insert into square (n, sq) values ($1, $2)", rows).await?;
    /// assert_eq!(n, 1000);
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_many<T, I, R, P>(&mut self, statement: &T, rows: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        let deadline = self.deadline();
        timed(
            deadline,
            self.execute_many_inner(statement.__source(), rows),
        )
        .await
    }

    async fn execute_many_inner<I, R, P>(
        &mut self,
        source: Source<'_>,
        rows: I,
    ) -> Result<u64, Error>
    where
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        let Some(mut groups) = RowGroups::start(rows) else {
            return Ok(0);
        };
        let bound = self.bound(source, groups.width()).await?;
        let mut next_op = Some(self.begin_op().await?);
        let most = groups_in_flight(self.pooler_mode || self.probe.suspected);
        let mut in_flight: VecDeque<u64> = VecDeque::with_capacity(most);
        let (mut total, mut failure) = (0u64, None);
        while failure.is_none() {
            if let Err(e) = groups.fill() {
                failure = Some(e);
            }
            if !groups.is_empty() {
                let op = next_op.take().unwrap_or_else(|| self.next_op_id());
                let pooler = self.binds_unnamed();
                let mut wire = self.core.request(&mut self.write_buf);
                match execute_rows(&mut wire, &bound.statement, groups.rows(), pooler) {
                    Ok(()) => {
                        wire.rows_of(bound.columns.len());
                        wire.send(op);
                        in_flight.push_back(op);
                        self.flush().await?;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                        groups.stop();
                    }
                }
            }
            groups.clear();
            while in_flight.len() >= most || (!groups.more() && !in_flight.is_empty()) {
                let Some(op) = in_flight.pop_front() else {
                    break;
                };
                let mut resp = Response::default();
                match self.finish(op, &mut resp).await {
                    Ok(()) => total += resp.total_affected,
                    Err(e) if e.as_db_error().is_some() => {
                        self.forget_if_stale_err(std::slice::from_ref(&bound), &e);
                        failure.get_or_insert(e);
                        groups.stop();
                    }
                    Err(e) => return Err(e),
                }
            }
            if !groups.more() {
                break;
            }
        }
        while let Some(op) = in_flight.pop_front() {
            let mut resp = Response::default();
            match self.finish(op, &mut resp).await {
                Ok(()) => total += resp.total_affected,
                Err(e) if e.as_db_error().is_some() => {
                    failure.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Clears the statement cache when `result` shows that a cached statement
    /// among `bound` is stale.
    fn forget_if_stale(&mut self, bound: &[Bound], result: &Result<(), Error>) {
        if let Err(e) = result {
            self.forget_if_stale_err(bound, e);
        }
    }

    fn forget_if_stale_err(&mut self, bound: &[Bound], err: &Error) {
        if bound.iter().any(|b| b.cached) && is_stale(err) {
            self.clear_statement_cache();
        }
    }

    /// Every statement of `batch`, prepared.
    async fn bind_all(&mut self, batch: &Batch<'_>) -> Result<Vec<Bound>, Error> {
        let mut bound = Vec::with_capacity(batch.len());
        for entry in &batch.entries {
            bound.push(self.bound(entry.source, entry.params.len()).await?);
        }
        Ok(bound)
    }

    /// The named statement `source` runs as in a pipeline (never the unnamed one,
    /// which the next statement's preparation would replace): cached SQL text, or
    /// prepared now (and cached, if the cache takes it).
    async fn bound(&mut self, source: Source<'_>, nparams: usize) -> Result<Bound, Error> {
        let (statement, cached) = match source {
            Source::Prepared(statement) => {
                if statement.connection_id() != self.id {
                    return Err(Error::wrong_connection());
                }
                (statement.clone(), false)
            }
            Source::Sql(sql) if self.cacheable(sql) => match self.cache_lookup(sql) {
                Some(statement) => (statement, true),
                None => {
                    let statement = self.prepare_named(sql, &[]).await?;
                    self.cache_put(sql, statement.clone());
                    (statement, true)
                }
            },
            Source::Sql(sql) => (self.prepare_named(sql, &[]).await?, false),
        };
        check_count(statement.params().len(), nparams)?;
        let columns = self.learned_columns(statement.columns_arc()).await?;
        Ok(Bound {
            statement,
            columns,
            cached,
        })
    }
}
