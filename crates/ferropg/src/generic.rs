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
/// There is no `transaction()` here: the two faces' transactions are types of
/// their own, and generic code could not commit one without a second trait.
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

/// Implements the trait by calling the type's own methods of the same names;
/// each type comes with the stream its `query_raw` returns, which may borrow it
/// for `'s`.
macro_rules! generic_client {
    ($($ty:ty => <$s:lifetime> $stream:ty),*) => {$(
        impl private::Sealed for $ty {}

        impl GenericClient for $ty {
            type RowStream<$s> = $stream where Self: $s;

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
    Connection => <'s> RowStream<'s>,
    Transaction<'_> => <'s> RowStream<'s>,
    Client => <'s> ClientRowStream,
    ClientTransaction<'_> => <'s> ClientRowStream
);
