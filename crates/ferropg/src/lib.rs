//! `ferropg`: a PostgreSQL client for tokio, on ferropg's sans-IO core.
//!
//! A [`Connection`] is one session, owned by one task: its `&mut self` methods
//! write the request and read the response inline, with no background task and no
//! channel in between. Values travel in binary format through `postgres-types`'
//! [`ToSql`] and [`FromSql`], with parameter types taken from the server.
//!
//! ```no_run
//! use ferropg::{Config, Error};
//!
//! # async fn tour() -> Result<(), Error> {
//! let config: Config = "postgresql://postgres@localhost/postgres".parse()?;
//! let mut conn = ferropg::connect(&config).await?;
//!
//! conn.batch_execute("create temp table item (id int4 primary key, name text)").await?;
//! let insert = conn.prepare("insert into item values ($1, $2)").await?;
//! for (id, name) in [(1, "apple"), (2, "pear")] {
//!     conn.execute(&insert, &[&id, &name]).await?;
//! }
//!
//! let row = conn.query_one("select name from item where id = $1", &[&2i32]).await?;
//! let name: &str = row.get("name");
//! assert_eq!(name, "pear");
//!
//! let mut tx = conn.transaction().await?;
//! tx.execute("delete from item", &[]).await?;
//! tx.rollback().await?;
//!
//! match conn.execute(&insert, &[&1i32, &"again"]).await {
//!     Err(e) if e.code() == Some(&ferropg::sqlstate::UNIQUE_VIOLATION) => {}
//!     other => panic!("{other:?}"),
//! }
//! conn.close().await?;
//! # Ok(()) }
//! ```
//!
//! Beyond one-shot queries:
//!
//! - SQL text goes through a per-connection **statement cache** (asyncpg's rules:
//!   [`Config::statement_cache_size`], [`Config::max_cached_statement_lifetime`]),
//!   so a repeated query is one round trip of Bind/Execute/Sync;
//!   [`Connection::prepare_cached`] hands out the cached statement.
//! - [`Connection::query_stream`] yields rows as they arrive ([`RowStream`]);
//!   [`Transaction::bind`] makes a [`Portal`] to fetch in steps.
//! - [`Connection::copy_in`] ([`CopyIn`], [`BinaryCopyIn`]) and
//!   [`Connection::copy_out`] ([`CopyOut`]) run COPY.
//! - [`Connection::notification`] waits for LISTEN/NOTIFY notifications.
//! - [`Connection::set_timeout`] bounds each call: one that takes too long is
//!   cancelled on the server ([`CancelToken`]) and the connection stays usable.
//!
//! - Enums, composites, domains, ranges and multiranges of one's own are learned
//!   from the catalog the first time a statement uses them (see [`types`]).
//!
//! - TLS over TCP with libpq's `sslmode` rules and certificate files (see
//!   [`Config`]), on rustls.
//!
//! Not implemented yet: pipelining several requests, a shared `Client`, pools.

mod cancel;
pub mod config;
mod connect;
mod connection;
mod copy;
mod environment;
mod error;
mod exchange;
mod introspect;
mod notification;
mod row;
mod socket;
mod statement;
mod stream;
mod tls;
mod transaction;
pub mod types;

pub use cancel::CancelToken;
pub use config::Config;
pub use connect::connect;
pub use connection::Connection;
pub use copy::{BinaryCopyIn, CopyIn, CopyOut};
pub use error::{Error, ErrorKind};
pub use ferropg_core::message::TransactionStatus;
/// Quoting for SQL text built from values (literals and identifiers), safe under every
/// setting of `standard_conforming_strings`.
pub use ferropg_core::quote;
pub use ferropg_core::{sqlstate, DbError};
pub use notification::Notification;
pub use postgres_types::{FromSql, ToSql, Type};
pub use row::{Row, RowIndex};
pub use statement::{Column, Statement, ToStatement};
pub use stream::{Portal, RowStream};
pub use transaction::{IsolationLevel, Transaction, TransactionBuilder};
