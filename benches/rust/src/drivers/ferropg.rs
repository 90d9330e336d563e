//! ferropg (`crates/ferropg`): SQL text through its statement cache, as its users
//! write it; the INSERT prepared once for the write workload. The shared-client
//! workloads use a `Client` of its own, made when first needed.

use std::sync::Arc;

use ferropg::{BinaryCopyIn, Client, Config, Connection, Row, Statement, ToSql, Type};

use super::{check_tiny, Adapter, BoxError, Result};
use crate::spec::{
    MixedCheck, MixedRow, SeriesSum, SinkRow, COPY_SQL, INSERT_SQL, MIXED_SQL, ONE_ROW_SQL,
    SERIES_SQL, TINY_SQL,
};
use crate::target::{Endpoint, Target};

/// One ferropg connection.
pub struct Ferropg {
    conn: Connection,
    insert: Statement,
    config: Config,
    /// The shared client, once a workload asked for it.
    client: Option<Arc<Client>>,
}

impl Ferropg {
    /// The shared client, connected when first asked for.
    async fn client(&mut self) -> Result<&mut Arc<Client>> {
        if self.client.is_none() {
            self.client = Some(Arc::new(Client::connect(&self.config).await?));
        }
        Ok(self.client.as_mut().expect("just set"))
    }
}

/// One `bench_sink` row as `execute_many`'s parameters.
fn sink_params(r: &SinkRow) -> [&(dyn ToSql + Sync); 4] {
    [&r.id, &r.name, &r.price, &r.code]
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
        let config = config(target);
        let mut conn = ferropg::connect(&config).await?;
        let insert = conn.prepare(INSERT_SQL).await?;
        Ok(Ferropg {
            conn,
            insert,
            config,
            client: None,
        })
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
        // Pipelined: Sync groups of rows written back to back, a few in flight.
        let mut tx = self.conn.transaction().await?;
        let n = tx
            .execute_many(&self.insert, rows.iter().map(sink_params))
            .await?;
        tx.commit().await?;
        check_count(n, rows.len())
    }

    async fn client_executemany(&mut self, rows: &[SinkRow]) -> Result<()> {
        let client = Arc::get_mut(self.client().await?).ok_or("the client is still shared")?;
        let tx = client.transaction().await?;
        let n = tx
            .execute_many(INSERT_SQL, rows.iter().map(sink_params))
            .await?;
        tx.commit().await?;
        check_count(n, rows.len())
    }

    async fn shared_tiny(&mut self, tasks: u64, per_task: u64, first: u64) -> Result<()> {
        let client = Arc::clone(self.client().await?);
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let client = Arc::clone(&client);
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let value = (first + t * per_task + i) as i32;
                        let got: i32 = client.query_one(TINY_SQL, &[&value]).await?.get(0);
                        check_tiny(value, got)?;
                    }
                    Ok::<(), BoxError>(())
                })
            })
            .collect();
        for handle in handles {
            handle.await??;
        }
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

/// The check of `execute_many`'s count.
fn check_count(n: u64, rows: usize) -> Result<()> {
    if n == rows as u64 {
        Ok(())
    } else {
        Err(format!("executemany: {n} rows inserted, not {rows}").into())
    }
}
