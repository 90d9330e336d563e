//! Arrays in PostgreSQL's binary form (what `array_send` writes and `array_recv` reads).
//!
//! Layout: Int32 number of dimensions, Int32 flags (1 when some element is NULL),
//! UInt32 element type OID, then per dimension (outermost first) its Int32 length and
//! Int32 lower bound, then every element in row-major order as an Int32 length (-1 for
//! NULL) followed by that many bytes of the element's own binary form.
//!
//! Only the framing lives here; each front end decodes and encodes the elements and
//! builds its own nested values.

use bytes::{BufMut, BytesMut};

use super::{oid, DecodeError, EncodeError};

/// The most dimensions an array may have (PostgreSQL's `MAXDIM`).
pub const MAX_DIMS: usize = 6;

pub use super::catalog::ARRAY_TYPES;

/// The element type of a built-in array type in [`ARRAY_TYPES`].
pub fn element_type(array_oid: u32) -> Option<u32> {
    ARRAY_TYPES
        .iter()
        .find(|(a, _)| *a == array_oid)
        .map(|(_, e)| *e)
}

/// The element type of a value sent in array form: that of a built-in array type, and
/// int2 / oid for int2vector / oidvector, which travel as such arrays.
pub fn wire_element_type(type_oid: u32) -> Option<u32> {
    match type_oid {
        oid::INT2VECTOR => Some(oid::INT2),
        oid::OIDVECTOR => Some(oid::OID),
        _ => element_type(type_oid),
    }
}

/// The built-in array type of an element type in [`ARRAY_TYPES`].
pub fn array_type(element_oid: u32) -> Option<u32> {
    ARRAY_TYPES
        .iter()
        .find(|(_, e)| *e == element_oid)
        .map(|(a, _)| *a)
}

/// An array value's header: its shape and element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    ndim: usize,
    has_null: bool,
    element_oid: u32,
    dims: [usize; MAX_DIMS],
    lower_bounds: [i32; MAX_DIMS],
    len: usize,
}

impl Header {
    /// The number of dimensions (0 for the empty array).
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Whether the sender flagged NULL elements.
    pub fn has_null(&self) -> bool {
        self.has_null
    }

    /// The element type OID the sender named.
    pub fn element_oid(&self) -> u32 {
        self.element_oid
    }

    /// The length of each dimension, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.ndim]
    }

    /// The lower bound of each dimension, outermost first (1 unless set otherwise).
    pub fn lower_bounds(&self) -> &[i32] {
        &self.lower_bounds[..self.ndim]
    }

    /// The number of elements: the product of the dimensions, 0 without any.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the array holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn take_i32(buf: &mut &[u8], what: &'static str) -> Result<i32, DecodeError> {
    let (head, tail) = buf.split_first_chunk::<4>().ok_or(DecodeError(what))?;
    *buf = tail;
    Ok(i32::from_be_bytes(*head))
}

/// Reads an array's header; the elements follow through the returned iterator.
///
/// Everything the header claims is checked against the buffer before any element is
/// read, so a caller may size its containers by [`Header::len`] and [`Header::dims`].
pub fn parse(buf: &[u8]) -> Result<(Header, Elements<'_>), DecodeError> {
    let mut rest = buf;
    let ndim = take_i32(&mut rest, "truncated array header")?;
    let flags = take_i32(&mut rest, "truncated array header")?;
    let element_oid = take_i32(&mut rest, "truncated array header")? as u32;
    if ndim < 0 {
        return Err(DecodeError("negative number of array dimensions"));
    }
    let ndim = ndim as usize;
    if ndim > MAX_DIMS {
        return Err(DecodeError("array has more than 6 dimensions"));
    }
    if flags != 0 && flags != 1 {
        return Err(DecodeError("invalid array flags"));
    }
    let mut dims = [0usize; MAX_DIMS];
    let mut lower_bounds = [0i32; MAX_DIMS];
    let mut len: usize = if ndim == 0 { 0 } else { 1 };
    for i in 0..ndim {
        let dim = take_i32(&mut rest, "truncated array dimensions")?;
        let lower = take_i32(&mut rest, "truncated array dimensions")?;
        if dim < 0 {
            return Err(DecodeError("negative array dimension length"));
        }
        if lower.checked_add(dim).is_none() {
            return Err(DecodeError("array upper bound out of range"));
        }
        dims[i] = dim as usize;
        lower_bounds[i] = lower;
        len = len
            .checked_mul(dim as usize)
            .ok_or(DecodeError("array element count overflows"))?;
    }
    // Every element takes at least its four length bytes.
    if len > rest.len() / 4 {
        return Err(DecodeError("array dimensions exceed its data"));
    }
    let header = Header {
        ndim,
        has_null: flags == 1,
        element_oid,
        dims,
        lower_bounds,
        len,
    };
    Ok((
        header,
        Elements {
            rest,
            remaining: len,
        },
    ))
}

