//! ferropg (`crates/ferropg`): SQL text through its statement cache, as its users
//! write it; the INSERT prepared once for the write workload.

use ferropg::{BinaryCopyIn, Config, Connection, Row, Statement, Type};

use super::{Adapter, Result};
use crate::spec::{
    MixedCheck, MixedRow, SeriesSum, SinkRow, COPY_SQL, INSERT_SQL, MIXED_SQL, ONE_ROW_SQL,
    SERIES_SQL, TINY_SQL,
};
use crate::target::{Endpoint, Target};

/// One ferropg connection.
pub struct Ferropg {
    conn: Connection,
    insert: Statement,
}

/// ferropg's settings for `target`.
pub fn config(target: &Target) -> Config {
    let mut config = Config::new();
    match &target.host {
        Endpoint::Socket(dir) => config.host_path(dir),
        Endpoint::Tcp(host) => config.host(host),
    };
    config
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname);
    if let Some(password) = &target.password {
        config.password(password);
    }
    config
}

fn mixed_row(row: &Row) -> MixedRow {
    MixedRow {
        id: row.get(0),
        code: row.get(1),
        name: row.get(2),
        price: row.get(3),
        ok: row.get(4),
        payload: row.get(5),
        qty: row.get(6),
        score: row.get(7),
        note: row.get(8),
        tag: row.get(9),
    }
}

impl Adapter for Ferropg {
    async fn connect(target: &Target) -> Result<Self> {
        let mut conn = ferropg::connect(&config(target)).await?;
        let insert = conn.prepare(INSERT_SQL).await?;
        Ok(Ferropg { conn, insert })
    }

    async fn tiny(&mut self, value: i32) -> Result<i32> {
        Ok(self.conn.query_one(TINY_SQL, &[&value]).await?.get(0))
    }

    async fn one_row(&mut self, key: i32) -> Result<MixedRow> {
        let row = self.conn.query_one(ONE_ROW_SQL, &[&key]).await?;
        Ok(mixed_row(&row))
    }

    async fn mixed(&mut self, check: &mut MixedCheck) -> Result<()> {
        for row in self.conn.query(MIXED_SQL, &[]).await? {
            check.add(&mixed_row(&row));
        }
        Ok(())
    }

    async fn series(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        for row in self.conn.query(SERIES_SQL, &[&n]).await? {
            sum.add(row.get(0));
        }
        Ok(())
    }

    async fn series_stream(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        let mut rows = self.conn.query_stream(SERIES_SQL, &[&n]).await?;
        while let Some(row) = rows.next().await {
            sum.add(row?.get(0));
        }
        Ok(())
    }

    async fn executemany(&mut self, rows: &[SinkRow]) -> Result<()> {
        // ferropg has no pipelining yet (no shared client, no batch API): one
        // round trip per row, which the report marks.
        let mut tx = self.conn.transaction().await?;
        for r in rows {
            tx.execute(&self.insert, &[&r.id, &r.name, &r.price, &r.code])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn copy_in(&mut self, rows: &[SinkRow]) -> Result<u64> {
        let copy = self.conn.copy_in(COPY_SQL).await?;
        let mut writer =
            BinaryCopyIn::new(copy, &[Type::INT4, Type::TEXT, Type::FLOAT8, Type::INT8]);
        for r in rows {
            writer.write(&[&r.id, &r.name, &r.price, &r.code]).await?;
        }
        Ok(writer.finish().await?)
    }
}
