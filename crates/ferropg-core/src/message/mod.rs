//! Wire messages: a zero-copy parser for what the server sends, and encoders for what
//! the client sends.

pub mod backend;
pub mod frontend;

pub use backend::{
    parse_message, Authentication, DataRow, ErrorFields, FieldDescription, Message,
    ParameterDescription, ParseError, RowDescription, TransactionStatus,
};
