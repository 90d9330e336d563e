//! Wire messages: a zero-copy parser for what the server sends, and encoders for what
//! the client sends.
//!
//! The parsed server message itself stays inside the core: front ends see the
//! connection's [events](crate::conn::Events) and the borrowed views below, never a
//! message to match on. The `fuzzing` feature opens the parser to fuzz targets.

#[cfg(feature = "fuzzing")]
pub mod backend;
// Some views and helpers of the parser only serve the fuzz targets.
#[cfg(not(feature = "fuzzing"))]
#[allow(dead_code)]
pub(crate) mod backend;
pub mod frontend;

pub use backend::{
    ssl_answer, DataRow, DataRowValues, FieldDescription, ParameterDescription, ParseError,
    RowDescription, SslAnswer, TransactionStatus, MAX_MESSAGE_LEN,
};
pub(crate) use backend::{Authentication, ErrorFields};
