//! Demo users on the embedded default: an admin, two traders whose strategies
//! trade the simulated market on the paper venue, and a viewer — so the
//! dashboard has something to show the minute the server starts.
//!
//! Each user is created only when missing, and gets the demo password only
//! when it is created here: an operator's later change is never undone. A
//! deployment turns this off with `demo.users = false` (and sets its own
//! passwords with `monitor-server user set-password`).

use chrono::{DateTime, Utc};
use ordermon_application::{AppError, CreateUser, Engine};
use ordermon_domain::Decimal;
use ordermon_domain::ids::{InstrumentId, StrategyId, UserId};
use ordermon_domain::strategy::{Strategy, StrategyStatus};
use ordermon_domain::user::Role;
use ordermon_domain::values::{Currency, Money};

use ordermon_application::sign_in::SignInService;

/// The password every demo user gets (documented in the README; demo only).
pub(crate) const DEMO_PASSWORD: &str = "ordermon-demo";

/// A demo user: id, name, role, and whether it trades.
const USERS: [(&str, &str, Role, bool); 4] = [
    ("admin", "Demo admin", Role::Admin, false),
    ("demo-trader-1", "Demo trader 1", Role::Trader, true),
    ("demo-trader-2", "Demo trader 2", Role::Trader, true),
    ("demo-viewer", "Demo viewer", Role::Viewer, false),
];

/// Cash each demo trader starts with, per currency.
const CASH: [(&str, i64); 3] = [("USD", 1_000_000), ("USDT", 1_000_000), ("HKD", 5_000_000)];

/// Creates the demo users that are missing; returns how many were created.
///
/// # Errors
/// The engine or the sign-in service refusing a step (a store failure).
pub(crate) async fn seed_demo_users(
    engine: &Engine,
    sign_in: &SignInService,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut created = 0;
    for (n, (id, name, role, trades)) in USERS.iter().enumerate() {
        let user = UserId::new(*id)?;
        match engine.users.get(&user).await {
            Ok(_) => continue,
            Err(AppError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        engine
            .users
            .create(CreateUser {
                id: user.clone(),
                name: (*name).to_owned(),
                status: Default::default(),
                role: *role,
                account_type: Default::default(),
                limits: Default::default(),
            })
            .await?;
        sign_in.set_password(&user, DEMO_PASSWORD).await?;
        if *trades {
            fund(engine, &user).await?;
            strategies(engine, &user, n, now).await?;
        }
        created += 1;
    }
    if created > 0 {
        tracing::warn!(
            users = created,
            "seeded demo users with the documented demo password; set `demo.users = false` \
             outside a demo and change passwords with `monitor-server user set-password`"
        );
    }
    Ok(created)
}

async fn fund(engine: &Engine, user: &UserId) -> anyhow::Result<()> {
    for (currency, amount) in CASH {
        let money = Money::new(Decimal::from(amount), Currency::new(currency)?)?;
        engine
            .accounts
            .adjust_cash(user, money, "demo deposit".to_owned())
            .await?;
    }
    Ok(())
}

async fn strategies(
    engine: &Engine,
    user: &UserId,
    n: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    // Two traders with different windows so their orders do not mirror each other.
    let window = 6 + 4 * n;
    let plans = [
        (
            "ACME.SIM",
            "mean_reversion",
            serde_json::json!({
                "window": window, "threshold_pct": "0.0004", "quantity": "10", "max_position": "200"
            }),
        ),
        (
            "AAPL.XNAS",
            "mean_reversion",
            serde_json::json!({
                "window": window + 4, "threshold_pct": "0.0003", "quantity": "5", "max_position": "100"
            }),
        ),
    ];
    for (instrument, kind, params) in plans {
        let instrument = InstrumentId::new(instrument)?;
        if engine.instruments.catalog().get(&instrument).is_none() {
            continue;
        }
        let id = StrategyId::new(format!(
            "{user}-{}-{}",
            kind.replace('_', "-"),
            instrument.as_str().to_ascii_lowercase().replace('.', "-")
        ))?;
        engine
            .strategies
            .create(Strategy {
                id,
                user_id: user.clone(),
                strategy_type: kind.to_owned(),
                name: format!("Mean reversion {instrument}"),
                instruments: vec![instrument],
                params,
                status: StrategyStatus::Enabled,
                stats: Default::default(),
                created_at: now,
                updated_at: now,
                version: 0,
                sequence: 0,
            })
            .await?;
    }
    Ok(())
}
