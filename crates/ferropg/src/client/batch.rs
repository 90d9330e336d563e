//! A [`Client`]'s explicit pipelines: [`Batch`]es (one Sync for all, or one for
//! each statement) and `execute_many` (a statement run for each row of
//! parameters, in Sync groups of which only a few are in flight at once).

use std::collections::VecDeque;

use postgres_types::BorrowToSql;

use super::requests::Bound;
use super::shared::Reply;
use super::Client;
use crate::batch::{groups_in_flight, Batch, BatchCollect, BatchResult, RowGroups};
use crate::connection::{bind_statement, execute_rows, is_stale};
use crate::exchange::Response;
use crate::statement::ToStatement;
use crate::Error;

impl Client {
    /// Runs the statements of `batch` as one request ended by one Sync: written at
    /// once, run in order, **all or nothing**. Outside a transaction they form one
    /// implicit transaction, committed at the end; the first error stops the rest
    /// and rolls back what ran, and is returned. (Inside a transaction, the error
    /// aborts the transaction as any error does.) On success, one
    /// [`BatchResult`] per statement, in order.
    ///
    /// Each statement is bound from a prepared statement: SQL text not cached yet
    /// is prepared (and cached) first, a round trip each. Other tasks' requests
    /// may run before or after the batch, never inside it.
    ///
    /// See [`Batch`] for an example.
    pub async fn batch_atomic(&self, batch: &Batch<'_>) -> Result<Vec<BatchResult>, Error> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let bound = self.bind_all(batch).await?;
        let collect = bound
            .iter()
            .zip(&batch.entries)
            .map(|(b, entry)| (b.columns.clone(), entry.keep_rows))
            .collect();
        let resp = Response {
            batch: Some(BatchCollect::new(collect)),
            ..Response::default()
        };
        let reply = self.shared.submit(resp, |state, op| {
            let pooler = state.binds_unnamed();
            let mut wire = state.core.request(&mut state.write_buf);
            for (b, entry) in bound.iter().zip(&batch.entries) {
                bind_statement(&mut wire, "", &b.statement, &entry.params, pooler)?;
                wire.execute("", 0)?;
                wire.rows_of(b.columns.len());
            }
            wire.send(op);
            Ok(())
        })?;
        let mut resp = reply.response().await?;
        if let Some(db) = resp.error.take() {
            let err = Error::db(db);
            self.forget_if_stale(&bound, &err);
            return Err(err);
        }
        Ok(resp.batch.map(|b| b.results).unwrap_or_default())
    }

