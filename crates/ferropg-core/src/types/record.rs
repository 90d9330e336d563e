//! The binary form of a composite value (`record_send`): an Int32 field count, then per
//! field its type OID (UInt32) and an Int32 length (-1 for NULL) followed by the bytes.

use bytes::{BufMut, BytesMut};

use super::{DecodeError, EncodeError};

/// The fields of one composite value, read in order.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    left: usize,
}

/// One field: its type OID and its bytes (`None` for NULL).
pub type Field<'a> = (u32, Option<&'a [u8]>);

/// Reads the field count; the fields follow through the returned iterator.
pub fn parse(buf: &[u8]) -> Result<Fields<'_>, DecodeError> {
    let (count, rest) = buf
        .split_first_chunk::<4>()
        .ok_or(DecodeError("composite value too short"))?;
    let count = i32::from_be_bytes(*count);
    // Each field takes at least 8 bytes, so a count beyond that is a lie.
    if count < 0 || count as usize > rest.len() / 8 {
        return Err(DecodeError("invalid composite field count"));
    }
    Ok(Fields {
        rest,
        left: count as usize,
    })
}

impl<'a> Fields<'a> {
    /// How many fields the value says it has (and are not yet read).
    pub fn len(&self) -> usize {
        self.left
    }

    /// True when every field was read.
    pub fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Checks that nothing follows the last field.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.left != 0 || !self.rest.is_empty() {
            return Err(DecodeError("trailing data after composite fields"));
        }
        Ok(())
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let short = DecodeError("composite field truncated");
        let Some((oid, tail)) = self.rest.split_first_chunk::<4>() else {
            return Some(Err(short));
        };
        let Some((len, tail)) = tail.split_first_chunk::<4>() else {
            return Some(Err(short));
        };
        let oid = u32::from_be_bytes(*oid);
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            if len != -1 {
                return Some(Err(DecodeError("invalid composite field length")));
            }
            self.rest = tail;
            return Some(Ok((oid, None)));
        }
        let Some((value, tail)) = tail.split_at_checked(len as usize) else {
            return Some(Err(short));
        };
        self.rest = tail;
        Some(Ok((oid, Some(value))))
    }
}

/// Writes a composite value field by field; lengths are patched in as each ends.
#[derive(Debug)]
pub struct Writer {
    value_at: Option<usize>,
}

impl Writer {
    /// Writes the field count.
    pub fn begin(buf: &mut BytesMut, count: usize) -> Result<Writer, EncodeError> {
        let count =
            i32::try_from(count).map_err(|_| EncodeError("too many composite fields".into()))?;
        buf.put_i32(count);
        Ok(Writer { value_at: None })
    }

    /// Writes a NULL field of type `oid`.
    pub fn null(&mut self, buf: &mut BytesMut, oid: u32) {
        buf.put_u32(oid);
        buf.put_i32(-1);
    }

    /// Starts a non-NULL field of type `oid`: write its bytes, then call [`Writer::end`].
    pub fn start(&mut self, buf: &mut BytesMut, oid: u32) {
        buf.put_u32(oid);
        self.value_at = Some(super::begin_length(buf));
    }

    /// Ends the field begun by [`Writer::start`].
    pub fn end(&mut self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let at = self
            .value_at
            .take()
            .ok_or_else(|| EncodeError("composite field ended twice".into()))?;
        super::end_length(buf, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = BytesMut::new();
        let mut w = Writer::begin(&mut buf, 3).unwrap();
        w.start(&mut buf, 23);
        buf.put_i32(7);
        w.end(&mut buf).unwrap();
        w.null(&mut buf, 25);
        w.start(&mut buf, 25);
        buf.put_slice(b"abc");
        w.end(&mut buf).unwrap();
        let mut fields = parse(&buf).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(
            fields.next().unwrap().unwrap(),
            (23, Some(&[0, 0, 0, 7][..]))
        );
        assert_eq!(fields.next().unwrap().unwrap(), (25, None));
        assert_eq!(fields.next().unwrap().unwrap(), (25, Some(&b"abc"[..])));
        fields.finish().unwrap();
    }

    #[test]
    fn malformed() {
        assert!(parse(b"\0\0").is_err());
        assert!(parse(b"\xff\xff\xff\xff").is_err());
        assert!(parse(b"\0\0\0\x05\0\0\0\0\0\0\0\0").is_err());
        let mut f = parse(b"\0\0\0\x01\0\0\0\x17\0\0\0\x09\0").unwrap();
        assert!(f.next().unwrap().is_err());
        let mut f = parse(b"\0\0\0\x01\0\0\0\x17\xff\xff\xff\xfe").unwrap();
        assert!(f.next().unwrap().is_err());
        let mut f = parse(b"\0\0\0\x01\0\0\0\x17\xff\xff\xff\xffX").unwrap();
        assert!(f.next().unwrap().is_ok());
        assert!(f.finish().is_err());
    }
}