/// The elements of an array in row-major order: `Some(bytes)`, or `None` for NULL.
///
/// Yields exactly [`Header::len`] items unless the data is malformed, in which case the
/// last item is the error. [`Elements::finish`] checks nothing trails the last element.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    rest: &'a [u8],
    remaining: usize,
}

impl<'a> Elements<'a> {
    /// How many elements are still to come.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Checks that every element was read and no bytes follow the last one.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining != 0 {
            return Err(DecodeError("array elements left unread"));
        }
        if !self.rest.is_empty() {
            return Err(DecodeError("trailing data after the array elements"));
        }
        Ok(())
    }

    fn fail(&mut self, what: &'static str) -> Option<Result<Option<&'a [u8]>, DecodeError>> {
        self.remaining = 0;
        self.rest = &[];
        Some(Err(DecodeError(what)))
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Option<&'a [u8]>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let Some((len, tail)) = self.rest.split_first_chunk::<4>() else {
            return self.fail("truncated array element");
        };
        let len = i32::from_be_bytes(*len);
        if len == -1 {
            self.rest = tail;
            self.remaining -= 1;
            return Some(Ok(None));
        }
        if len < 0 {
            return self.fail("invalid array element length");
        }
        let Some((value, tail)) = tail.split_at_checked(len as usize) else {
            return self.fail("truncated array element");
        };
        self.rest = tail;
        self.remaining -= 1;
        Some(Ok(Some(value)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Writes an array: its header first, then each element through [`Writer::null`] or
/// [`Writer::begin_element`] / [`Writer::end_element`], then [`Writer::finish`].
#[derive(Debug)]
pub struct Writer {
    start: usize,
    len: usize,
    written: usize,
    has_null: bool,
}

impl Writer {
    /// Writes the header of an array of `element_oid` with `dims` (outermost first),
    /// each with lower bound 1. An array with a zero-length dimension is written as the
    /// empty array (no dimensions), the form the server itself gives it.
    pub fn begin(
        buf: &mut BytesMut,
        element_oid: u32,
        dims: &[usize],
    ) -> Result<Writer, EncodeError> {
        if dims.len() > MAX_DIMS {
            return Err(EncodeError(format!(
                "number of array dimensions ({}) exceed the maximum expected ({MAX_DIMS})",
                dims.len()
            )));
        }
        let mut len: usize = 1;
        for &d in dims {
            if i32::try_from(d).is_err() {
                return Err(EncodeError("too many elements in array value".into()));
            }
            len = len
                .checked_mul(d)
                .ok_or_else(|| EncodeError("too many elements in array value".into()))?;
        }
        if dims.is_empty() {
            len = 0;
        }
        let ndim = if len == 0 { 0 } else { dims.len() };
        let start = buf.len();
        buf.reserve(12 + 8 * ndim);
        buf.put_i32(ndim as i32);
        buf.put_i32(0);
        buf.put_u32(element_oid);
        for &d in &dims[..ndim] {
            buf.put_i32(d as i32);
            buf.put_i32(1);
        }
        Ok(Writer {
            start,
            len,
            written: 0,
            has_null: false,
        })
    }

    /// The number of elements the dimensions call for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the array takes no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes a NULL element.
    pub fn null(&mut self, buf: &mut BytesMut) {
        buf.put_i32(-1);
        self.has_null = true;
        self.written += 1;
    }

    /// Opens an element: returns where its length goes; write its bytes after this.
    #[inline]
    pub fn begin_element(&mut self, buf: &mut BytesMut) -> usize {
        let at = buf.len();
        buf.put_i32(0);
        at
    }

    /// Closes the element opened at `at`, filling in its length.
    #[inline]
    pub fn end_element(&mut self, buf: &mut BytesMut, at: usize) -> Result<(), EncodeError> {
        let len = buf.len() - at - 4;
        let len =
            i32::try_from(len).map_err(|_| EncodeError("array element value too large".into()))?;
        buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        self.written += 1;
        Ok(())
    }

    /// Completes the array: checks the element count and sets the NULL flag.
    pub fn finish(self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if self.written != self.len {
            return Err(EncodeError(format!(
                "array has {} elements but its dimensions call for {}",
                self.written, self.len
            )));
        }
        if self.has_null {
            buf[self.start + 4..self.start + 8].copy_from_slice(&1i32.to_be_bytes());
        }
        Ok(())
    }
}

/// Writes a whole array from already-encoded elements (`None` for NULL), in row-major
/// order.
pub fn encode<'a>(
    buf: &mut BytesMut,
    element_oid: u32,
    dims: &[usize],
    elements: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<(), EncodeError> {
    let mut w = Writer::begin(buf, element_oid, dims)?;
    for e in elements {
        match e {
            None => w.null(buf),
            Some(bytes) => {
                let at = w.begin_element(buf);
                buf.put_slice(bytes);
                w.end_element(buf, at)?;
            }
        }
    }
    w.finish(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(
        ndim: i32,
        flags: i32,
        elem: u32,
        dims: &[(i32, i32)],
        elems: &[Option<&[u8]>],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ndim.to_be_bytes());
        v.extend_from_slice(&flags.to_be_bytes());
        v.extend_from_slice(&elem.to_be_bytes());
        for (d, lb) in dims {
            v.extend_from_slice(&d.to_be_bytes());
            v.extend_from_slice(&lb.to_be_bytes());
        }
        for e in elems {
            match e {
                None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(b) => {
                    v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    v.extend_from_slice(b);
                }
            }
        }
        v
    }

    type Owned = Vec<Option<Vec<u8>>>;

    fn collect(buf: &[u8]) -> Result<(Header, Owned), DecodeError> {
        let (h, mut it) = parse(buf)?;
        let mut out = Vec::new();
        for e in it.by_ref() {
            out.push(e?.map(<[u8]>::to_vec));
        }
        it.finish()?;
        Ok((h, out))
    }

    const ONE: &[u8] = &[0, 0, 0, 1];
    const TWO: &[u8] = &[0, 0, 0, 2];

    #[test]
    fn one_dimension_with_null() {
        let buf = raw(1, 1, oid::INT4, &[(3, 1)], &[Some(ONE), None, Some(TWO)]);
        let (h, elems) = collect(&buf).unwrap();
        assert_eq!(h.ndim(), 1);
        assert!(h.has_null());
        assert_eq!(h.element_oid(), oid::INT4);
        assert_eq!(h.dims(), &[3]);
        assert_eq!(h.lower_bounds(), &[1]);
        assert_eq!(h.len(), 3);
        assert_eq!(elems, vec![Some(ONE.to_vec()), None, Some(TWO.to_vec())]);
    }

    #[test]
    fn lower_bounds_and_dimensions_are_kept() {
        let buf = raw(2, 0, oid::INT4, &[(2, 2), (1, -1)], &[Some(ONE), Some(TWO)]);
        let (h, elems) = collect(&buf).unwrap();
        assert_eq!(h.dims(), &[2, 1]);
        assert_eq!(h.lower_bounds(), &[2, -1]);
        assert_eq!(h.len(), 2);
        assert_eq!(elems.len(), 2);
    }

    #[test]
    fn empty_arrays() {
        let (h, elems) = collect(&raw(0, 0, oid::TEXT, &[], &[])).unwrap();
        assert_eq!((h.ndim(), h.len(), h.is_empty()), (0, 0, true));
        assert!(elems.is_empty());
        let (h, elems) = collect(&raw(2, 0, oid::TEXT, &[(3, 1), (0, 1)], &[])).unwrap();
        assert_eq!((h.ndim(), h.len()), (2, 0));
        assert!(elems.is_empty());
    }

    #[test]
    fn malformed_headers_are_errors() {
        let e = |buf: Vec<u8>| collect(&buf).unwrap_err();
        assert_eq!(e(vec![0, 0, 0, 1]), DecodeError("truncated array header"));
        assert_eq!(
            e(raw(7, 0, 23, &[(1, 1); 7], &[Some(ONE)])),
            DecodeError("array has more than 6 dimensions")
        );
        assert_eq!(
            e(raw(-1, 0, 23, &[], &[])),
            DecodeError("negative number of array dimensions")
        );
        assert_eq!(
            e(raw(0, 2, 23, &[], &[])),
            DecodeError("invalid array flags")
        );
        assert_eq!(
            e(raw(1, 0, 23, &[(-1, 1)], &[])),
            DecodeError("negative array dimension length")
        );
        assert_eq!(
            e(raw(1, 0, 23, &[(2, i32::MAX)], &[Some(ONE), Some(ONE)])),
            DecodeError("array upper bound out of range")
        );
        assert_eq!(
            e(raw(1, 0, 23, &[(2, 1)], &[])),
            DecodeError("array dimensions exceed its data")
        );
        assert_eq!(
            e(raw(2, 0, 23, &[(1, 1)], &[])),
            DecodeError("truncated array dimensions")
        );
        // The product of huge dimensions overflows or dwarfs the data; never allocates.
        assert!(collect(&raw(6, 0, 23, &[(i32::MAX, 0); 6], &[])).is_err());
    }

    #[test]
    fn malformed_elements_are_errors() {
        let e = |buf: Vec<u8>| collect(&buf).unwrap_err();
        let mut buf = raw(1, 0, 23, &[(2, 1)], &[Some(ONE), Some(ONE)]);
        buf.truncate(buf.len() - 1);
        assert_eq!(e(buf), DecodeError("truncated array element"));
        let mut buf = raw(1, 0, 23, &[(1, 1)], &[]);
        buf.extend_from_slice(&(-2i32).to_be_bytes());
        assert_eq!(e(buf), DecodeError("invalid array element length"));
        let mut buf = raw(1, 0, 23, &[(1, 1)], &[Some(ONE)]);
        buf.push(0);
        assert_eq!(
            e(buf),
            DecodeError("trailing data after the array elements")
        );
        let buf = raw(1, 0, 23, &[(1, 1)], &[Some(ONE)]);
        let (_, it) = parse(&buf).unwrap();
        assert_eq!(it.finish(), Err(DecodeError("array elements left unread")));
    }

    #[test]
    fn no_prefix_of_a_valid_array_panics() {
        let buf = raw(
            2,
            1,
            oid::TEXT,
            &[(2, 1), (2, 5)],
            &[Some(b"ab"), None, Some(b""), Some(b"xyz")],
        );
        assert!(collect(&buf).is_ok());
        for n in 0..buf.len() {
            assert!(collect(&buf[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn writer_round_trip() {
        let mut buf = BytesMut::new();
        encode(
            &mut buf,
            oid::INT4,
            &[2, 2],
            [Some(ONE), None, Some(TWO), Some(ONE)],
        )
        .unwrap();
        assert_eq!(
            &buf[..],
            &raw(
                2,
                1,
                oid::INT4,
                &[(2, 1), (2, 1)],
                &[Some(ONE), None, Some(TWO), Some(ONE)]
            )[..]
        );
        let (h, elems) = collect(&buf).unwrap();
        assert_eq!(h.dims(), &[2, 2]);
        assert!(h.has_null());
        assert_eq!(elems[1], None);

        let mut buf = BytesMut::new();
        encode(&mut buf, oid::INT4, &[1], [Some(ONE)]).unwrap();
        let (h, _) = collect(&buf).unwrap();
        assert!(!h.has_null());
    }

    #[test]
    fn writer_empty_shapes_become_the_empty_array() {
        for dims in [&[][..], &[0][..], &[3, 0][..]] {
            let mut buf = BytesMut::new();
            encode(&mut buf, oid::TEXT, dims, []).unwrap();
            assert_eq!(&buf[..], &raw(0, 0, oid::TEXT, &[], &[])[..]);
        }
    }

    #[test]
    fn writer_errors() {
        let mut buf = BytesMut::new();
        let err = Writer::begin(&mut buf, oid::INT4, &[1; 7]).unwrap_err();
        assert_eq!(
            err.0,
            "number of array dimensions (7) exceed the maximum expected (6)"
        );
        assert!(Writer::begin(&mut buf, oid::INT4, &[usize::MAX]).is_err());
        assert!(encode(&mut buf, oid::INT4, &[2], [Some(ONE)]).is_err());
        assert!(encode(&mut buf, oid::INT4, &[1], [Some(ONE), Some(ONE)]).is_err());
    }

    #[test]
    fn type_table_is_consistent() {
        for &(a, e) in ARRAY_TYPES {
            assert_eq!(element_type(a), Some(e));
            assert_eq!(array_type(e), Some(a));
        }
        assert_eq!(element_type(oid::INT4), None);
        assert_eq!(array_type(oid::INT4_ARRAY), None);
    }
}
