//! `ferropg`: a PostgreSQL client for tokio, on ferropg's sans-IO core.
//!
//! Two ways to hold a session:
//!
//! - A [`Connection`] is owned by one task: its `&mut self` methods write the
//!   request and read the response inline, with no background task and no channel
//!   in between. It has everything: COPY, row streams, portals, per-call timeouts.
//! - A [`Client`] is shared by many tasks through `&self` (in an `Arc`), with a
//!   [`ClientDriver`] future doing its I/O ([`connect_client`], or
//!   [`Client::connect`], which spawns the driver). Concurrent requests are
//!   **pipelined**: written back to back without waiting for earlier replies, their
//!   replies matched to callers in order, the statement cache shared by all.
//!   A dropped call's future disturbs no other task.
//!
//! A [`Pool`] hands out shared clients to tasks one at a time ([`PooledClient`]),
//! resetting each session at release to a clean one and paying only for what it
//! may have changed ([`ResetPolicy`]); acquire and release are cancel-safe.
//!
//! [`GenericClient`] takes a connection or a client (`&mut *pooled` for a pooled
//! one), and their transactions: the query methods, the raw ones (parameters from
//! an iterator), `query_typed` and `simple_query`.
//!
//! Runnable examples are in the repository's `examples/rust/`: `tour` (a
//! [`Connection`] end to end), `web_pool` (an HTTP handler on a [`Pool`]),
//! `stream_large` (a million rows streamed, and as binary COPY), `copy` (COPY in
//! and out), `listen` (notifications as a stream) and `retry_transactions`
//! (serializable transactions retried on serialization failure).
//!
//! Values travel in binary format through `postgres-types'` [`ToSql`] and
//! [`FromSql`], with parameter types taken from the server.
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
//!     Err(e) if e.code() == Some(&ferropg::SqlState::UNIQUE_VIOLATION) => {}
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
//! - [`Connection::query_stream`] and `query_raw` (parameters from an iterator)
//!   yield rows as they arrive ([`RowStream`]); [`Transaction::bind`] makes a
//!   [`Portal`] to fetch in steps ([`ClientTransaction::bind`] a [`ClientPortal`],
//!   on a [`Client`]).
//! - [`Connection::copy_in`] ([`CopyIn`], [`BinaryCopyIn`]) and
//!   [`Connection::copy_out`] ([`CopyOut`], [`BinaryCopyOutStream`]) run COPY.
//! - The streams are `futures` [`Stream`](futures_core::Stream)s and [`CopyIn`]
//!   is a [`Sink`](futures_sink::Sink)`<Bytes>`, so `StreamExt`, `TryStreamExt`
//!   and `SinkExt` work on them (each stream also has its own `next()`).
//! - [`Connection::simple_query`] returns text rows and row counts
//!   ([`SimpleQueryMessage`]); [`Connection::query_typed`] runs a statement with
//!   the parameter types given, in one round trip, without preparing it.
//! - A [`Batch`] of statements goes out in one write, with one Sync (all or
//!   nothing: `batch_atomic`) or one per statement (`batch_independent`);
//!   `execute_many` runs a statement for each row of an iterator, pipelined in
//!   Sync groups, reading the input only a few groups ahead.
//! - [`Connection::notification`] and [`Connection::notifications`] (a stream)
//!   wait for LISTEN/NOTIFY notifications.
//! - [`Connection::set_timeout`] bounds each call: one that takes too long is
//!   cancelled on the server ([`CancelToken`]) and the connection stays usable.
//!   With no timeout set, no timer exists: a stream pays nothing per row for it.
//!
//! - Enums, composites, domains, ranges and multiranges of one's own are learned
//!   from the catalog the first time a statement uses them (see [`types`]).
//!
//! - TLS over TCP on rustls, with libpq's `sslmode` rules, certificate files and
//!   revocation lists, `sslrootcert=system`, direct TLS, or a `ClientConfig` of
//!   one's own (see [TLS](#tls)); SCRAM-SHA-256-PLUS binds the password exchange
//!   to the TLS connection (`channel_binding=disable|prefer|require`, as in libpq).
//!
//! - [`Client`]: concurrent calls from many tasks pipelined on one session
//!   ([`ClientTransaction`] for exclusive use); [`Connection::into_client`] turns
//!   an open connection into one.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! # async fn shared() -> Result<(), ferropg::Error> {
//! let config: ferropg::Config = "postgresql://postgres@localhost/postgres".parse()?;
//! let (client, driver) = ferropg::connect_client(&config).await?;
//! tokio::spawn(driver);
//! let client = Arc::new(client);
//! let (a, b) = tokio::join!(
//!     client.query_one("select $1::int4 + 1", &[&1i32]),
//!     client.query_one("select $1::int4 + 1", &[&2i32]),
//! );
//! assert_eq!((a?.get::<_, i32>(0), b?.get::<_, i32>(0)), (2, 3));
//! # Ok(()) }
//! ```
//!
//! A [`Client`] has the row stream ([`Client::query_raw`], a [`ClientRowStream`]
//! whose bounded queue makes the driver stop reading while its reader lags),
//! COPY OUT ([`ClientCopyOut`]) and COPY IN ([`ClientCopyIn`], during which other
//! tasks' requests wait), notifications as a stream ([`ClientNotifications`]),
//! batches and `execute_many`, [`Client::build_transaction`], and portals inside
//! a transaction ([`ClientTransaction::bind`] and
//! [`query_portal`](ClientTransaction::query_portal), each step pipelined with
//! the other calls). Over TCP and Unix sockets a caller whose request finds the
//! connection idle writes it itself, without waking the driver. Per-call
//! timeouts are on [`Connection`] only.
//!
//! ```no_run
//! use futures_util::TryStreamExt;
//!
//! # async fn batches(client: &mut ferropg::Client) -> Result<(), ferropg::Error> {
//! let mut batch = ferropg::Batch::new();
//! batch
//!     .execute("create temp table t (id int4, name text)", &[])
//!     .execute("insert into t values (1, 'one'), (2, 'two')", &[])
//!     .query("select count(*) from t", &[]);
//! let results = client.batch_atomic(&batch).await?;
//! assert_eq!(results[1].rows_affected(), 2);
//!
//! let tx = client.transaction().await?;
//! let rows = (3..10_000i32).map(|i| [i]);
//! tx.execute_many("insert into t (id) values ($1)", rows).await?;
//! tx.commit().await?;
//!
//! let mut ids = client.query_raw("select id from t order by id", [0i32; 0]).await?;
//! while let Some(row) = ids.try_next().await? {
//!     let id: i32 = row.get(0);
//! }
//! # Ok(()) }
//! ```
//!
//! # TLS
//!
//! TLS is rustls, driven by libpq's settings (in the DSN, the connection service or
//! the `PGSSL*` variables):
//!
//! - `sslmode` decides whether TLS is used and what is checked (see [`Config`]).
//! - `sslrootcert=<file>`, `sslcert`, `sslkey` (else `~/.postgresql/root.crt`,
//!   `postgresql.crt`, `postgresql.key`): the roots a chain must lead to and the
//!   client's certificate.
//! - `sslcrl=<file>` and `sslcrldir=<dir>` (else `~/.postgresql/root.crl`): PEM
//!   revocation lists; a checked chain with a revoked certificate in it fails the
//!   handshake. Every certificate of the chain needs a list from its issuer (as
//!   OpenSSL's check for libpq does), and an expired list fails too. A directory
//!   is read as OpenSSL reads it: only the names `openssl rehash` makes
//!   (`<hash>.r<n>`). A list named but unreadable is an error (libpq would go on
//!   without it).
//! - `sslrootcert=system` (libpq 16) trusts the platform's roots, makes
//!   `verify-full` the default and refuses weaker modes. Which roots those are is
//!   up to two features, either or both: `native-roots` reads the platform's trust
//!   store with rustls-native-certs (on Linux, the OpenSSL locations, or the files
//!   `SSL_CERT_FILE` and `SSL_CERT_DIR` name), once per process; `webpki-roots`
//!   takes Mozilla's roots compiled in (for machines without a trust store). With
//!   neither, `sslrootcert=system` is refused. The explicit `sslcrl`/`sslcrldir`
//!   apply to them too.
//! - `sslnegotiation=direct` (libpq 17) starts the TLS handshake at once, without
//!   an SSLRequest, offering ALPN `postgresql` and requiring the server to choose
//!   it. It needs PostgreSQL 17 or a TLS-terminating proxy, and `sslmode` `require`
//!   or stronger: a server that cannot do TLS cannot be fallen back on.
//!
//! A failed handshake's error names what the certificate was checked against.
//!
//! To build the TLS configuration oneself (other roots, a custom verifier, client
//! certificates from elsewhere, session resumption, key logging), pass a
//! `rustls::ClientConfig` to [`Config::tls_config`], naming rustls through
//! [`ferropg::rustls`](crate::rustls) so that the versions agree. The files above
//! are then not read; `sslmode` still says whether TLS is used, `sslnegotiation`
//! how it starts; the ALPN protocol is set to `postgresql`. Channel binding works
//! with it as with the others: it binds to the certificate the server presents.
//!
//! The crypto provider is chosen by features: `ring` (the default) or
//! `aws-lc-rs` (`default-features = false, features = ["aws-lc-rs"]`; with both,
//! aws-lc-rs). A process default installed with
//! `rustls::crypto::CryptoProvider::install_default` comes first, as in rustls;
//! with neither feature one must be installed. (A [`Config::tls_config`] carries
//! its own provider.)
//!
//! ```toml
//! [dependencies]
//! ferropg = { version = "0.1", features = ["native-roots"] }
//! ```
//!
//! ```no_run
//! # async fn f() -> Result<(), ferropg::Error> {
//! // The platform's roots, the host name checked (verify-full).
//! let config: ferropg::Config = "postgresql://app@db.example/shop?sslrootcert=system".parse()?;
//! let conn = ferropg::connect(&config).await?;
//! # Ok(()) }
//! ```
//!
//! # Type features
//!
//! Conversions for other crates' types are off by default. Each feature has the name
//! tokio-postgres 0.7 gives it and turns on `postgres-types`' feature of that name,
//! which holds the impls; one names the types through one's own dependency on the
//! crate, in the major version the feature names:
//!
//! ```toml
//! [dependencies]
//! ferropg = { version = "0.1", features = ["with-chrono-0_4", "with-uuid-1"] }
//! chrono = "0.4"
//! uuid = "1"
//! ```
//!
//! | Feature | Rust types | PostgreSQL types |
//! |---|---|---|
//! | `with-chrono-0_4` | `chrono::NaiveDate`, `NaiveTime`, `NaiveDateTime`; `DateTime<Utc>`, `DateTime<Local>`, `DateTime<FixedOffset>` | `date`, `time`, `timestamp`; `timestamptz` |
//! | `with-time-0_3` | `time::Date`, `Time`, `PrimitiveDateTime`; `OffsetDateTime` | `date`, `time`, `timestamp`; `timestamptz` |
//! | `with-jiff-0_2` | `jiff::civil::Date`, `civil::Time`, `civil::DateTime`; `jiff::Timestamp` | `date`, `time`, `timestamp`; `timestamptz` |
//! | `with-uuid-1` | `uuid::Uuid` | `uuid` |
//! | `with-serde_json-1` | `serde_json::Value`; `ferropg::types::Json<T>` for any serde type `T` | `json`, `jsonb` |
//! | `with-cidr-0_2` | `cidr::IpCidr`; `cidr::IpInet` | `cidr`; `inet` |
//! | `with-geo-types-0_7` | `geo_types::Point<f64>`, `Rect<f64>`, `LineString<f64>` | `point`, `box`, `path` |
//! | `with-bit-vec-0_6` | `bit_vec::BitVec` | `bit`, `varbit` |
//! | `with-eui48-1` | `eui48::MacAddress` | `macaddr` |
//! | `array-impls` | `[T; N]` for any `T` that converts; `[u8; N]` (sent only) | arrays of `T`'s type, of exactly `N` elements; `bytea` |
//!
//! Each type also goes as `Option<T>` (NULL) and `Vec<T>` (arrays). `timestamptz`
//! holds an instant: a `DateTime<FixedOffset>` or `OffsetDateTime` comes back at
//! UTC. `infinity` and `-infinity` decode only into [`types::Date`] and
//! [`types::Timestamp`] around the feature's type. A `LineString` is always sent as
//! an open path.
//!
//! `numeric` has no feature: `rust_decimal` implements the traits itself, for
//! `postgres-types` 0.2, with its `db-tokio-postgres` feature (which does not bring
//! in tokio-postgres):
//!
//! ```toml
//! [dependencies]
//! rust_decimal = { version = "1", features = ["db-tokio-postgres"] }
//! ```
//!
//! They apply to ferropg because Cargo resolves one `postgres-types` 0.2 for both
//! crates (`cargo tree -i postgres-types` shows the one copy; were they ever two,
//! `Decimal` would not be `ferropg::types::ToSql`). `Decimal` holds neither `NaN`
//! nor the infinities nor numbers beyond its 96 bits, so decoding those is an
//! error; [`types::Numeric`] carries any `numeric` as exact text.
//!
//! # Derives
//!
//! The derives `FromSql` and `ToSql` for one's own enums, composites and domains
//! are `postgres-types`' (see its docs for the `#[postgres(...)]` attributes),
//! re-exported in [`types`] with the traits. The code they generate names the crate
//! `postgres_types` by absolute path (`::postgres_types::Kind`, ...), which resolves
//! only to a dependency of the crate that uses the derive, so `postgres-types` must
//! be one of its dependencies, under that name (not renamed) and at 0.2 (Cargo then
//! uses ferropg's copy, so the traits are the same):
//!
//! ```toml
//! [dependencies]
//! ferropg = "0.1"
//! postgres-types = "0.2"
//! ```
//!
//! ```
//! use ferropg::types::{FromSql, ToSql};
//!
//! #[derive(Debug, ToSql, FromSql)]
//! #[postgres(name = "mood")]
//! enum Mood {
//!     #[postgres(name = "happy")]
//!     Happy,
//!     #[postgres(name = "sad")]
//!     Sad,
//! }
//! ```
//!
//! (Enabling `postgres-types`' own `derive` feature and deriving
//! `postgres_types::ToSql` is the same thing.) ferropg has no `derive` feature:
//! the derives come with the traits anyway, and a feature could not spare the
//! dependency above. Nor is there a ferropg derive crate:
//! `postgres-derive` cannot be pointed at another path, so one that needed only
//! ferropg would be a copy of its 900 lines, with the private helpers it calls
//! re-exported from ferropg.

