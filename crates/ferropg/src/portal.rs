//! What the portals of both faces share ([`Portal`](crate::Portal) on a
//! [`Connection`](crate::Connection), [`ClientPortal`](crate::ClientPortal) on a
//! [`Client`](crate::Client)): the request for the next rows of a named portal
//! bound earlier in the transaction, and what its response says.

use std::sync::Arc;

use ferropg_core::conn::Request as CoreRequest;

use crate::exchange::Response;
use crate::row::Row;
use crate::statement::Column;
use crate::Error;

/// One step of a portal: up to `max_rows` rows (0 or less: all the rest).
pub(crate) struct Fetch<'p> {
    name: &'p str,
    columns: &'p Arc<[Column]>,
    max_rows: i32,
}

impl<'p> Fetch<'p> {
    /// A step of portal `name`, whose rows have `columns`.
    pub(crate) fn new(name: &'p str, columns: &'p Arc<[Column]>, max_rows: i32) -> Fetch<'p> {
        Fetch {
            name,
            columns,
            max_rows,
        }
    }

    /// A step given as a `usize` (0: all the rest), as the owned face takes it.
    pub(crate) fn limit(max_rows: usize) -> i32 {
        i32::try_from(max_rows).unwrap_or(i32::MAX)
    }

    /// The record the step's response goes into; with `collect`, its rows too.
    pub(crate) fn response(&self, collect: bool) -> Response {
        // Sized for the step, within reason: a limit is no promise of as many rows.
        let capacity = usize::try_from(self.max_rows).map_or(0, |n| n.min(1024));
        Response {
            columns: Some(self.columns.clone()),
            rows: collect.then(|| Vec::with_capacity(capacity)),
            ..Response::default()
        }
    }

    /// Writes the step into `wire`; the caller sends it.
    pub(crate) fn write<T>(&self, wire: &mut CoreRequest<'_, T>) -> Result<(), Error> {
        wire.fetch(self.name, self.max_rows, self.columns.len())?;
        Ok(())
    }
}

/// What a step brought: its rows, and whether the portal stopped at the limit
/// with rows left (otherwise it ran out, or failed).
pub(crate) fn fetched(resp: &mut Response) -> (Vec<Row>, bool) {
    (resp.rows.take().unwrap_or_default(), resp.suspended)
}
