//! Explicit pipelines: a [`Batch`] of statements sent together, with one Sync for
//! all of them (atomic) or one for each (independent), and what comes back
//! ([`BatchResult`]). Both faces run them; `execute_many` (a statement run once
//! per row of parameters, streamed in groups) lives beside them in each face.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ferropg_core::message::DataRow;
use postgres_types::ToSql;

use crate::connection::check_count;
use crate::exchange::share;
use crate::row::Row;
use crate::statement::{Column, Source, ToStatement};
use crate::Error;

/// How many rows of parameters `execute_many` puts in one Sync group.
pub(crate) const GROUP_ROWS: usize = 256;

/// How many of `execute_many`'s Sync groups may wait for their replies at once:
/// the input is read no further ahead than this.
pub(crate) const GROUPS_IN_FLIGHT: usize = 4;

/// [`GROUPS_IN_FLIGHT`], or one behind a transaction-mode pooler: pgbouncer 1.18
/// loses its place in the client's stream, now and then, when Sync groups are
/// pipelined past the end of each transaction it pools ("invalid frontend message
/// type", the session closed), so each group waits for the last one's answer.
pub(crate) fn groups_in_flight(behind_pooler: bool) -> usize {
    if behind_pooler {
        1
    } else {
        GROUPS_IN_FLIGHT
    }
}

/// `execute_many`'s rows of parameters, taken from the caller's iterator one
/// group at a time (never further ahead), each row checked against the first
/// one's width. Both faces' `execute_many` read their input through it.
pub(crate) struct RowGroups<I, P> {
    rows: I,
    width: usize,
    /// The group's rows, one after the other.
    params: Vec<P>,
    count: usize,
    more: bool,
}

impl<I, R, P> RowGroups<I, P>
where
    I: Iterator<Item = R>,
    R: IntoIterator<Item = P>,
{
    /// Starts with the first row, which sets the width; None when there is none.
    pub(crate) fn start(rows: impl IntoIterator<IntoIter = I>) -> Option<RowGroups<I, P>> {
        let mut rows = rows.into_iter();
        let params: Vec<P> = rows.next()?.into_iter().collect();
        Some(RowGroups {
            rows,
            width: params.len(),
            params,
            count: 1,
            more: true,
        })
    }

    /// How many parameters each row has.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Adds rows to the group up to [`GROUP_ROWS`]. A row of another width ends
    /// the input: its error is returned, and the rows before it stay in the group.
    pub(crate) fn fill(&mut self) -> Result<(), Error> {
        while self.more && self.count < GROUP_ROWS {
            let Some(row) = self.rows.next() else {
                self.more = false;
                break;
            };
            let before = self.params.len();
            self.params.extend(row);
            if let Err(e) = check_count(self.width, self.params.len() - before) {
                self.params.truncate(before);
                self.more = false;
                return Err(e);
            }
            self.count += 1;
        }
        Ok(())
    }

    /// The group's rows, each `width` parameters long.
    pub(crate) fn rows(&self) -> impl Iterator<Item = &[P]> {
        let width = self.width;
        (0..self.count).map(move |i| &self.params[i * width..(i + 1) * width])
    }

    /// Whether the group has rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empties the group, once it is sent.
    pub(crate) fn clear(&mut self) {
        self.params.clear();
        self.count = 0;
    }

    /// Whether rows may remain in the input.
    pub(crate) fn more(&self) -> bool {
        self.more
    }

    /// Reads no more of the input (a group failed).
    pub(crate) fn stop(&mut self) {
        self.more = false;
    }
}

