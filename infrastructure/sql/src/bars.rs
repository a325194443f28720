//! Market bars: reference data kept in plain columns (no JSON copy), upserted in
//! multi-row statements outside the order transactions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordermon_domain::ids::InstrumentId;
use ordermon_domain::market::{Bar, BarInterval};
use ordermon_domain::ports::{BarRepository, StoreError};
use ordermon_domain::values::Price;

use crate::conn::{Kind, Val};
use crate::decode::{corrupt, dec, parsed, ts};
use crate::store::SqlStore;
use crate::url::Dialect;

const COLUMNS: &str =
    "instrument_id, bar_interval, open_time, open_px, high_px, low_px, close_px, volume";

/// Bars per upsert statement (8 parameters each).
const CHUNK: usize = 500;

fn price(row: &[crate::conn::Cell], i: usize) -> Result<Price, StoreError> {
    Price::new(dec(row, i)?).map_err(|e| corrupt(format!("bad stored price: {e}")))
}

#[async_trait]
impl BarRepository for SqlStore {
    async fn upsert_bars(&self, bars: &[Bar]) -> Result<u64, StoreError> {
        let conflict = match self.dialect() {
            Dialect::Sqlite | Dialect::Postgres => {
                " ON CONFLICT (instrument_id, bar_interval, open_time) DO UPDATE SET \
                 open_px = excluded.open_px, high_px = excluded.high_px, \
                 low_px = excluded.low_px, close_px = excluded.close_px, volume = excluded.volume"
            }
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE open_px = VALUES(open_px), high_px = VALUES(high_px), \
                 low_px = VALUES(low_px), close_px = VALUES(close_px), volume = VALUES(volume)"
            }
        };
        let statements: Vec<(String, Vec<Val>)> = bars
            .chunks(CHUNK)
            .map(|chunk| {
                let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let sql = format!("INSERT INTO bars ({COLUMNS}) VALUES {rows}{conflict}");
                let args = chunk
                    .iter()
                    .flat_map(|b| {
                        [
                            Val::text(&b.instrument_id),
                            Val::text(b.interval.as_str()),
                            Val::Ts(b.open_time),
                            Val::Dec(b.open.get()),
                            Val::Dec(b.high.get()),
                            Val::Dec(b.low.get()),
                            Val::Dec(b.close.get()),
                            Val::Dec(b.volume),
                        ]
                    })
                    .collect();
                (sql, args)
            })
            .collect();
        if statements.is_empty() {
            return Ok(0);
        }
        // Drivers count an upsert's update as 2 rows (MySQL) or 1; report bars written.
        self.exec_each(&statements).await?;
        Ok(bars.len() as u64)
    }

    async fn bars(
        &self,
        instrument: &InstrumentId,
        interval: BarInterval,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Bar>, StoreError> {
        let n = if limit == 0 { 100 } else { limit.min(10_000) };
        let sql = format!(
            "SELECT {COLUMNS} FROM bars WHERE instrument_id = ? AND bar_interval = ? \
             AND open_time >= ? AND open_time < ? ORDER BY open_time LIMIT ?"
        );
        let args = vec![
            Val::text(instrument),
            Val::text(interval.as_str()),
            Val::Ts(from),
            Val::Ts(to),
            Val::Int(i64::from(n)),
        ];
        let kinds = [
            Kind::Text,
            Kind::Text,
            Kind::Ts,
            Kind::Dec,
            Kind::Dec,
            Kind::Dec,
            Kind::Dec,
            Kind::Dec,
        ];
        let rows = self.fetch(&sql, args, &kinds).await?;
        rows.iter()
            .map(|r| {
                Ok(Bar {
                    instrument_id: parsed(r, 0, "instrument id")?,
                    interval: parsed(r, 1, "bar interval")?,
                    open_time: ts(r, 2)?,
                    open: price(r, 3)?,
                    high: price(r, 4)?,
                    low: price(r, 5)?,
                    close: price(r, 6)?,
                    volume: dec(r, 7)?,
                })
            })
            .collect()
    }
}
