//! [`ClientTransaction`]: a transaction (or savepoint) on a [`Client`] held
//! exclusively.

use std::fmt;

use postgres_types::{BorrowToSql, ToSql, Type};

use super::{Client, ClientCopyIn, ClientCopyOut, ClientRowStream};
use crate::batch::{Batch, BatchResult};
use crate::row::Row;
use crate::simple::SimpleQueryMessage;
use crate::statement::{Statement, ToStatement};
use crate::transaction::{option_setters, IsolationLevel, TransactionOptions};
use crate::Error;

/// A transaction (`BEGIN` ... `COMMIT`) on a [`Client`], or a savepoint within one
/// when made with [`ClientTransaction::transaction`]. It holds the client
/// exclusively (`&mut`), so no other task's statement runs inside it.
///
/// End it with [`commit`](ClientTransaction::commit) or
/// [`rollback`](ClientTransaction::rollback). **Dropped without either, it is rolled
/// back**: the `ROLLBACK` (or `ROLLBACK TO SAVEPOINT`) is queued at once and the
/// driver sends it, without waiting for the client's next call.
///
/// ```no_run
/// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
/// let tx = client.transaction().await?;
/// tx.execute("insert into log(msg) values ($1)", &[&"hello"]).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct ClientTransaction<'a> {
    client: &'a Client,
    /// The savepoint's name, for a nested transaction.
    savepoint: Option<String>,
    depth: u32,
    done: bool,
}

impl<'a> ClientTransaction<'a> {
    /// Runs `BEGIN`.
    pub(super) async fn begin(client: &'a mut Client) -> Result<ClientTransaction<'a>, Error> {
        ClientTransaction::start(client, None, 0, "BEGIN").await
    }

    /// Runs `sql` with the guard already armed: if this future is dropped after
    /// `sql` was queued, the guard rolls back.
    async fn start(
        client: &'a Client,
        savepoint: Option<String>,
        depth: u32,
        sql: &str,
    ) -> Result<ClientTransaction<'a>, Error> {
        let mut tx = ClientTransaction {
            client,
            savepoint,
            depth,
            done: false,
        };
        if let Err(e) = client.batch_execute(sql).await {
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
        self.end(&sql).await
    }

    /// Rolls back (to the savepoint, for a nested transaction).
    pub async fn rollback(mut self) -> Result<(), Error> {
        let sql = self.rollback_sql();
        self.end(&sql).await
    }

    /// Runs the statement that ends the transaction; from the moment it is queued
    /// the guard no longer rolls back on drop.
    async fn end(&mut self, sql: &str) -> Result<(), Error> {
        self.done = true;
        self.client.batch_execute(sql).await
    }

    fn rollback_sql(&self) -> String {
        match &self.savepoint {
            Some(name) => format!("ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"),
            None => "ROLLBACK".to_owned(),
        }
    }

    /// Starts a nested transaction: a savepoint, released by its `commit` and rolled
    /// back to by its `rollback` or drop.
    pub async fn transaction(&mut self) -> Result<ClientTransaction<'_>, Error> {
        let depth = self.depth + 1;
        let name = format!("ferropg_sp_{depth}");
        let sql = format!("SAVEPOINT {name}");
        ClientTransaction::start(self.client, Some(name), depth, &sql).await
    }

