//! Prepared statements, result columns, and [`ToStatement`]: what the query
//! methods accept (SQL text or a prepared [`Statement`]).

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use ferropg_core::message::FieldDescription;
use postgres_types::Type;

/// A result column: its name and type, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_: Type,
    table_oid: Option<u32>,
    column_id: Option<i16>,
}

impl Column {
    pub(crate) fn from_field(field: &FieldDescription<'_>) -> Column {
        Column {
            name: field.name.to_owned(),
            type_: type_from_oid(field.type_oid),
            table_oid: (field.table_oid != 0).then_some(field.table_oid),
            column_id: (field.column_id != 0).then_some(field.column_id),
        }
    }

    /// The same column with a better-known type.
    pub(crate) fn with_type(&self, type_: Type) -> Column {
        Column {
            type_,
            ..self.clone()
        }
    }

    /// The column's name (`?column?` for an unnamed expression).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's PostgreSQL type.
    pub fn type_(&self) -> &Type {
        &self.type_
    }

    /// The OID of the table the column comes from, if it is a table column.
    pub fn table_oid(&self) -> Option<u32> {
        self.table_oid
    }

    /// The column's attribute number in that table, if it is a table column.
    pub fn column_id(&self) -> Option<i16> {
        self.column_id
    }
}

/// The [`Type`] of an OID: a built-in type, or a placeholder named after the OID
/// for the types this client does not introspect (enums, domains, composites,
/// extension types). `postgres-types`' own implementations reject such a type; an
/// implementation of your own can accept it by OID.
pub(crate) fn type_from_oid(oid: u32) -> Type {
    Type::from_oid(oid).unwrap_or_else(|| crate::introspect::placeholder(oid))
}

/// Names of dropped statements, for the connection to close on its next exchange.
pub(crate) type CloseQueue = Arc<Mutex<Vec<String>>>;

/// A statement prepared on one connection with
/// [`Connection::prepare`](crate::Connection::prepare): its parameter types as the
/// server inferred them and its result columns.
///
/// Cloning is cheap. When the last clone is dropped the server-side statement is
/// closed on the connection's next exchange. The statement cache holds clones too:
/// a statement it evicts is closed once no clone of yours remains (see
/// [`Connection::prepare_cached`](crate::Connection::prepare_cached)).
#[derive(Clone)]
pub struct Statement(Arc<Inner>);

struct Inner {
    name: String,
    /// Its SQL text, parsed again as the unnamed statement behind a transaction-mode
    /// pooler (where the named one may not exist in the session a request reaches).
    sql: Arc<str>,
    connection_id: u64,
    params: Vec<Type>,
    columns: Arc<[Column]>,
    close_queue: Weak<Mutex<Vec<String>>>,
}

impl Statement {
    pub(crate) fn new(
        name: String,
        sql: &str,
        connection_id: u64,
        params: Vec<Type>,
        columns: Arc<[Column]>,
        close_queue: &CloseQueue,
    ) -> Statement {
        Statement(Arc::new(Inner {
            name,
            sql: Arc::from(sql),
            connection_id,
            params,
            columns,
            close_queue: Arc::downgrade(close_queue),
        }))
    }

    /// The unnamed statement, just described: never closed (the next Parse of an
    /// unnamed statement replaces it).
    pub(crate) fn unnamed(
        sql: &str,
        connection_id: u64,
        params: Vec<Type>,
        columns: Arc<[Column]>,
    ) -> Statement {
        Statement(Arc::new(Inner {
            name: String::new(),
            sql: Arc::from(sql),
            connection_id,
            params,
            columns,
            close_queue: Weak::new(),
        }))
    }

    /// The statement's name on the server (empty for the unnamed statement).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The SQL text it was prepared from.
    pub fn sql(&self) -> &str {
        &self.0.sql
    }

    /// The parameter types, `$1` first.
    pub fn params(&self) -> &[Type] {
        &self.0.params
    }

    /// The result columns (empty for a statement that returns no rows).
    pub fn columns(&self) -> &[Column] {
        &self.0.columns
    }

    pub(crate) fn columns_arc(&self) -> &Arc<[Column]> {
        &self.0.columns
    }

    pub(crate) fn connection_id(&self) -> u64 {
        self.0.connection_id
    }
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statement")
            .field("name", &self.0.name)
            .field("params", &self.0.params)
            .field("columns", &self.0.columns)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(queue) = self.close_queue.upgrade() {
            let mut names = queue.lock().unwrap_or_else(|p| p.into_inner());
            names.push(std::mem::take(&mut self.name));
        }
    }
}

/// The name of a statement being prepared: if the preparation is abandoned (its
/// future dropped) or fails after the server may have created the statement, the
/// name is queued for closing. [`PendingName::into_name`] hands it over to the
/// [`Statement`] made from it.
pub(crate) struct PendingName {
    name: String,
    close_queue: Weak<Mutex<Vec<String>>>,
}

impl PendingName {
    pub(crate) fn new(name: String, close_queue: &CloseQueue) -> PendingName {
        PendingName {
            name,
            close_queue: Arc::downgrade(close_queue),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Disarms the guard.
    pub(crate) fn into_name(mut self) -> String {
        self.close_queue = Weak::new();
        std::mem::take(&mut self.name)
    }
}

impl Drop for PendingName {
    fn drop(&mut self) {
        // Closing a statement that does not exist is not an error.
        if let Some(queue) = self.close_queue.upgrade() {
            let mut names = queue.lock().unwrap_or_else(|p| p.into_inner());
            names.push(std::mem::take(&mut self.name));
        }
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for super::Statement {}
}

/// What a query runs: SQL text or a prepared statement.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Sql(&'a str),
    Prepared(&'a Statement),
}

/// Something the query methods can run: `str` or `String` (SQL text, prepared
/// through the connection's statement cache, or as the unnamed statement each time
/// when the cache is off) or a [`Statement`] (prepared once with
/// [`Connection::prepare`](crate::Connection::prepare)).
///
/// This trait is sealed.
pub trait ToStatement: private::Sealed {
    #[doc(hidden)]
    fn __source(&self) -> Source<'_>;
}

impl ToStatement for str {
    fn __source(&self) -> Source<'_> {
        Source::Sql(self)
    }
}

impl ToStatement for String {
    fn __source(&self) -> Source<'_> {
        Source::Sql(self)
    }
}

impl ToStatement for Statement {
    fn __source(&self) -> Source<'_> {
        Source::Prepared(self)
    }
}
