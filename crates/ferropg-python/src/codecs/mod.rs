//! Conversions between PostgreSQL's binary values and Python objects.
//!
//! Decoding goes straight from the wire bytes to Python objects through the C API;
//! the byte-level rules (numeric digits, day counts, infinities) live in
//! `ferropg_core::types` and are shared with the Rust face.

mod array;
mod cache;
mod decode;
mod dynamic;
mod encode;
mod geometry;
mod ids;
mod network;
mod pytypes;
mod registry;

pub use cache::{uuid_type, Cache};
pub use decode::{decode_value, is_untracked_uuid, Decoder};
pub use encode::{encode_value, Encoder};
pub use registry::{Alias, CustomCodec, Format, Registry, Shape, TypeInfo};
