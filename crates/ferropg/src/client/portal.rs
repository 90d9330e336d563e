//! [`ClientPortal`]: a named portal inside a [`ClientTransaction`], its rows
//! fetched in steps with [`ClientTransaction::query_portal`] (tokio-postgres's
//! `Transaction::bind` and `query_portal`).

use std::fmt;
use std::sync::Arc;

use ferropg_core::names;
use postgres_types::{BorrowToSql, ToSql};

use super::feed::FeedHandle;
use super::requests::Bound;
use super::shared::{ReplyTo, State, Waiting};
use super::{Client, ClientRowStream, ClientTransaction};
use crate::connection::bind_statement;
use crate::exchange::Response;
use crate::portal::{fetched, Fetch};
use crate::row::Row;
use crate::statement::{Column, Source, Statement, ToStatement};
use crate::Error;

/// A named portal on a [`Client`]: a statement bound with its parameters inside a
/// [`ClientTransaction`], whose rows are fetched in steps with
/// [`ClientTransaction::query_portal`] (an Execute with a row limit each time).
/// Made by [`ClientTransaction::bind`] or [`ClientTransaction::bind_raw`].
///
/// It borrows the transaction, so it cannot outlive it: a portal lives on the
/// server only until the end of its transaction. Dropped, it is closed on the
/// server with the client's next request (and in any case when the transaction
/// ends). Other calls through the transaction, from concurrent futures too, may
/// run between the steps; each step is a request of its own, pipelined with
/// theirs.
///
/// ```no_run
/// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
/// let tx = client.transaction().await?;
/// let portal = tx.bind("select g from generate_series(1, $1) g", &[&1000i32]).await?;
/// loop {
///     let rows = tx.query_portal(&portal, 100).await?;
///     if rows.is_empty() {
///         break;
///     }
///     for row in rows {
///         let g: i32 = row.get(0);
///     }
/// }
/// drop(portal);
/// tx.commit().await?;
/// # Ok(()) }
/// ```
pub struct ClientPortal<'t> {
    client: &'t Client,
    /// The portal's name on the server; empty once there is nothing to close.
    name: String,
    columns: Arc<[Column]>,
    /// The statement bound: closing it on the server would close the portal.
    statement: Statement,
}

impl ClientPortal<'_> {
    /// The result columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The portal's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Fails unless the portal was bound on `client`.
    fn check(&self, client: &Client) -> Result<(), Error> {
        if Arc::ptr_eq(&self.client.shared, &client.shared) {
            Ok(())
        } else {
            Err(Error::wrong_client_portal())
        }
    }

    /// The next step of up to `max_rows` rows.
    fn fetch(&self, max_rows: i32) -> Fetch<'_> {
        Fetch::new(&self.name, &self.columns, max_rows)
    }

    /// A portal the server never bound: nothing to close.
    fn forget(&mut self) {
        self.name.clear();
    }
}

impl fmt::Debug for ClientPortal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPortal")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl Drop for ClientPortal<'_> {
    /// Leaves the Close to go out ahead of the client's next request, as a
    /// dropped statement's does: nothing waits for it, and the end of the
    /// transaction, itself a request, closes the portal in any case.
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let name = std::mem::take(&mut self.name);
            self.client.shared.lock().portals_to_close.push(name);
        }
    }
}

impl Client {
    /// Binds `source` to a new named portal, in one round trip (SQL text not yet
    /// cached is prepared first, for its parameter and column types).
    async fn bind_portal<P: BorrowToSql>(
        &self,
        source: Source<'_>,
        params: &[P],
    ) -> Result<ClientPortal<'_>, Error> {
        let Bound {
            statement,
            columns,
            cached,
        } = self.bound(source, params.len()).await?;
        let mut portal = ClientPortal {
            client: self,
            name: names::next_unique_name("portal"),
            columns,
            statement,
        };
        let resp = Response {
            columns: Some(portal.columns.clone()),
            ..Response::default()
        };
        let mut by_name = false;
        let submitted = self.shared.submit(resp, |state, mut op| {
            // Bound as the client's other calls bind (see `State::binds_unnamed`):
            // behind a pooler the statement is parsed again in this request, which
            // reaches the transaction's server session as every request in it does.
            let pooler = state.binds_unnamed();
            let mut wire = state.core.request(&mut state.write_buf);
            by_name = bind_statement(&mut wire, &portal.name, &portal.statement, params, pooler)?;
            if !by_name {
                // Parsed again: the portal's description gives the columns as
                // they are now, should the result type have changed.
                wire.describe_portal(&portal.name)?;
                op.resp.describe = true;
            }
            wire.send(op);
            Ok(())
        });
        let reply = match submitted {
            Ok(reply) => reply,
            Err(e) => {
                portal.forget();
                return Err(e);
            }
        };
        // From here, should this future be dropped, the portal's Drop closes it.
        let mut resp = reply.response().await?;
        if let Some(db) = resp.error.take() {
            portal.forget();
            let err = Error::db(db);
            // Never run again here: inside a transaction block the failed Bind
            // aborted the transaction.
            self.statement_failed(&err, cached, by_name);
            return Err(err);
        }
        if !by_name {
            if let Some(columns) = resp.columns.take() {
                portal.columns = self.learned_columns(&columns).await?;
            }
        }
        Ok(portal)
    }
}

