//! Transactions and savepoints, rolled back when dropped.

use std::fmt;

use postgres_types::{BorrowToSql, ToSql, Type};

use crate::batch::{Batch, BatchResult};
use crate::cancel::{timed, CancelToken};
use crate::copy::{CopyIn, CopyOut};
use crate::exchange::Response;
use crate::row::Row;
use crate::simple::SimpleQueryMessage;
use crate::statement::{Statement, ToStatement};
use crate::stream::RowStream;
use crate::{Connection, Error};

/// A transaction (`BEGIN` ... `COMMIT`), or a savepoint within one when made with
/// [`Transaction::transaction`]. It borrows the connection mutably: run statements
/// through it.
///
/// End it with [`commit`](Transaction::commit) or
/// [`rollback`](Transaction::rollback). **Dropped without either, it is rolled
/// back lazily**: `Drop` cannot wait on the socket, so the `ROLLBACK` (or
/// `ROLLBACK TO SAVEPOINT`) is queued on the connection and sent together with the
/// connection's next request, in the same write and before it. Until then the
/// server still holds the transaction's locks; [`Connection::close`] or dropping the
/// connection ends the session, which also rolls it back.
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// let mut tx = conn.transaction().await?;
/// tx.execute("insert into log(msg) values ($1)", &[&"hello"]).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    /// The savepoint's name, for a nested transaction.
    savepoint: Option<String>,
    depth: u32,
    done: bool,
}

impl<'c> Transaction<'c> {
    /// Runs `BEGIN` and returns the guard.
    pub(crate) async fn begin(conn: &'c mut Connection) -> Result<Transaction<'c>, Error> {
        Transaction::start(conn, None, 0, "BEGIN").await
    }

    /// The connection, for the methods defined elsewhere.
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        self.conn
    }

    /// Sends `sql` with the guard already armed: if this future is dropped after
    /// `sql` was queued, the guard's `Drop` rolls back.
    async fn start(
        conn: &'c mut Connection,
        savepoint: Option<String>,
        depth: u32,
        sql: &str,
    ) -> Result<Transaction<'c>, Error> {
        let op = conn.begin_op().await?;
        conn.send_simple(op, sql)?;
        let mut tx = Transaction {
            conn,
            savepoint,
            depth,
            done: false,
        };
        if let Err(e) = tx.conn.finish(op, &mut Response::default()).await {
            // It never started: nothing to roll back.
            tx.done = true;
            return Err(e);
        }
        Ok(tx)
    }

    /// Commits (or releases the savepoint).
    pub async fn commit(mut self) -> Result<(), Error> {
        let sql = match &self.savepoint {
            Some(name) => format!("RELEASE SAVEPOINT {name}"),
            None => "COMMIT".to_owned(),
        };
        let deadline = self.conn.deadline();
        timed(deadline, self.end(&sql)).await
    }

    /// Rolls back (to the savepoint, for a nested transaction).
    pub async fn rollback(mut self) -> Result<(), Error> {
        let sql = self.rollback_sql();
        let deadline = self.conn.deadline();
        timed(deadline, self.end(&sql)).await
    }

    /// Sends the statement that ends the transaction. From the moment it is queued
    /// the guard no longer rolls back on drop.
    async fn end(&mut self, sql: &str) -> Result<(), Error> {
        let op = self.conn.begin_op().await?;
        self.conn.send_simple(op, sql)?;
        self.done = true;
        self.conn.finish(op, &mut Response::default()).await
    }

    fn rollback_sql(&self) -> String {
        match &self.savepoint {
            Some(name) => format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
            None => "ROLLBACK".to_owned(),
        }
    }

    /// Starts a nested transaction: a savepoint, released by its `commit` and rolled
    /// back to by its `rollback` or drop.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>, Error> {
        let depth = self.depth + 1;
        let name = format!("ferropg_sp_{depth}");
        let sql = format!("SAVEPOINT {name}");
        let deadline = self.conn.deadline();
        timed(
            deadline,
            Transaction::start(self.conn, Some(name), depth, &sql),
        )
        .await
    }

    /// [`Connection::query`] within the transaction.
    pub async fn query<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.conn.query(statement, params).await
    }

    /// [`Connection::query_one`] within the transaction.
    pub async fn query_one<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.conn.query_one(statement, params).await
    }

    /// [`Connection::query_opt`] within the transaction.
    pub async fn query_opt<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.conn.query_opt(statement, params).await
    }

    /// [`Connection::execute`] within the transaction.
    pub async fn execute<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.conn.execute(statement, params).await
    }

    /// [`Connection::query_raw`] within the transaction.
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
        self.conn.query_raw(statement, params).await
    }

    /// [`Connection::execute_raw`] within the transaction.
    pub async fn execute_raw<T, P, I>(&mut self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        self.conn.execute_raw(statement, params).await
    }

    /// [`Connection::query_typed`] within the transaction.
    pub async fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.conn.query_typed(sql, params).await
    }

    /// [`Connection::simple_query`] within the transaction.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.conn.simple_query(sql).await
    }

    /// [`Connection::execute_many`] within the transaction: all or nothing, with
    /// one commit.
    pub async fn execute_many<T, I, R, P>(&mut self, statement: &T, rows: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        self.conn.execute_many(statement, rows).await
    }

    /// [`Connection::batch_atomic`] within the transaction.
    pub async fn batch_atomic(&mut self, batch: &Batch<'_>) -> Result<Vec<BatchResult>, Error> {
        self.conn.batch_atomic(batch).await
    }

    /// [`Connection::batch_independent`] within the transaction.
    pub async fn batch_independent(
        &mut self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Result<BatchResult, Error>>, Error> {
        self.conn.batch_independent(batch).await
    }

    /// [`Connection::batch_execute`] within the transaction.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.conn.batch_execute(sql).await
    }

    /// [`Connection::prepare`] within the transaction (the statement outlives it).
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement, Error> {
        self.conn.prepare(sql).await
    }

    /// [`Connection::prepare_typed`] within the transaction.
    pub async fn prepare_typed(&mut self, sql: &str, types: &[Type]) -> Result<Statement, Error> {
        self.conn.prepare_typed(sql, types).await
    }

    /// [`Connection::prepare_cached`] within the transaction.
    pub async fn prepare_cached(&mut self, sql: &str) -> Result<Statement, Error> {
        self.conn.prepare_cached(sql).await
    }

    /// [`Connection::copy_in`] within the transaction.
    pub async fn copy_in(&mut self, sql: &str) -> Result<CopyIn<'_>, Error> {
        self.conn.copy_in(sql).await
    }

    /// [`Connection::copy_out`] within the transaction.
    pub async fn copy_out(&mut self, sql: &str) -> Result<CopyOut<'_>, Error> {
        self.conn.copy_out(sql).await
    }

    /// [`Connection::cancel_token`] of the underlying connection.
    pub fn cancel_token(&self) -> CancelToken {
        self.conn.cancel_token()
    }

    /// The underlying connection, for its accessors.
    pub fn connection(&self) -> &Connection {
        self.conn
    }
}

