//! Type OIDs and binary codec primitives shared by both front ends.
//!
//! Each function here works on byte slices and plain Rust values; turning those into
//! Python objects or `postgres-types` values is the front ends' job.

pub mod array;
pub mod binary;
pub mod catalog;
pub mod copy_binary;
pub mod datetime;
pub mod geometry;
pub mod network;
pub mod numeric;
pub mod oid;
pub mod range;
pub mod record;
pub mod text_array;

use std::fmt;

use bytes::{BufMut, BytesMut};

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

/// Reserves an Int32 length prefix for a value about to be written; returns where the
/// value starts, for [`end_length`].
#[inline]
pub fn begin_length(buf: &mut BytesMut) -> usize {
    buf.put_i32(0);
    buf.len()
}

/// Fills in the length prefix of the value that began at `start` (see [`begin_length`]).
#[inline]
pub fn end_length(buf: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    let len = i32::try_from(buf.len() - start)
        .map_err(|_| EncodeError("value too large for its length prefix".into()))?;
    buf[start - 4..start].copy_from_slice(&len.to_be_bytes());
    Ok(())
}
