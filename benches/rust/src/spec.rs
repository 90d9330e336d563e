//! What is measured: the drivers, the workloads and their sizes, the runtimes, and
//! the fixtures every driver reads and writes, with the values it must get back.

use std::fmt;

/// A driver under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// This project's tokio face, `crates/ferropg`.
    Ferropg,
    /// tokio-postgres 0.7: the reference of every ratio.
    TokioPostgres,
    /// sqlx 0.8 (postgres, runtime-tokio).
    Sqlx,
}

impl Driver {
    /// Every driver, in the order of the report's columns.
    pub const ALL: [Driver; 3] = [Driver::Ferropg, Driver::TokioPostgres, Driver::Sqlx];
    /// The drivers this build has: the peers only with the `peers` feature.
    pub fn available() -> Vec<Driver> {
        let peers = cfg!(feature = "peers");
        Driver::ALL
            .into_iter()
            .filter(|&d| peers || d == Driver::Ferropg)
            .collect()
    }

    /// The driver every ratio divides by.
    pub const REFERENCE: Driver = Driver::TokioPostgres;

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Ferropg => "ferropg",
            Driver::TokioPostgres => "tokio-postgres",
            Driver::Sqlx => "sqlx",
        }
    }
}

/// A workload: one operation, repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    /// `SELECT $1::int4`, prepared or cached, the value checked.
    Tiny,
    /// One row of 10 mixed columns from `bench_mixed`, by key.
    OneRow,
    /// All 1000 rows of `bench_mixed`, materialised.
    Mixed1000x10,
    /// `generate_series(1, 100000)`, materialised.
    Series100k,
    /// The same series, as a row stream.
    Series100kStream,
    /// 10,000 single-row INSERTs in a transaction.
    Executemany10k,
    /// Binary COPY of 100,000 rows into `bench_sink`.
    CopyIn100k,
    /// `tiny` through a shared client (ferropg's `Client`, tokio-postgres's) from
    /// one task: a round trip each, no pipelining.
    ClientTiny,
    /// `tiny` from 10 tasks sharing one client (tokio-postgres's `Client`,
    /// ferropg's `Client`), each query's value checked; CPU per query.
    SharedTiny10,
    /// `executemany_10k` on a shared client: ferropg's `Client::execute_many`,
    /// tokio-postgres's joined execute futures, in a transaction.
    ClientExecutemany10k,
}

impl Workload {
    /// Every workload, in the order of the report's rows.
    pub const ALL: [Workload; 10] = [
        Workload::Tiny,
        Workload::OneRow,
        Workload::Mixed1000x10,
        Workload::Series100k,
        Workload::Series100kStream,
        Workload::Executemany10k,
        Workload::CopyIn100k,
        Workload::ClientTiny,
        Workload::SharedTiny10,
        Workload::ClientExecutemany10k,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Tiny => "tiny",
            Workload::OneRow => "one_row",
            Workload::Mixed1000x10 => "mixed_1000x10",
            Workload::Series100k => "series_100k",
            Workload::Series100kStream => "series_100k_stream",
            Workload::Executemany10k => "executemany_10k",
            Workload::CopyIn100k => "copy_in_100k",
            Workload::ClientTiny => "client_tiny",
            Workload::SharedTiny10 => "shared_tiny_10",
            Workload::ClientExecutemany10k => "client_executemany_10k",
        }
    }

    /// Whether `driver` runs this workload: sqlx has no client that tasks share
    /// (its pool hands out one connection per task), nor pipelining.
    pub fn supports(self, driver: Driver) -> bool {
        !(driver == Driver::Sqlx
            && matches!(
                self,
                Workload::ClientTiny | Workload::SharedTiny10 | Workload::ClientExecutemany10k
            ))
    }

    /// Rows each operation moves; the report gives ns per row when above 1.
    pub fn rows_per_op(self) -> u64 {
        match self {
            Workload::Tiny | Workload::OneRow | Workload::ClientTiny | Workload::SharedTiny10 => 1,
            Workload::Mixed1000x10 => MIXED_ROWS as u64,
            Workload::Series100k | Workload::Series100kStream => SERIES_ROWS as u64,
            Workload::Executemany10k | Workload::ClientExecutemany10k => EXECUTEMANY_ROWS as u64,
            Workload::CopyIn100k => COPY_ROWS as u64,
        }
    }

    /// Round-trip-bound workloads are compared with pgbench as well.
    pub fn round_trip_bound(self) -> bool {
        matches!(self, Workload::Tiny | Workload::OneRow)
    }

    /// Operations measured in one cell: about a second of wall time and a few
    /// tenths of a second of client CPU or more, so that a cell's figure is neither
    /// timer noise nor a single scheduling hiccup.
    pub fn ops(self, quick: bool) -> u64 {
        let full = match self {
            Workload::Tiny | Workload::OneRow | Workload::ClientTiny | Workload::SharedTiny10 => {
                50_000
            }
            Workload::Mixed1000x10 => 1_000,
            Workload::Series100k | Workload::Series100kStream => 50,
            Workload::Executemany10k | Workload::ClientExecutemany10k => 5,
            Workload::CopyIn100k => 20,
        };
        if quick {
            (full / 10).max(2)
        } else {
            full
        }
    }

    /// Unmeasured operations first: connections warmed, statements prepared,
    /// buffers grown.
    pub fn warmup(self, quick: bool) -> u64 {
        (self.ops(quick) / 20).max(1)
    }
}

