//! [`GenericClient`]: code that runs statements without caring what it runs them
//! on.

use std::future::Future;

use postgres_types::{ToSql, Type};

use crate::client::{Client, ClientTransaction};
use crate::row::Row;
use crate::statement::{Statement, ToStatement};
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
/// A [`PooledClient`](crate::PooledClient) lends its client as `&mut *pooled`.
/// (It does not implement the trait itself: with the trait in scope, its calls
/// would then need `&mut` where the client's take `&`.)
///
/// This trait is sealed.
pub trait GenericClient: private::Sealed {
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

/// Implements the trait by calling the type's own methods of the same names.
macro_rules! generic_client {
    ($($ty:ty),*) => {$(
        impl private::Sealed for $ty {}

        impl GenericClient for $ty {
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

generic_client!(Connection, Transaction<'_>, Client, ClientTransaction<'_>);