/// Statements to send together, each with its parameters, to run with
/// [`Client::batch_atomic`](crate::Client::batch_atomic) (one Sync: all or
/// nothing) or [`Client::batch_independent`](crate::Client::batch_independent)
/// (a Sync each: every statement on its own), or the same methods of a
/// [`Connection`](crate::Connection). Either way the whole batch is written at
/// once and costs one round trip (plus one for each SQL text not prepared yet,
/// which is prepared and cached first).
///
/// ```no_run
/// # async fn f(client: &ferropg::Client) -> Result<(), ferropg::Error> {
/// use ferropg::Batch;
///
/// let (from, to, amount) = (1i32, 2i32, 100i64);
/// let mut batch = Batch::new();
/// batch
///     .execute("update account set balance = balance - $2 where id = $1", &[&from, &amount])
///     .execute("update account set balance = balance + $2 where id = $1", &[&to, &amount])
///     .query("select id, balance from account where id in ($1, $2)", &[&from, &to]);
/// let results = client.batch_atomic(&batch).await?;
/// assert_eq!(results[0].rows_affected(), 1);
/// for row in results[2].rows() {
///     let balance: i64 = row.get("balance");
/// }
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Batch<'a> {
    pub(crate) entries: Vec<BatchEntry<'a>>,
}

/// One statement of a batch.
pub(crate) struct BatchEntry<'a> {
    pub(crate) source: Source<'a>,
    pub(crate) params: Vec<&'a (dyn ToSql + Sync)>,
    /// Its rows are kept (a query) rather than only counted.
    pub(crate) keep_rows: bool,
}

impl<'a> Batch<'a> {
    /// An empty batch.
    pub fn new() -> Batch<'a> {
        Batch::default()
    }

    /// Adds a statement whose rows are kept ([`BatchResult::rows`]): SQL text (one
    /// statement, `$1`... placeholders) or a [`Statement`](crate::Statement).
    pub fn query<T>(&mut self, statement: &'a T, params: &[&'a (dyn ToSql + Sync)]) -> &mut Self
    where
        T: ?Sized + ToStatement,
    {
        self.push(statement, params, true)
    }

    /// Adds a statement whose rows, if any, are only counted
    /// ([`BatchResult::rows_affected`]).
    pub fn execute<T>(&mut self, statement: &'a T, params: &[&'a (dyn ToSql + Sync)]) -> &mut Self
    where
        T: ?Sized + ToStatement,
    {
        self.push(statement, params, false)
    }

    fn push<T>(
        &mut self,
        statement: &'a T,
        params: &[&'a (dyn ToSql + Sync)],
        keep_rows: bool,
    ) -> &mut Self
    where
        T: ?Sized + ToStatement,
    {
        self.entries.push(BatchEntry {
            source: statement.__source(),
            params: params.to_vec(),
            keep_rows,
        });
        self
    }

    /// The number of statements.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the batch holds no statement.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// What one statement of a [`Batch`] returned.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    rows: Vec<Row>,
    rows_affected: u64,
}

impl BatchResult {
    pub(crate) fn new(rows: Vec<Row>, rows_affected: u64) -> BatchResult {
        BatchResult {
            rows,
            rows_affected,
        }
    }

    /// Its rows (none for a statement added with [`Batch::execute`]).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Its rows, taken.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }

    /// The row count of its command tag (0 for a statement without one).
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

/// The results of the statements of one Sync group, collected as they come: each
/// statement's rows end at its CommandComplete.
#[derive(Default)]
pub(crate) struct BatchCollect {
    /// Each statement's columns, and whether its rows are kept.
    statements: Vec<(Arc<[Column]>, bool)>,
    pub(crate) results: Vec<BatchResult>,
    rows: Vec<Row>,
}

impl BatchCollect {
    pub(crate) fn new(statements: Vec<(Arc<[Column]>, bool)>) -> BatchCollect {
        BatchCollect {
            results: Vec::with_capacity(statements.len()),
            statements,
            rows: Vec::new(),
        }
    }

    /// A row of the statement running now.
    pub(crate) fn row(&mut self, chunk: &Bytes, row: &DataRow<'_>) -> Result<(), Error> {
        let Some((columns, keep)) = self.statements.get(self.results.len()) else {
            return Err(Error::protocol("a row after the last statement of a batch"));
        };
        if *keep {
            self.rows
                .push(Row::new(columns.clone(), share(chunk, row.raw()), row));
        }
        Ok(())
    }

    /// The statement running now ended.
    pub(crate) fn complete(&mut self, rows_affected: u64) {
        let rows = std::mem::take(&mut self.rows);
        self.results.push(BatchResult::new(rows, rows_affected));
    }
}
