//! Type OIDs and binary codec primitives shared by both front ends.
//!
//! Each function here works on byte slices and plain Rust values; turning those into
//! Python objects or `postgres-types` values is the front ends' job.

pub mod array;
pub mod binary;
pub mod datetime;
pub mod geometry;
pub mod network;
pub mod numeric;
pub mod oid;
pub mod range;
pub mod record;
pub mod text_array;

use std::fmt;

/// A binary value from the server did not have the shape its type requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

/// A client value cannot be represented in the PostgreSQL type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}
