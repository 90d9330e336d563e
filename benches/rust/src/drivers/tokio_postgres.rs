//! tokio-postgres 0.7: statements prepared once per connection (it has no cache),
//! the `Connection` future spawned as its own task, as its docs show.

use std::sync::Arc;

use futures_util::future::try_join_all;
use futures_util::{pin_mut, TryStreamExt};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{check_tiny, Adapter, BoxError, Result};
use crate::spec::{
    MixedCheck, MixedRow, SeriesSum, SinkRow, COPY_SQL, INSERT_SQL, MIXED_SQL, ONE_ROW_SQL,
    SERIES_SQL, TINY_SQL,
};
use crate::target::{Endpoint, Target};

/// One tokio-postgres client, its statements prepared.
pub struct TokioPostgres {
    /// Shared with the tasks of `shared_tiny`; held alone otherwise.
    client: Arc<Client>,
    tiny: Statement,
    one_row: Statement,
    mixed: Statement,
    series: Statement,
    insert: Statement,
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

impl Adapter for TokioPostgres {
    async fn connect(target: &Target) -> Result<Self> {
        let mut config = tokio_postgres::Config::new();
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
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("tokio-postgres connection: {e}");
            }
        });
        Ok(TokioPostgres {
            tiny: client.prepare(TINY_SQL).await?,
            one_row: client.prepare(ONE_ROW_SQL).await?,
            mixed: client.prepare(MIXED_SQL).await?,
            series: client.prepare(SERIES_SQL).await?,
            insert: client.prepare(INSERT_SQL).await?,
            client: Arc::new(client),
        })
    }

    async fn tiny(&mut self, value: i32) -> Result<i32> {
        Ok(self.client.query_one(&self.tiny, &[&value]).await?.get(0))
    }

    async fn one_row(&mut self, key: i32) -> Result<MixedRow> {
        let row = self.client.query_one(&self.one_row, &[&key]).await?;
        Ok(mixed_row(&row))
    }

    async fn mixed(&mut self, check: &mut MixedCheck) -> Result<()> {
        for row in self.client.query(&self.mixed, &[]).await? {
            check.add(&mixed_row(&row));
        }
        Ok(())
    }

    async fn series(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        for row in self.client.query(&self.series, &[&n]).await? {
            sum.add(row.get(0));
        }
        Ok(())
    }

    async fn series_stream(&mut self, n: i32, sum: &mut SeriesSum) -> Result<()> {
        let rows = self.client.query_raw(&self.series, [n]).await?;
        pin_mut!(rows);
        while let Some(row) = rows.try_next().await? {
            sum.add(row.get(0));
        }
        Ok(())
    }

    async fn executemany(&mut self, rows: &[SinkRow]) -> Result<()> {
        // Every execute future is polled at once: the client sends each request as
        // soon as it is polled, without waiting for the previous answer (pipelining).
        let client = Arc::get_mut(&mut self.client).ok_or("the client is still shared")?;
        let tx = client.transaction().await?;
        let insert = &self.insert;
        let tx_ref = &tx;
        try_join_all(rows.iter().map(|r| async move {
            tx_ref
                .execute(insert, &[&r.id, &r.name, &r.price, &r.code])
                .await
        }))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn shared_tiny(&mut self, tasks: u64, per_task: u64, first: u64) -> Result<()> {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let client = Arc::clone(&self.client);
                let tiny = self.tiny.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let value = (first + t * per_task + i) as i32;
                        let got: i32 = client.query_one(&tiny, &[&value]).await?.get(0);
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
        let sink = self.client.copy_in(COPY_SQL).await?;
        let writer =
            BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TEXT, Type::FLOAT8, Type::INT8]);
        pin_mut!(writer);
        for r in rows {
            writer
                .as_mut()
                .write(&[&r.id, &r.name, &r.price, &r.code])
                .await?;
        }
        Ok(writer.finish().await?)
    }
}
