//! [`GenericClient`]: code that runs statements without caring what it runs them
//! on.

use std::future::Future;

use futures_core::Stream;
use postgres_types::{BorrowToSql, ToSql, Type};

use crate::client::{Client, ClientRowStream, ClientTransaction};
use crate::row::Row;
use crate::simple::SimpleQueryMessage;
use crate::statement::{Statement, ToStatement};
use crate::stream::RowStream;
use crate::transaction::Transaction;
use crate::{Connection, Error};

mod private {
    pub trait Sealed {}
}

/// The query methods shared by [`Connection`], [`Transaction`], [`Client`] and
/// [`ClientTransaction`], for functions that take any of them (as tokio-postgres's
/// `GenericClient`). The methods take `&mut self` because a [`Connection`]'s do;
/// a `&mut Client` costs nothing to lend. Their futures are `Send`.
///
/// ```no_run
/// use ferropg::{Error, GenericClient};
///
/// async fn count_items(db: &mut impl GenericClient) -> Result<i64, Error> {
///     Ok(db.query_one("select count(*) from item", &[]).await?.get(0))
/// }
///
/// # async fn f(conn: &mut ferropg::Connection, client: &mut ferropg::Client) -> Result<(), Error> {
/// count_items(conn).await?;
/// count_items(client).await?;
/// let mut tx = conn.transaction().await?;
/// count_items(&mut tx).await?;
/// # Ok(()) }
/// ```
///
/// The raw and typed methods come too; [`query_raw`](GenericClient::query_raw)'s
/// stream is the implementor's own ([`RowStream`] or [`ClientRowStream`]), named
/// [`GenericClient::RowStream`]:
///
/// ```no_run
/// use ferropg::{Error, GenericClient};
/// use futures_util::TryStreamExt;
///
/// async fn sum_ids(db: &mut impl GenericClient, below: i32) -> Result<i64, Error> {
///     let mut rows = db.query_raw("select id from item where id < $1", [below]).await?;
///     let mut sum = 0i64;
///     while let Some(row) = rows.try_next().await? {
///         sum += i64::from(row.get::<_, i32>(0));
///     }
///     Ok(sum)
/// }
/// ```
///
/// [`transaction`](GenericClient::transaction) opens the implementor's own
/// transaction (a savepoint inside one), named [`GenericClient::Transaction`];
/// [`GenericTransaction`] ends it:
///
/// ```no_run
/// use ferropg::{Error, GenericClient, GenericTransaction};
///
/// async fn move_stock(db: &mut impl GenericClient, from: i32, to: i32) -> Result<(), Error> {
///     let mut tx = db.transaction().await?;
///     tx.execute("update item set stock = stock - 1 where id = $1", &[&from]).await?;
///     tx.execute("update item set stock = stock + 1 where id = $1", &[&to]).await?;
///     tx.commit().await
/// }
/// ```
///
/// A savepoint opened through the trait inside such a transaction (its own
/// `transaction()`) works, but a future that does so is not provably `Send`
/// (rustc's limit on higher-ranked lifetimes in async code, rust-lang/rust#100013):
/// in code that must be spawned, open the savepoint on the concrete type.
///
/// A [`PooledClient`](crate::PooledClient) lends its client as `&mut *pooled`.
/// (It does not implement the trait itself: with the trait in scope, its calls
/// would then need `&mut` where the client's take `&`.)
///
/// This trait is sealed.
pub trait GenericClient: private::Sealed {
    /// The stream of rows [`query_raw`](GenericClient::query_raw) returns: a
    /// [`RowStream`] borrowing a [`Connection`] or a [`Transaction`], a
    /// [`ClientRowStream`] from a [`Client`] or a [`ClientTransaction`].
    type RowStream<'s>: Stream<Item = Result<Row, Error>> + Send + Unpin
    where
        Self: 's;

    /// The transaction [`transaction`](GenericClient::transaction) opens: a
    /// [`Transaction`] on a [`Connection`] or inside one, a [`ClientTransaction`]
    /// on a [`Client`] or inside one.
    type Transaction<'t>: GenericTransaction
    where
        Self: 't;

    /// Starts a transaction, or a savepoint inside one. Dropped without
    /// [`commit`](GenericTransaction::commit), it rolls back.
    fn transaction(&mut self) -> impl Future<Output = Result<Self::Transaction<'_>, Error>> + Send;

