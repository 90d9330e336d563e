//! ferropg-core: the sans-IO heart of ferropg.
//!
//! Bytes in, bytes out: this crate parses what a PostgreSQL server sends, encodes what
//! a client sends, runs startup and authentication, tracks pending operations, and
//! converts binary values. It never touches a socket, a clock or a runtime, so the
//! Python face (an asyncio protocol) and the Rust face (tokio) drive the same code.

pub mod auth;
pub mod config;
pub mod conn;
pub mod error;
pub mod introspect;
pub mod message;
pub mod names;
pub mod placeholders;
pub mod pooler;
pub mod quote;
pub mod reset;
pub mod sqlstate;
pub mod statement_cache;
pub mod types;

pub use error::{DbError, Error, ErrorPosition, Severity};
