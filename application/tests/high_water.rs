//! The portfolio high-water mark is stored: drawdown survives a restart and
//! is the same for a second engine over the same store.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{d, engine, funded_user, usd};
use ordermon_application::committer::CommitConfig;
use ordermon_application::market::QuoteBook;
use ordermon_application::persistence::Persistence;
use ordermon_application::{Engine, EngineConfig, VenueMode};
use ordermon_domain::ports::{HighWaterRepository as _, SystemClock};
use ordermon_domain::values::Money;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread")]
async fn drawdown_survives_a_restart() {
    let h = engine(VenueMode::External).await;
    let alice = funded_user(&h, "alice", "10000").await;
    let view = h.engine.accounts.portfolio(&alice).await.unwrap();
    assert_eq!(view.account.high_water_mark, d("10000"));
    h.engine
        .accounts
        .adjust_cash(
            &alice,
            Money::new(d("-1500"), usd()).unwrap(),
            "withdrawal".into(),
        )
        .await
        .unwrap();
    let view = h.engine.accounts.portfolio(&alice).await.unwrap();
    assert_eq!(view.account.high_water_mark, d("10000"));
    assert_eq!(view.account.drawdown, d("1500"));
    let stored = h.store.get_high_water(&alice).await.unwrap().unwrap();
    assert_eq!((stored.value, stored.currency), (d("10000"), usd()));
    h.engine.shutdown().await;

    // A new engine (a restart, or another instance) over the same store.
    let again = Engine::start(
        Persistence::from_backend(h.store.clone()),
        Arc::new(QuoteBook::new(1024)),
        Arc::new(SystemClock),
        EngineConfig {
            venue_mode: VenueMode::External,
            ..EngineConfig::default()
        },
        CommitConfig::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let view = again.accounts.portfolio(&alice).await.unwrap();
    assert_eq!(view.account.high_water_mark, d("10000"));
    assert_eq!(view.account.drawdown, d("1500"));
    // A new high raises it once, for everyone.
    again
        .accounts
        .adjust_cash(
            &alice,
            Money::new(d("2000"), usd()).unwrap(),
            "deposit".into(),
        )
        .await
        .unwrap();
    let view = again.accounts.portfolio(&alice).await.unwrap();
    assert_eq!(
        (view.account.high_water_mark, view.account.drawdown),
        (d("10500"), d("0"))
    );
    let stored = h.store.get_high_water(&alice).await.unwrap().unwrap();
    assert_eq!((stored.value, stored.version), (d("10500"), 2));
    again.shutdown().await;
}