    /// Runs a statement and returns all its rows.
    fn query<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// Runs a statement that must return exactly one row.
    fn query_one<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// Runs a statement that returns at most one row.
    fn query_opt<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// Runs a statement and returns the number of rows it affected.
    fn execute<T>(
        &mut self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// Runs a statement and returns its rows as they arrive, with the parameters
    /// given by an iterator (tokio-postgres's `query_raw`). The parameters are
    /// `Send + Sync` here (the inherent methods ask less), since the future holds
    /// them and must be `Send`.
    fn query_raw<T, P, I>(
        &mut self,
        statement: &T,
        params: I,
    ) -> impl Future<Output = Result<Self::RowStream<'_>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
        P: BorrowToSql + Send + Sync,
        I: IntoIterator<Item = P> + Send;

    /// Runs a statement with the parameters given by an iterator and returns the
    /// number of rows it affected (tokio-postgres's `execute_raw`). The parameters
    /// are `Send + Sync`, as [`query_raw`](GenericClient::query_raw)'s.
    fn execute_raw<T, P, I>(
        &mut self,
        statement: &T,
        params: I,
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
        P: BorrowToSql + Send + Sync,
        I: IntoIterator<Item = P> + Send;

    /// Runs a statement with the parameter types given beside the values, in one
    /// round trip, without preparing it first.
    fn query_typed(
        &mut self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send;

    /// Runs `;`-separated statements with the simple query protocol and returns
    /// what they sent (columns, rows as text, row counts).
    fn simple_query(
        &mut self,
        sql: &str,
    ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + Send;

    /// Runs `;`-separated statements with the simple query protocol.
    fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Prepares a named statement.
    fn prepare(&mut self, sql: &str) -> impl Future<Output = Result<Statement, Error>> + Send;

    /// Prepares a named statement with the types of its first parameters fixed.
    fn prepare_typed(
        &mut self,
        sql: &str,
        types: &[Type],
    ) -> impl Future<Output = Result<Statement, Error>> + Send;
}

/// The end of a transaction opened through [`GenericClient::transaction`]: a
/// [`Transaction`] or a [`ClientTransaction`]. This trait is sealed.
pub trait GenericTransaction: GenericClient + Sized {
    /// Commits the transaction (releases the savepoint).
    fn commit(self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Rolls the transaction back (to the savepoint).
    fn rollback(self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Implements the trait by calling the type's own methods of the same names;
/// each type comes with the stream its `query_raw` returns, which may borrow it
/// for `'s`, and the transaction its `transaction` opens, borrowing it for `'t`.
macro_rules! generic_client {
    ($($ty:ty => <$s:lifetime> $stream:ty, <$t:lifetime> $tx:ty),*) => {$(
        impl private::Sealed for $ty {}

        impl GenericClient for $ty {
            type RowStream<$s> = $stream where Self: $s;
            type Transaction<$t> = $tx where Self: $t;

            fn transaction(
                &mut self,
            ) -> impl Future<Output = Result<Self::Transaction<'_>, Error>> + Send {
                <$ty>::transaction(self)
            }

            fn query<T>(
                &mut self,
                statement: &T,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
            {
                <$ty>::query(self, statement, params)
            }

            fn query_one<T>(
                &mut self,
                statement: &T,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Row, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
            {
                <$ty>::query_one(self, statement, params)
            }

            fn query_opt<T>(
                &mut self,
                statement: &T,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Option<Row>, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
            {
                <$ty>::query_opt(self, statement, params)
            }

            fn execute<T>(
                &mut self,
                statement: &T,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<u64, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
            {
                <$ty>::execute(self, statement, params)
            }

            fn query_raw<T, P, I>(
                &mut self,
                statement: &T,
                params: I,
            ) -> impl Future<Output = Result<Self::RowStream<'_>, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
                P: BorrowToSql + Send + Sync,
                I: IntoIterator<Item = P> + Send,
            {
                <$ty>::query_raw(self, statement, params)
            }

            fn execute_raw<T, P, I>(
                &mut self,
                statement: &T,
                params: I,
            ) -> impl Future<Output = Result<u64, Error>> + Send
            where
                T: ?Sized + ToStatement + Sync,
                P: BorrowToSql + Send + Sync,
                I: IntoIterator<Item = P> + Send,
            {
                <$ty>::execute_raw(self, statement, params)
            }

            fn query_typed(
                &mut self,
                sql: &str,
                params: &[(&(dyn ToSql + Sync), Type)],
            ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send {
                <$ty>::query_typed(self, sql, params)
            }

            fn simple_query(
                &mut self,
                sql: &str,
            ) -> impl Future<Output = Result<Vec<SimpleQueryMessage>, Error>> + Send {
                <$ty>::simple_query(self, sql)
            }

            fn batch_execute(&mut self, sql: &str) -> impl Future<Output = Result<(), Error>> + Send {
                <$ty>::batch_execute(self, sql)
            }

            fn prepare(&mut self, sql: &str) -> impl Future<Output = Result<Statement, Error>> + Send {
                <$ty>::prepare(self, sql)
            }

            fn prepare_typed(
                &mut self,
                sql: &str,
                types: &[Type],
            ) -> impl Future<Output = Result<Statement, Error>> + Send {
                <$ty>::prepare_typed(self, sql, types)
            }
        }
    )*};
}

generic_client!(
    Connection => <'s> RowStream<'s>, <'t> Transaction<'t>,
    Transaction<'_> => <'s> RowStream<'s>, <'t> Transaction<'t>,
    Client => <'s> ClientRowStream, <'t> ClientTransaction<'t>,
    ClientTransaction<'_> => <'s> ClientRowStream, <'t> ClientTransaction<'t>
);

/// Ends a transaction through the type's own `commit` and `rollback`.
macro_rules! generic_transaction {
    ($($ty:ty),*) => {$(
        impl GenericTransaction for $ty {
            fn commit(self) -> impl Future<Output = Result<(), Error>> + Send {
                <$ty>::commit(self)
            }

            fn rollback(self) -> impl Future<Output = Result<(), Error>> + Send {
                <$ty>::rollback(self)
            }
        }
    )*};
}

generic_transaction!(Transaction<'_>, ClientTransaction<'_>);
