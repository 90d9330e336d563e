//! Result rows: the DataRow bytes as received, decoded on access through
//! `FromSql`, with columns looked up by position or by name ([`RowIndex`]).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ferropg_core::message::DataRow;
use postgres_types::{FromSql, WrongType};

use crate::statement::Column;
use crate::Error;

/// One result row.
///
/// It holds the row's bytes as they came off the socket (a shared slice of the read
/// buffer, not a copy) and the columns of its result; values are decoded when asked
/// for, in binary format.
#[derive(Clone)]
pub struct Row {
    columns: Arc<[Column]>,
    body: Bytes,
    /// Where each value's 4-byte length prefix starts in `body`.
    offsets: ValueOffsets,
}

impl Row {
    /// Builds a row over `body`, the bytes of `row`'s values (its `raw()` part, shared
    /// or copied).
    pub(crate) fn new(columns: Arc<[Column]>, body: Bytes, row: &DataRow<'_>) -> Row {
        Row {
            columns,
            body,
            offsets: value_offsets(row),
        }
    }

    /// The columns of the row.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    pub(crate) fn columns_arc(&self) -> &Arc<[Column]> {
        &self.columns
    }

    pub(crate) fn set_columns(&mut self, columns: Arc<[Column]>) {
        self.columns = columns;
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when the row has no columns.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Decodes a column, by position (`0`, `1`, ...) or by name (`"id"`).
    ///
    /// # Panics
    ///
    /// When the column does not exist or the value cannot be decoded as `T` (a type
    /// mismatch, or NULL into a non-`Option`); [`Row::try_get`] returns those as errors.
    ///
    /// ```no_run
    /// # async fn f(conn: &mut ferropg::Connection) -> Result<(), ferropg::Error> {
    /// let row = conn.query_one("select 1::int4 as n, 'x'::text as s", &[]).await?;
    /// let n: i32 = row.get(0);
    /// let s: &str = row.get("s");
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn get<'a, I, T>(&'a self, idx: I) -> T
    where
        I: RowIndex + fmt::Display,
        T: FromSql<'a>,
    {
        match self.try_get(&idx) {
            Ok(v) => v,
            Err(e) => panic!("error retrieving column {idx}: {e}"),
        }
    }

    /// Decodes a column, by position or by name, returning an error of kind
    /// [`ColumnNotFound`](crate::ErrorKind::ColumnNotFound) or
    /// [`FromSql`](crate::ErrorKind::FromSql) instead of panicking.
    pub fn try_get<'a, I, T>(&'a self, idx: I) -> Result<T, Error>
    where
        I: RowIndex + fmt::Display,
        T: FromSql<'a>,
    {
        let i = idx
            .__index(&self.columns)
            .filter(|i| *i < self.offsets.len())
            .ok_or_else(|| Error::column_not_found(&idx))?;
        let column = &self.columns[i];
        let ty = column.type_();
        if !T::accepts(ty) {
            return Err(Error::from_sql(
                i,
                column.name(),
                Box::new(WrongType::new::<T>(ty.clone())),
            ));
        }
        T::from_sql_nullable(ty, self.raw(i)).map_err(|e| Error::from_sql(i, column.name(), e))
    }

    /// The raw bytes of column `i` (`None` for NULL).
    fn raw(&self, i: usize) -> Option<&[u8]> {
        value_at(&self.body, &self.offsets, i)
    }
}

/// How many values a row's offsets hold without an allocation of their own.
const INLINE_VALUES: usize = 12;

/// Where each value of a row starts in its bytes: inline for rows of up to
/// [`INLINE_VALUES`] values whose bytes fit in 64 KiB, so that most rows cost no
/// allocation beyond the `Row` itself (a result streamed or collected makes one per
/// row, and the allocator's share of a narrow row's cost was about a fifth), in 16
/// bits each to keep a `Row` small (it is moved once or twice on its way out); on
/// the heap for other rows.
#[derive(Clone)]
pub(crate) enum ValueOffsets {
    Inline { len: u8, at: [u16; INLINE_VALUES] },
    Heap(Box<[u32]>),
}

impl ValueOffsets {
    /// The number of values.
    pub(crate) fn len(&self) -> usize {
        match self {
            ValueOffsets::Inline { len, .. } => usize::from(*len),
            ValueOffsets::Heap(at) => at.len(),
        }
    }

    /// True for a row of no values.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where value `i` starts.
    fn get(&self, i: usize) -> Option<usize> {
        match self {
            ValueOffsets::Inline { len, at } => (i < usize::from(*len)).then(|| usize::from(at[i])),
            ValueOffsets::Heap(at) => at.get(i).map(|&pos| pos as usize),
        }
    }
}

/// Where each value's 4-byte length prefix starts in the bytes of `row`'s values.
pub(crate) fn value_offsets(row: &DataRow<'_>) -> ValueOffsets {
    let raw = row.raw();
    // The core validated the row when it parsed it: every length prefix is there
    // and every value fits. The lengths are read straight off the bytes, as the
    // one pass over them that a row costs.
    let after = |pos: usize| -> usize {
        let len = raw
            .get(pos..pos + 4)
            .map_or(-1, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        pos + 4 + usize::try_from(len).unwrap_or(0)
    };
    let count = row.len();
    let mut pos = 0usize;
    if count <= INLINE_VALUES && raw.len() <= usize::from(u16::MAX) {
        let mut at = [0u16; INLINE_VALUES];
        for slot in &mut at[..count] {
            *slot = pos as u16;
            pos = after(pos);
        }
        ValueOffsets::Inline {
            len: count as u8,
            at,
        }
    } else {
        ValueOffsets::Heap(
            (0..count)
                .map(|_| {
                    let start = pos as u32;
                    pos = after(pos);
                    start
                })
                .collect(),
        )
    }
}

/// Value `i` of a DataRow's `body` (`None` for NULL or past the end).
pub(crate) fn value_at<'b>(body: &'b [u8], offsets: &ValueOffsets, i: usize) -> Option<&'b [u8]> {
    // The DataRow was validated when parsed: every offset and length is in bounds.
    let pos = offsets.get(i)?;
    let len = body.get(pos..pos + 4)?;
    let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
    let len = usize::try_from(len).ok()?;
    body.get(pos + 4..pos + 4 + len)
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        for (i, c) in self.columns.iter().enumerate().take(self.len()) {
            d.entry(&c.name(), &self.raw(i));
        }
        d.finish()
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for str {}
    impl<T: ?Sized + Sealed> Sealed for &T {}
}

/// A way to name a column of a [`Row`]: its position (`usize`) or its name (`&str`;
/// an exact match first, then one ignoring ASCII case).
///
/// This trait is sealed.
pub trait RowIndex: private::Sealed {
    #[doc(hidden)]
    fn __index(&self, columns: &[Column]) -> Option<usize>;
}

impl RowIndex for usize {
    fn __index(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
}

impl RowIndex for str {
    fn __index(&self, columns: &[Column]) -> Option<usize> {
        columns.iter().position(|c| c.name() == self).or_else(|| {
            columns
                .iter()
                .position(|c| c.name().eq_ignore_ascii_case(self))
        })
    }
}

impl<T: ?Sized + RowIndex> RowIndex for &T {
    fn __index(&self, columns: &[Column]) -> Option<usize> {
        T::__index(*self, columns)
    }
}