    /// [`Client::query`] within the transaction.
    pub async fn query<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.client.query(statement, params).await
    }

    /// [`Client::query_one`] within the transaction.
    pub async fn query_one<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.client.query_one(statement, params).await
    }

    /// [`Client::query_opt`] within the transaction.
    pub async fn query_opt<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.client.query_opt(statement, params).await
    }

    /// [`Client::execute`] within the transaction.
    pub async fn execute<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.client.execute(statement, params).await
    }

    /// [`Client::query_raw`] within the transaction. The stream does not borrow
    /// the transaction: read it to its end before the transaction ends.
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
        self.client.query_raw(statement, params).await
    }

    /// [`Client::execute_raw`] within the transaction.
    pub async fn execute_raw<T, P, I>(&self, statement: &T, params: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        self.client.execute_raw(statement, params).await
    }

    /// [`Client::query_typed`] within the transaction.
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, Error> {
        self.client.query_typed(sql, params).await
    }

    /// [`Client::simple_query`] within the transaction.
    pub async fn simple_query(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, Error> {
        self.client.simple_query(sql).await
    }

    /// [`Client::copy_in`] within the transaction.
    pub async fn copy_in(&self, sql: &str) -> Result<ClientCopyIn<'_>, Error> {
        self.client.copy_in(sql).await
    }

    /// [`Client::copy_out`] within the transaction.
    pub async fn copy_out(&self, sql: &str) -> Result<ClientCopyOut, Error> {
        self.client.copy_out(sql).await
    }

    /// [`Client::execute_many`] within the transaction: all or nothing, with
    /// one commit.
    pub async fn execute_many<T, I, R, P>(&self, statement: &T, rows: I) -> Result<u64, Error>
    where
        T: ?Sized + ToStatement,
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = P>,
        P: BorrowToSql,
    {
        self.client.execute_many(statement, rows).await
    }

    /// [`Client::batch_atomic`] within the transaction.
    pub async fn batch_atomic(&self, batch: &Batch<'_>) -> Result<Vec<BatchResult>, Error> {
        self.client.batch_atomic(batch).await
    }

    /// [`Client::batch_independent`] within the transaction (where the first
    /// error makes every later statement fail, the transaction being aborted).
    pub async fn batch_independent(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<Result<BatchResult, Error>>, Error> {
        self.client.batch_independent(batch).await
    }

    /// [`Client::batch_execute`] within the transaction.
    pub async fn batch_execute(&self, sql: &str) -> Result<(), Error> {
        self.client.batch_execute(sql).await
    }

    /// [`Client::prepare`] within the transaction (the statement outlives it).
    pub async fn prepare(&self, sql: &str) -> Result<Statement, Error> {
        self.client.prepare(sql).await
    }

    /// [`Client::prepare_typed`] within the transaction.
    pub async fn prepare_typed(&self, sql: &str, types: &[Type]) -> Result<Statement, Error> {
        self.client.prepare_typed(sql, types).await
    }

    /// The client, for its accessors.
    pub fn client(&self) -> &Client {
        self.client
    }
}

/// Options of a transaction to start on a [`Client`], from
/// [`Client::build_transaction`]; unset options take the session's defaults. The
/// same options as a [`Connection`](crate::Connection)'s
/// [`TransactionBuilder`](crate::TransactionBuilder).
///
/// ```no_run
/// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
/// use ferropg::IsolationLevel;
///
/// let tx = client
///     .build_transaction()
///     .isolation_level(IsolationLevel::Serializable)
///     .read_only(true)
///     .start()
///     .await?;
/// let n: i64 = tx.query_one("select count(*) from pg_class", &[]).await?.get(0);
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientTransactionBuilder<'a> {
    client: &'a mut Client,
    options: TransactionOptions,
}

impl<'a> ClientTransactionBuilder<'a> {
    pub(super) fn new(client: &'a mut Client) -> ClientTransactionBuilder<'a> {
        ClientTransactionBuilder {
            client,
            options: TransactionOptions::default(),
        }
    }

    option_setters!();

    /// Runs the `BEGIN` and returns the [`ClientTransaction`].
    pub async fn start(self) -> Result<ClientTransaction<'a>, Error> {
        let sql = self.options.sql();
        ClientTransaction::start(self.client, None, 0, &sql).await
    }
}

impl fmt::Debug for ClientTransaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTransaction")
            .field("savepoint", &self.savepoint)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientTransaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.client.shared.submit_unheard(&self.rollback_sql());
        }
    }
}
