//! The binary COPY format (`COPY ... (FORMAT binary)`): a file header, tuples of
//! length-prefixed fields, and a trailer. Both faces frame their rows with these; the
//! values inside the fields are each face's to encode.
//!
//! ```
//! use bytes::BytesMut;
//! use ferropg_core::types::copy_binary;
//!
//! let mut buf = BytesMut::new();
//! copy_binary::put_header(&mut buf);
//! copy_binary::begin_tuple(&mut buf, 2).unwrap();
//! let at = copy_binary::begin_field(&mut buf);
//! buf.extend_from_slice(&7i32.to_be_bytes());
//! copy_binary::end_field(&mut buf, at, false).unwrap();
//! let at = copy_binary::begin_field(&mut buf);
//! copy_binary::end_field(&mut buf, at, true).unwrap(); // NULL
//! copy_binary::put_trailer(&mut buf);
//! assert_eq!(buf.len(), 19 + 2 + 4 + 4 + 4 + 2);
//! ```

use bytes::{BufMut, BytesMut};

use super::{begin_length, end_length, EncodeError};

/// The signature, the flags field and the header extension's length (both zero).
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Writes the file header, once, before the first tuple.
pub fn put_header(buf: &mut BytesMut) {
    buf.put_slice(HEADER);
}

/// Writes the trailer (a field count of -1), once, after the last tuple.
pub fn put_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// Starts a tuple of `fields` fields (a table has at most 1600 columns; the count
/// is an Int16).
#[inline]
pub fn begin_tuple(buf: &mut BytesMut, fields: usize) -> Result<(), EncodeError> {
    let count = i16::try_from(fields)
        .map_err(|_| EncodeError(format!("a COPY row cannot have {fields} columns")))?;
    buf.put_i16(count);
    Ok(())
}

/// Reserves a field's length prefix; returns where its value starts, for
/// [`end_field`].
#[inline]
pub fn begin_field(buf: &mut BytesMut) -> usize {
    begin_length(buf)
}

/// Ends the field that began at `start`: its length, or -1 for NULL (whatever was
/// written after `start` is then dropped).
#[inline]
pub fn end_field(buf: &mut BytesMut, start: usize, null: bool) -> Result<(), EncodeError> {
    if null {
        buf.truncate(start);
        buf[start - 4..start].copy_from_slice(&(-1i32).to_be_bytes());
        return Ok(());
    }
    end_length(buf, start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_read_as_the_format_says() {
        let mut buf = BytesMut::new();
        put_header(&mut buf);
        begin_tuple(&mut buf, 2).unwrap();
        let at = begin_field(&mut buf);
        buf.put_slice(b"abc");
        end_field(&mut buf, at, false).unwrap();
        let at = begin_field(&mut buf);
        buf.put_slice(b"ignored");
        end_field(&mut buf, at, true).unwrap();
        put_trailer(&mut buf);
        let mut want = HEADER.to_vec();
        want.extend_from_slice(&2i16.to_be_bytes());
        want.extend_from_slice(&3i32.to_be_bytes());
        want.extend_from_slice(b"abc");
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(&buf[..], &want[..]);
        assert!(begin_tuple(&mut buf, 40_000).is_err());
    }
}