/// A transaction's isolation level (`BEGIN ISOLATION LEVEL ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED` (PostgreSQL runs it as `READ COMMITTED`).
    ReadUncommitted,
    /// `READ COMMITTED`, PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`.
    Serializable,
}

impl IsolationLevel {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "ISOLATION LEVEL READ UNCOMMITTED",
            IsolationLevel::ReadCommitted => "ISOLATION LEVEL READ COMMITTED",
            IsolationLevel::RepeatableRead => "ISOLATION LEVEL REPEATABLE READ",
            IsolationLevel::Serializable => "ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// Options of a transaction to start, from
/// [`Connection::build_transaction`]; unset options take the session's defaults.
///
/// ```no_run
/// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
/// use ferropg::IsolationLevel;
///
/// let mut tx = conn
///     .build_transaction()
///     .isolation_level(IsolationLevel::Serializable)
///     .read_only(true)
///     .deferrable(true)
///     .start()
///     .await?;
/// let n: i64 = tx.query_one("select count(*) from pg_class", &[]).await?.get(0);
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TransactionBuilder<'c> {
    conn: &'c mut Connection,
    options: TransactionOptions,
}

/// The options of a `BEGIN`, shared by both faces' builders.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TransactionOptions {
    pub(crate) isolation_level: Option<IsolationLevel>,
    pub(crate) read_only: Option<bool>,
    pub(crate) deferrable: Option<bool>,
}

/// The option setters of a transaction builder (a struct with an `options:
/// TransactionOptions` field), for both faces' builders.
macro_rules! option_setters {
    () => {
        /// Sets the isolation level.
        pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
            self.options.isolation_level = Some(level);
            self
        }

        /// Makes the transaction `READ ONLY` (`true`) or `READ WRITE` (`false`).
        pub fn read_only(mut self, read_only: bool) -> Self {
            self.options.read_only = Some(read_only);
            self
        }

        /// Makes the transaction `DEFERRABLE` or `NOT DEFERRABLE` (which matters only
        /// for a serializable read-only one).
        pub fn deferrable(mut self, deferrable: bool) -> Self {
            self.options.deferrable = Some(deferrable);
            self
        }
    };
}
pub(crate) use option_setters;

impl TransactionOptions {
    /// The `BEGIN` statement for these options.
    pub(crate) fn sql(&self) -> String {
        let mut modes = Vec::new();
        if let Some(level) = self.isolation_level {
            modes.push(level.sql());
        }
        match self.read_only {
            Some(true) => modes.push("READ ONLY"),
            Some(false) => modes.push("READ WRITE"),
            None => {}
        }
        match self.deferrable {
            Some(true) => modes.push("DEFERRABLE"),
            Some(false) => modes.push("NOT DEFERRABLE"),
            None => {}
        }
        if modes.is_empty() {
            "BEGIN".to_owned()
        } else {
            format!("BEGIN {}", modes.join(", "))
        }
    }
}

impl<'c> TransactionBuilder<'c> {
    pub(crate) fn new(conn: &'c mut Connection) -> TransactionBuilder<'c> {
        TransactionBuilder {
            conn,
            options: TransactionOptions::default(),
        }
    }

    option_setters!();

    /// Runs the `BEGIN` and returns the [`Transaction`].
    pub async fn start(self) -> Result<Transaction<'c>, Error> {
        let sql = self.options.sql();
        let deadline = self.conn.deadline();
        timed(deadline, Transaction::start(self.conn, None, 0, &sql)).await
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("savepoint", &self.savepoint)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let sql = self.rollback_sql();
            self.conn.cleanup_sql.push(sql);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IsolationLevel;

    #[test]
    fn isolation_levels_spell_their_sql() {
        assert_eq!(
            IsolationLevel::RepeatableRead.sql(),
            "ISOLATION LEVEL REPEATABLE READ"
        );
        assert_eq!(
            IsolationLevel::ReadUncommitted.sql(),
            "ISOLATION LEVEL READ UNCOMMITTED"
        );
    }
}