/// A tokio runtime flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `current_thread`: the cell's task and all I/O on one thread (the bar).
    CurrentThread,
    /// `multi_thread` with 2 workers (the machine's cores).
    MultiThread,
}

impl Runtime {
    /// Both runtimes, the bar's first.
    pub const ALL: [Runtime; 2] = [Runtime::CurrentThread, Runtime::MultiThread];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::CurrentThread => "current-thread",
            Runtime::MultiThread => "multi-thread",
        }
    }
}

/// Looks a command-line name up among `all`.
pub fn parse<T: Copy>(all: &[T], name: &str, name_of: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|&x| name_of(x) == name)
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rows of `bench_mixed`.
pub const MIXED_ROWS: i32 = 1000;
/// Tasks sharing the client in `shared_tiny_10`.
pub const SHARED_TASKS: u64 = 10;
/// Rows of the series workloads.
pub const SERIES_ROWS: i32 = 100_000;
/// Rows inserted by one executemany.
pub const EXECUTEMANY_ROWS: usize = 10_000;
/// Rows copied by one COPY.
pub const COPY_ROWS: usize = 100_000;

/// The tables, created by the parent before the first cell. UNLOGGED: the writes
/// measure the drivers, not the WAL.
///
/// Columns are types all three drivers decode without extra features (sqlx needs
/// one for timestamps, numeric, uuid and json), one of them nullable; each value is
/// a function of `g` that [`MixedRow::expected`] computes again, so every value a
/// driver returns can be compared. Floats are multiples of powers of two, exact in
/// binary, so they compare with `==`.
pub const FIXTURES: &str = "\
DROP TABLE IF EXISTS bench_mixed, bench_sink;
CREATE UNLOGGED TABLE bench_mixed (
    id int4 PRIMARY KEY, code int8 NOT NULL, name text NOT NULL, price float8 NOT NULL,
    ok bool NOT NULL, payload bytea NOT NULL, qty int2 NOT NULL, score float4 NOT NULL,
    note text, tag text NOT NULL);
INSERT INTO bench_mixed
SELECT g, g * 1000003::int8, 'name ' || g, g * 0.25::float8, g % 3 = 0,
       decode(repeat(lpad(to_hex(g % 256), 2, '0'), 16), 'hex'), (g % 100)::int2,
       (g / 8.0)::float4, CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 40) END,
       'tag' || (g % 10)
FROM generate_series(1, 1000) g;
CREATE UNLOGGED TABLE bench_sink (id int4, name text, price float8, code int8);";

/// Run after [`FIXTURES`], on its own (VACUUM refuses to run in a multi-statement
/// query).
pub const FIXTURES_VACUUM: &str = "VACUUM ANALYZE bench_mixed";

/// `tiny`'s query.
pub const TINY_SQL: &str = "SELECT $1::int4";
/// `one_row`'s query.
pub const ONE_ROW_SQL: &str =
    "SELECT id, code, name, price, ok, payload, qty, score, note, tag FROM bench_mixed WHERE id = $1";
/// `mixed_1000x10`'s query.
pub const MIXED_SQL: &str =
    "SELECT id, code, name, price, ok, payload, qty, score, note, tag FROM bench_mixed";
/// The series workloads' query (`$1` is [`SERIES_ROWS`]).
pub const SERIES_SQL: &str = "SELECT g FROM generate_series(1, $1::int4) g";
/// `executemany_10k`'s statement, the same per-row INSERT for every driver.
pub const INSERT_SQL: &str =
    "INSERT INTO bench_sink (id, name, price, code) VALUES ($1, $2, $3, $4)";
/// `copy_in_100k`'s statement.
pub const COPY_SQL: &str = "COPY bench_sink (id, name, price, code) FROM STDIN (FORMAT binary)";

/// One row of `bench_mixed`, decoded into owned values (what an application keeps).
#[derive(Debug, Clone, PartialEq)]
pub struct MixedRow {
    /// `int4`, the key.
    pub id: i32,
    /// `int8`.
    pub code: i64,
    /// `text`.
    pub name: String,
    /// `float8`.
    pub price: f64,
    /// `bool`.
    pub ok: bool,
    /// `bytea`, 16 bytes.
    pub payload: Vec<u8>,
    /// `int2`.
    pub qty: i16,
    /// `float4`.
    pub score: f32,
    /// `text`, NULL for every fifth row.
    pub note: Option<String>,
    /// `text`.
    pub tag: String,
}

