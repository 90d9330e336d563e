//! The results of the simple query protocol ([`Connection::simple_query`],
//! [`Client::simple_query`](crate::Client::simple_query)): rows of text, and a row
//! count for each statement.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ferropg_core::message::DataRow;

use crate::row::{value_at, value_offsets, RowIndex, ValueOffsets};
use crate::statement::Column;
use crate::Error;

/// One message of a simple query's result, in the order the server sent them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SimpleQueryMessage {
    /// The columns of the rows that follow (one for each statement that returns
    /// rows, even none).
    RowDescription(Arc<[Column]>),
    /// A row, its values as text.
    Row(SimpleQueryRow),
    /// A statement ran to its end: the number of rows it affected or returned
    /// (0 for a statement without a count).
    CommandComplete(u64),
}

/// A row of a simple query: every value as the server's text (`None` for NULL).
#[derive(Clone)]
pub struct SimpleQueryRow {
    columns: Arc<[Column]>,
    body: Bytes,
    offsets: ValueOffsets,
}

impl SimpleQueryRow {
    pub(crate) fn new(columns: Arc<[Column]>, body: Bytes, row: &DataRow<'_>) -> SimpleQueryRow {
        SimpleQueryRow {
            columns,
            body,
            offsets: value_offsets(row),
        }
    }

    /// The columns of the row (their types are the server's; the values are text).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when the row has no values.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// A value as text, by position or by column name; `None` for NULL.
    ///
    /// # Panics
    ///
    /// When the column does not exist; [`try_get`](SimpleQueryRow::try_get)
    /// returns that as an error.
    #[track_caller]
    pub fn get<I>(&self, idx: I) -> Option<&str>
    where
        I: RowIndex + fmt::Display,
    {
        match self.try_get(&idx) {
            Ok(v) => v,
            Err(e) => panic!("error retrieving column {idx}: {e}"),
        }
    }

    /// A value as text, or an error of kind
    /// [`ColumnNotFound`](crate::ErrorKind::ColumnNotFound) (or
    /// [`FromSql`](crate::ErrorKind::FromSql), for text that is not UTF-8).
    pub fn try_get<I>(&self, idx: I) -> Result<Option<&str>, Error>
    where
        I: RowIndex + fmt::Display,
    {
        let i = idx
            .__index(&self.columns)
            .filter(|i| *i < self.offsets.len())
            .ok_or_else(|| Error::column_not_found(&idx))?;
        value_at(&self.body, &self.offsets, i)
            .map(|raw| {
                std::str::from_utf8(raw)
                    .map_err(|e| Error::from_sql(i, self.columns[i].name(), Box::new(e)))
            })
            .transpose()
    }
}

impl fmt::Debug for SimpleQueryRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        for (i, c) in self.columns.iter().enumerate().take(self.len()) {
            d.entry(&c.name(), &self.try_get(i).ok().flatten());
        }
        d.finish()
    }
}