impl ClientTransaction<'_> {
    /// Binds a statement (SQL text or a [`Statement`]) and its parameters to a new
    /// named [`ClientPortal`], whose rows [`query_portal`](ClientTransaction::query_portal)
    /// then fetches in steps, as tokio-postgres's `Transaction::bind`. The portal
    /// borrows the transaction: drop it before the commit.
    ///
    /// ```no_run
    /// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
    /// let tx = client.transaction().await?;
    /// let portal = tx.bind("select id from item where id > $1", &[&100i32]).await?;
    /// let first_ten = tx.query_portal(&portal, 10).await?;
    /// drop(portal);
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn bind<T>(
        &self,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<ClientPortal<'_>, Error>
    where
        T: ?Sized + ToStatement,
    {
        self.client()
            .bind_portal(statement.__source(), params)
            .await
    }

    /// [`bind`](ClientTransaction::bind) with the parameters given by an iterator
    /// (of values, references, `&dyn ToSql`, boxed values: anything
    /// [`BorrowToSql`]), as tokio-postgres's `bind_raw`.
    ///
    /// ```no_run
    /// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
    /// let tx = client.transaction().await?;
    /// let portal = tx
    ///     .bind_raw("select g from generate_series($1::int4, $2::int4) g", [1i32, 50])
    ///     .await?;
    /// let rows = tx.query_portal(&portal, 20).await?;
    /// assert_eq!(rows.len(), 20);
    /// # Ok(()) }
    /// ```
    pub async fn bind_raw<T, P, I>(
        &self,
        statement: &T,
        params: I,
    ) -> Result<ClientPortal<'_>, Error>
    where
        T: ?Sized + ToStatement,
        P: BorrowToSql,
        I: IntoIterator<Item = P>,
    {
        let params: Vec<P> = params.into_iter().collect();
        self.client()
            .bind_portal(statement.__source(), &params)
            .await
    }

    /// Fetches the next `max_rows` rows of `portal` (0 or less: all the rest), in
    /// one round trip, as tokio-postgres's `query_portal`. Fewer rows than asked
    /// means the portal ran out; after that each call returns no rows. A portal
    /// bound on another client is refused with an error of kind
    /// [`WrongConnection`](crate::ErrorKind::WrongConnection).
    ///
    /// ```no_run
    /// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
    /// let tx = client.transaction().await?;
    /// let portal = tx.bind("select g from generate_series(1, 7) g", &[]).await?;
    /// assert_eq!(tx.query_portal(&portal, 5).await?.len(), 5);
    /// assert_eq!(tx.query_portal(&portal, 5).await?.len(), 2);
    /// assert!(tx.query_portal(&portal, 5).await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn query_portal(
        &self,
        portal: &ClientPortal<'_>,
        max_rows: i32,
    ) -> Result<Vec<Row>, Error> {
        portal.check(self.client())?;
        let fetch = portal.fetch(max_rows);
        let reply = self
            .client()
            .shared
            .submit(fetch.response(true), write_fetch(&fetch))?;
        let mut resp = reply.response().await?;
        if let Some(db) = resp.error.take() {
            return Err(Error::db(db));
        }
        Ok(fetched(&mut resp).0)
    }

    /// [`query_portal`](ClientTransaction::query_portal) with the step's rows as
    /// they arrive, as tokio-postgres's `query_portal_raw`: a
    /// [`ClientRowStream`], which does not borrow the portal (read it to its end
    /// before the transaction ends).
    ///
    /// ```no_run
    /// # async fn f(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
    /// use futures_util::TryStreamExt;
    ///
    /// let tx = client.transaction().await?;
    /// let portal = tx.bind("select g from generate_series(1, 1000) g", &[]).await?;
    /// let step: Vec<ferropg::Row> = tx.query_portal_raw(&portal, 100).await?.try_collect().await?;
    /// assert_eq!(step.len(), 100);
    /// # Ok(()) }
    /// ```
    pub async fn query_portal_raw(
        &self,
        portal: &ClientPortal<'_>,
        max_rows: i32,
    ) -> Result<ClientRowStream, Error> {
        portal.check(self.client())?;
        let feed = FeedHandle::new();
        let fetch = portal.fetch(max_rows);
        let reply = ReplyTo::Rows(feed.sender());
        self.client()
            .shared
            .submit_to(fetch.response(false), reply, write_fetch(&fetch))?;
        Ok(ClientRowStream::new(
            feed,
            portal.statement.clone(),
            portal.columns.clone(),
            false,
            Arc::clone(&portal.client.shared),
        ))
    }
}

/// The request of a step: queued whole, under the client's lock, with whatever
/// other tasks queue before and after it.
fn write_fetch<'f>(
    fetch: &'f Fetch<'_>,
) -> impl FnOnce(&mut State, Waiting) -> Result<(), Error> + 'f {
    move |state, op| {
        let mut wire = state.core.request(&mut state.write_buf);
        fetch.write(&mut wire)?;
        wire.send(op);
        Ok(())
    }
}