impl MixedRow {
    /// The row the fixture holds for key `g`, computed as [`FIXTURES`] does.
    pub fn expected(g: i32) -> MixedRow {
        MixedRow {
            id: g,
            code: i64::from(g) * 1_000_003,
            name: format!("name {g}"),
            price: f64::from(g) * 0.25,
            ok: g % 3 == 0,
            payload: vec![(g % 256) as u8; 16],
            qty: (g % 100) as i16,
            score: g as f32 / 8.0,
            note: (g % 5 != 0).then(|| "x".repeat((g % 40) as usize)),
            tag: format!("tag{}", g % 10),
        }
    }
}

/// Checks rows of `bench_mixed` against the fixture, as they are decoded.
pub struct MixedCheck {
    expected: Vec<MixedRow>,
    /// Rows seen in the current operation.
    pub rows: u64,
    /// Rows that did not match, in all operations.
    pub wrong: u64,
}

impl MixedCheck {
    /// The expected table, computed once per worker, before anything is measured.
    pub fn new() -> MixedCheck {
        MixedCheck {
            expected: (1..=MIXED_ROWS).map(MixedRow::expected).collect(),
            rows: 0,
            wrong: 0,
        }
    }

    /// The fixture's row for key `g`.
    pub fn row(&self, g: i32) -> Option<&MixedRow> {
        usize::try_from(g - 1)
            .ok()
            .and_then(|i| self.expected.get(i))
    }

    /// Counts one decoded row and compares every value with the fixture's.
    pub fn add(&mut self, row: &MixedRow) {
        self.rows += 1;
        if self.row(row.id) != Some(row) {
            self.wrong += 1;
        }
    }
}

/// Count and sum of a series, as decoded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeriesSum {
    /// Rows seen.
    pub rows: u64,
    /// Sum of their values.
    pub sum: i64,
}

impl SeriesSum {
    /// Adds one decoded value.
    pub fn add(&mut self, value: i32) {
        self.rows += 1;
        self.sum += i64::from(value);
    }

    /// What `generate_series(1, n)` must give.
    pub fn expected(n: i32) -> SeriesSum {
        let n = i64::from(n);
        SeriesSum {
            rows: n as u64,
            sum: n * (n + 1) / 2,
        }
    }
}

/// One row written by the write workloads.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkRow {
    /// `int4`.
    pub id: i32,
    /// `text`.
    pub name: String,
    /// `float8`.
    pub price: f64,
    /// `int8`.
    pub code: i64,
}

/// `n` rows to write, made before anything is measured (the same for every driver).
pub fn sink_rows(n: usize) -> Vec<SinkRow> {
    (1..=n as i32)
        .map(|i| SinkRow {
            id: i,
            name: format!("row {i}"),
            price: f64::from(i) * 0.5,
            code: i64::from(i) * 7,
        })
        .collect()
}

/// Checks `bench_sink` on the server after a write of `n` rows from [`sink_rows`]:
/// the row count, the sum of the ids (each id once), and how many rows hold a value
/// other than the one [`sink_rows`] gives their id (must be 0): every value written
/// is compared.
pub const SINK_CHECK_SQL: &str = "SELECT count(*), sum(id)::int8, count(*) FILTER (WHERE \
     name IS DISTINCT FROM 'row ' || id OR price IS DISTINCT FROM id * 0.5::float8 \
     OR code IS DISTINCT FROM id * 7::int8) FROM bench_sink";

/// What [`SINK_CHECK_SQL`] must return after `n` rows were written.
pub fn sink_check_expected(n: usize) -> (i64, i64, i64) {
    let n = n as i64;
    (n, n * (n + 1) / 2, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_rows_follow_the_fixture() {
        let row = MixedRow::expected(10);
        assert_eq!(row.name, "name 10");
        assert_eq!(row.note, None);
        assert_eq!(row.payload, [10u8; 16]);
        assert_eq!(
            (row.price, row.score, row.tag.as_str()),
            (2.5, 1.25, "tag0")
        );
        assert_eq!(MixedRow::expected(7).note.as_deref(), Some("xxxxxxx"));
        let mut check = MixedCheck::new();
        check.add(&MixedRow::expected(1000));
        let mut wrong = MixedRow::expected(3);
        wrong.ok = false;
        check.add(&wrong);
        assert_eq!((check.rows, check.wrong), (2, 1));
    }

    #[test]
    fn sums() {
        let mut sum = SeriesSum::default();
        (1..=4).for_each(|v| sum.add(v));
        assert_eq!(sum, SeriesSum::expected(4));
        assert_eq!(sink_check_expected(sink_rows(3).len()), (3, 6, 0));
    }
}
