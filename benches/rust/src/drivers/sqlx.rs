//! sqlx 0.8: `sqlx::query` on a `PgConnection` with its statement cache, as its docs
//! show; statement logging off (a knob its users have, and logging is not what is
//! measured).

use futures_util::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{ConnectOptions, Connection, Row};

use super::{Adapter, Result};
use crate::spec::{
    MixedCheck, MixedRow, SeriesSum, SinkRow, COPY_SQL, INSERT_SQL, MIXED_SQL, ONE_ROW_SQL,
    SERIES_SQL, TINY_SQL,
};
use crate::target::{Endpoint, Target};

/// One sqlx connection.
pub struct Sqlx {
    conn: PgConnection,
}

/// COPY data goes out in pieces of this size: large enough that the per-message
/// cost vanishes, small enough to stay in the socket's buffer.
const COPY_CHUNK: usize = 64 * 1024;

fn mixed_row(row: &PgRow) -> Result<MixedRow> {
    Ok(MixedRow {
        id: row.try_get(0)?,
        code: row.try_get(1)?,
        name: row.try_get(2)?,
        price: row.try_get(3)?,
        ok: row.try_get(4)?,
        payload: row.try_get(5)?,
        qty: row.try_get(6)?,
        score: row.try_get(7)?,
        note: row.try_get(8)?,
        tag: row.try_get(9)?,
    })
}

/// The rows as a binary COPY payload, built by hand: sqlx has no typed COPY
/// writer, only `copy_in_raw`, so this is what its users must write.
fn copy_payload(rows: &[SinkRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(19 + rows.len() * 48 + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        out.extend_from_slice(&4i16.to_be_bytes());
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&r.id.to_be_bytes());
        out.extend_from_slice(&(r.name.len() as i32).to_be_bytes());
        out.extend_from_slice(r.name.as_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&r.price.to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&r.code.to_be_bytes());
    }
    out.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
    out
}

impl Adapter for Sqlx {
    async fn connect(target: &Target) -> Result<Self> {
        let mut options = PgConnectOptions::new()
            .port(target.port)
            .username(&target.user)
            .database(&target.dbname);
        options = match &target.host {
            Endpoint::Socket(dir) => options.socket(dir),
            Endpoint::Tcp(host) => options.host(host),
        };
        if let Some(password) = &target.password {
            options = options.password(password);
        }
        let conn = PgConnection::connect_with(&options.disable_statement_logging()).await?;
        Ok(Sqlx { conn })
    }

    async fn tiny(&mut self, value: i32) -> Result<i32> {
        let row = sqlx::query(TINY_SQL)
            .bind(value)
            .fetch_one(&mut self.conn)
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn one_row(&mut self, key: i32) -> Result<MixedRow> {
        let row = sqlx::query(ONE_ROW_SQL)
            .bind(key)
            .fetch_one(&mut self.conn)
            .await?;
        mixed_row(&row)
    }

    async fn mixed(&mut self, check: &mut MixedCheck) -> Result<()> {
        for row in sqlx::query(MIXED_SQL).fetch_all(&mut self.conn).await? {
            check.add(&mixed_row(&row)?);
        }
        Ok(())
    }

    async fn series(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        for row in sqlx::query(SERIES_SQL)
            .bind(n)
            .fetch_all(&mut self.conn)
            .await?
        {
            sum.add(row.try_get(0)?);
        }
        Ok(())
    }

    async fn series_stream(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        let mut rows = sqlx::query(SERIES_SQL).bind(n).fetch(&mut self.conn);
        while let Some(row) = rows.try_next().await? {
            sum.add(row.try_get(0)?);
        }
        Ok(())
    }

    async fn executemany(&mut self, rows: &[SinkRow]) -> Result<()> {
        // sqlx cannot pipeline: every query takes `&mut` of the connection, so each
        // INSERT waits for its answer (one round trip per row).
        let mut tx = self.conn.begin().await?;
        for r in rows {
            sqlx::query(INSERT_SQL)
                .bind(r.id)
                .bind(&r.name)
                .bind(r.price)
                .bind(r.code)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn copy_in(&mut self, rows: &[SinkRow]) -> Result<u64> {
        let payload = copy_payload(rows);
        let mut copy = self.conn.copy_in_raw(COPY_SQL).await?;
        for chunk in payload.chunks(COPY_CHUNK) {
            copy.send(chunk).await?;
        }
        Ok(copy.finish().await?)
    }
}