mod batch;
mod binary_copy;
mod cancel;
mod client;
pub mod config;
mod connect;
mod connection;
mod copy;
mod environment;
mod error;
mod exchange;
mod generic;
mod introspect;
mod notification;
mod pipeline;
mod pool;
mod portal;
mod row;
mod simple;
mod socket;
mod statement;
mod stream;
mod tls;
mod transaction;
pub mod types;

pub use batch::{Batch, BatchResult};
pub use binary_copy::{BinaryCopyIn, BinaryCopyOutRow, BinaryCopyOutStream, CopyTarget};
pub use cancel::CancelToken;
pub use client::{
    connect_client, Client, ClientCopyIn, ClientCopyOut, ClientDriver, ClientNotifications,
    ClientPortal, ClientRowStream, ClientTransaction, ClientTransactionBuilder,
};
pub use config::Config;
pub use connect::connect;
pub use connection::Connection;
pub use copy::{CopyIn, CopyOut};
pub use error::{Error, ErrorKind};
pub use ferropg_core::message::TransactionStatus;
/// Quoting for SQL text built from values (literals and identifiers), safe under every
/// setting of `standard_conforming_strings`.
pub use ferropg_core::quote;
pub use ferropg_core::reset::ResetPolicy;
pub use ferropg_core::sqlstate::{self, SqlState};
pub use ferropg_core::{DbError, ErrorPosition, Severity};
pub use generic::{GenericClient, GenericTransaction};
pub use notification::{Notification, Notifications};
pub use pool::{HookFuture, Pool, PoolBuilder, PooledClient};
pub use postgres_types::{FromSql, ToSql, Type};
pub use row::{Row, RowIndex};
pub use simple::{SimpleQueryMessage, SimpleQueryRow};
pub use statement::{Column, Statement, ToStatement};
pub use stream::{Portal, RowStream};
/// The rustls ferropg is built on, for [`Config::tls_config`]: naming its types
/// through here keeps them the version ferropg takes.
pub use tokio_rustls::rustls;
pub use transaction::{IsolationLevel, Transaction, TransactionBuilder};