    /// Runs the statements of `batch` each as a request of its own, with its own
    /// Sync, all written at once: **each succeeds or fails on its own** (outside a
    /// transaction each commits on its own). Returns each statement's result, in
    /// order; the outer error is for what stops the whole batch (a statement that
    /// could not be prepared, the connection lost).
    ///
    /// ```no_run
    /// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
    /// use ferropg::Batch;
    ///
    /// let mut batch = Batch::new();
    /// batch
    ///     .execute("insert into log (msg) values ($1)", &[&"first"])
    ///     .query("select 1 / $1::int4", &[&0i32])
    ///     .execute("insert into log (msg) values ($1)", &[&"third"]);
    /// let results = client.batch_independent(&batch).await?;
    /// assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    /// # Ok(()) }
    /// ```
    pub async fn batch_independent(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Result<BatchResult, Error>>, Error> {
        let bound = self.bind_all(batch).await?;
        // Written one after the other with no wait in between: pipelined.
        let mut replies = Vec::with_capacity(bound.len());
        for (b, entry) in bound.iter().zip(&batch.entries) {
            let resp = Response {
                columns: Some(b.columns.clone()),
                rows: entry.keep_rows.then(Vec::new),
                ..Response::default()
            };
            let submitted = self.shared.submit(resp, |state, op| {
                let pooler = state.binds_unnamed();
                let mut wire = state.core.request(&mut state.write_buf);
                bind_statement(&mut wire, "", &b.statement, &entry.params, pooler)?;
                wire.execute("", 0)?;
                wire.rows_of(b.columns.len());
                wire.send(op);
                Ok(())
            });
            match submitted {
                Ok(reply) => replies.push(Ok(reply)),
                // A value that does not convert fails its statement only; a
                // closed connection fails the rest too, at their turn.
                Err(e) => replies.push(Err(e)),
            }
        }
        let mut results = Vec::with_capacity(replies.len());
        for (reply, b) in replies.into_iter().zip(&bound) {
            let result = match reply {
                Ok(reply) => {
                    let mut resp = reply.response().await?;
                    match resp.error.take() {
                        Some(db) => {
                            let err = Error::db(db);
                            self.forget_if_stale(std::slice::from_ref(b), &err);
                            Err(err)
                        }
                        None => Ok(BatchResult::new(
                            resp.rows.unwrap_or_default(),
                            resp.rows_affected,
                        )),
                    }
                }
                Err(e) => Err(e),
            };
            results.push(result);
        }
        Ok(results)
    }

    /// Runs `statement` once for each row of parameters `rows` yields, and returns
    /// the rows affected in all: the pipelined inserts of tokio-postgres (many
    /// `execute` futures joined) in one call, with the input read as it goes.
    ///
    /// The rows are sent in Sync groups of a few hundred, written back to back;
    /// at most a few groups wait for their replies at a time, so the input is
    /// read only that far ahead of the server (an iterator over a large source
    /// is never held in memory). The first error stops the sending and is
    /// returned once the groups in flight have been answered.
    ///
    /// **Not atomic** on its own: outside a transaction each group commits by
    /// itself, so an error leaves the groups before it (and any in flight with
    /// it) committed. Run it in a [`transaction`](Client::transaction) for all
    /// or nothing (which is also much faster: one commit).
    ///
    /// ```no_run
    /// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
    /// let tx = client.transaction().await?;
    /// let rows = (0..10_000i32).map(|i| [Box::new(i) as Box<dyn ferropg::ToSql + Sync>, Box::new(format!("item {i}"))]);
    /// let n = tx.execute_many("insert into item (id, name) values ($1, $2)", rows).await?;
    /// assert_eq!(n, 10_000);
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute_many<T, I, R, P>(&self, statement: &T, rows: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        // The first row tells the parameter count the statement is checked against.
        let Some(mut groups) = RowGroups::start(rows) else {
            return Ok(0);
        };
        let bound = self.bound(statement.__source(), groups.width()).await?;
        let most = groups_in_flight(self.shared.lock().behind_pooler());
        let mut in_flight: VecDeque<Reply> = VecDeque::with_capacity(most);
        let mut total = 0u64;
        let mut failure = None;
        while failure.is_none() {
            // The group's rows are taken from the caller's iterator outside the
            // client's lock (it is the caller's code).
            if let Err(e) = groups.fill() {
                failure = Some(e);
            }
            if !groups.is_empty() {
                match self.send_group(&bound, &groups) {
                    Ok(reply) => in_flight.push_back(reply),
                    Err(e) => {
                        failure.get_or_insert(e);
                        groups.stop();
                    }
                }
            }
            groups.clear();
            // Backpressure: no further ahead than a few groups.
            while in_flight.len() >= most || (!groups.more() && !in_flight.is_empty()) {
                let Some(reply) = in_flight.pop_front() else {
                    break;
                };
                match group_outcome(reply.response().await?) {
                    Ok(n) => total += n,
                    Err(e) => {
                        self.forget_if_stale(std::slice::from_ref(&bound), &e);
                        failure.get_or_insert(e);
                        groups.stop();
                    }
                }
            }
            if !groups.more() {
                break;
            }
        }
        // Whatever is still in flight is answered before returning.
        while let Some(reply) = in_flight.pop_front() {
            match group_outcome(reply.response().await?) {
                Ok(n) => total += n,
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Queues one Sync group of `execute_many`: a Bind and an Execute for each
    /// of the `count` rows of `width` parameters in `params`.
    fn send_group<I, R, P>(&self, bound: &Bound, groups: &RowGroups<I, P>) -> Result<Reply, Error>
    where
        I: Iterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        let statement = &bound.statement;
        self.shared.submit(Response::default(), |state, op| {
            let unnamed = state.binds_unnamed();
            let mut wire = state.core.request(&mut state.write_buf);
            execute_rows(&mut wire, statement, groups.rows(), unnamed)?;
            wire.rows_of(bound.columns.len());
            wire.send(op);
            Ok(())
        })
    }

    /// Clears the statement cache when `err` shows that a cached statement among
    /// `bound` is stale (the next call prepares it again).
    fn forget_if_stale(&self, bound: &[Bound], err: &Error) {
        if bound.iter().any(|b| b.cached) && is_stale(err) {
            self.clear_statement_cache();
        }
    }

    /// Every statement of `batch`, prepared.
    async fn bind_all(&self, batch: &Batch<'_>) -> Result<Vec<Bound>, Error> {
        let mut bound = Vec::with_capacity(batch.len());
        for entry in &batch.entries {
            bound.push(self.bound(entry.source, entry.params.len()).await?);
        }
        Ok(bound)
    }
}

/// The rows a Sync group affected, or its error.
fn group_outcome(resp: Response) -> Result<u64, Error> {
    match resp.error {
        Some(db) => Err(Error::db(db)),
        None => Ok(resp.total_affected),
    }
}
