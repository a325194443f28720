//! Scripted faults: what is retried and what is not, `Retry-After`, bans,
//! slow and cut-short answers, and the circuit breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ordermon_domain::ids::InstrumentId;
use ordermon_domain::ports::{MarketDataError, MarketDataProvider};
use ordermon_marketdata::{BreakerState, ProviderKind, build};

use crate::support::{Reply, Server, config};

fn btc() -> InstrumentId {
    InstrumentId::new("BTCUSDT.BINANCE").unwrap()
}

fn ticker() -> Reply {
    Reply::fixture("binance_book_ticker_btcusdt.json")
}

#[tokio::test]
async fn bursts_of_5xx_are_retried() {
    let server = Server::start(|_, n| {
        if n < 2 {
            Reply::json("<html>bad gateway</html>").status(if n == 0 { 502 } else { 503 })
        } else {
            ticker()
        }
    })
    .await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 3);
    assert_eq!(p.breaker_state(), BreakerState::Closed);
}

#[tokio::test]
async fn retries_are_bounded_and_back_off() {
    let server = Server::start(|_, _| Reply::json("{}").status(500)).await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    let e = p.quote(&btc()).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::Unavailable(ref m) if m.contains("HTTP 500") && m.contains("after 3 attempts")),
        "{e:?}"
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 3, "max_attempts = 3");
    // Backoff from 20 ms, doubling, with jitter on top: never less than the
    // nominal delay.
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(20));
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(40));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for status in [400_u16, 401, 403, 404, 405] {
        let server = Server::start(move |_, _| {
            Reply::json(r#"{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}"#)
                .status(status)
        })
        .await;
        let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
        let e = p.quote(&btc()).await.unwrap_err();
        assert!(
            matches!(e, MarketDataError::Refused(ref m) if m.contains(&format!("HTTP {status}")) && m.contains("-2015")),
            "{status}: {e:?}"
        );
        assert_eq!(server.count(), 1, "{status} is not retried");
        assert_eq!(
            p.breaker_state(),
            BreakerState::Closed,
            "a refusal is an answer"
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = Server::start(|_, n| {
        if n == 0 {
            Reply::fixture("binance_error_too_much_weight.json")
                .status(429)
                .header("Retry-After", "1")
        } else {
            ticker()
        }
    })
    .await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    p.quote(&btc()).await.unwrap();
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    let spacing = hits[1].at - hits[0].at;
    assert!(
        spacing >= Duration::from_millis(990),
        "retried after {spacing:?}"
    );
    assert!(
        spacing < Duration::from_millis(1800),
        "retried after {spacing:?}"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_is_returned_not_waited() {
    let server = Server::start(|_, _| {
        Reply::fixture("binance_error_too_much_weight.json")
            .status(429)
            .header("Retry-After", "30")
    })
    .await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    let started = Instant::now();
    let e = p.quote(&btc()).await.unwrap_err();
    assert_eq!(
        e,
        MarketDataError::RateLimited {
            retry_after_secs: Some(30)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // The pause holds for every caller: the next call does not go out.
    let e = p.quote(&btc()).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::RateLimited { retry_after_secs: Some(s) } if (29..=30).contains(&s)),
        "{e:?}"
    );
    assert_eq!(server.count(), 1);
    assert_eq!(p.health().paused.as_deref(), Some("retry_after"));
}

#[tokio::test]
async fn an_ip_ban_stops_requests_for_its_duration() {
    let server = Server::start(|_, _| {
        Reply::fixture("binance_error_banned.json")
            .status(418)
            .header("Retry-After", "120")
    })
    .await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    let started = Instant::now();
    let e = p.quote(&btc()).await.unwrap_err();
    assert_eq!(
        e,
        MarketDataError::RateLimited {
            retry_after_secs: Some(120)
        }
    );
    for _ in 0..5 {
        let e = p.quote(&btc()).await.unwrap_err();
        assert!(
            matches!(e, MarketDataError::RateLimited { retry_after_secs: Some(s) } if s > 100),
            "{e:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting, no tight loop"
    );
    assert_eq!(server.count(), 1, "a ban is not retried");
    let health = p.health();
    assert_eq!(health.paused.as_deref(), Some("ban"));
    assert!(health.paused_for_ms.is_some_and(|ms| ms > 100_000));
    assert_eq!(health.breaker, BreakerState::Closed);
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let server = Server::start(|_, n| {
        if n == 0 {
            ticker().delay(Duration::from_secs(2))
        } else {
            ticker()
        }
    })
    .await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    let started = Instant::now();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 2);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );

    let server = Server::start(|_, _| ticker().delay(Duration::from_secs(2))).await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    let e = p.quote(&btc()).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::Unavailable(ref m) if m.contains("timed out")),
        "{e:?}"
    );
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn the_call_timeout_bounds_the_whole_call() {
    let server =
        Server::start(|_, _| Reply::json("{}").status(503).header("Retry-After", "1")).await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.call_timeout = Duration::from_millis(600);
    c.retry.max_attempts = 10;
    let p = build(&c, None).unwrap();
    let started = Instant::now();
    let e = p.quote(&btc()).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::Unavailable(ref m) if m.contains("HTTP 503")),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        server.count(),
        1,
        "a 1 s Retry-After does not fit in 600 ms"
    );
}

#[tokio::test]
async fn cut_short_answers_are_retried() {
    let server = Server::start(|_, n| if n == 0 { ticker().cut() } else { ticker() }).await;
    let p = build(&config(ProviderKind::Binance, &server.url), None).unwrap();
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let down = Arc::new(AtomicBool::new(true));
    let flag = down.clone();
    let server = Server::start(move |_, _| {
        if flag.load(Ordering::SeqCst) {
            Reply::json("{}").status(500)
        } else {
            ticker()
        }
    })
    .await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.retry.max_attempts = 1;
    c.breaker.failures = 3;
    c.breaker.cool_down = Duration::from_millis(300);
    let p = build(&c, None).unwrap();

    for _ in 0..3 {
        assert!(matches!(
            p.quote(&btc()).await,
            Err(MarketDataError::Unavailable(_))
        ));
    }
    assert_eq!(p.breaker_state(), BreakerState::Open);
    let health = p.health();
    assert!(!health.is_ready());
    assert_eq!(health.consecutive_failures, 3);
    assert!(
        health
            .last_failure
            .as_deref()
            .is_some_and(|f| f.contains("HTTP 500"))
    );
    // Open: fail fast, nothing sent.
    let e = p.quote(&btc()).await.unwrap_err();
    assert!(
        matches!(e, MarketDataError::Unavailable(ref m) if m.contains("circuit open")),
        "{e:?}"
    );
    assert_eq!(server.count(), 3);

    // After the cool-down one probe goes; it fails: open again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(p.quote(&btc()).await.is_err());
    assert_eq!(server.count(), 4);
    assert_eq!(p.breaker_state(), BreakerState::Open);
    assert!(p.quote(&btc()).await.is_err());
    assert_eq!(server.count(), 4);

    // The provider recovers; the next probe closes the circuit.
    down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    p.quote(&btc()).await.unwrap();
    assert_eq!(p.breaker_state(), BreakerState::Closed);
    assert!(p.health().is_ready());
    p.quote(&btc()).await.unwrap();
    assert_eq!(server.count(), 6);
}

#[tokio::test]
async fn only_one_probe_goes_while_half_open() {
    let server = Server::start(|_, n| {
        if n == 0 {
            Reply::json("{}").status(500)
        } else {
            ticker().delay(Duration::from_millis(200))
        }
    })
    .await;
    let mut c = config(ProviderKind::Binance, &server.url);
    c.retry.max_attempts = 1;
    c.breaker.failures = 1;
    c.breaker.cool_down = Duration::from_millis(100);
    let p = build(&c, None).unwrap();
    assert!(p.quote(&btc()).await.is_err());
    tokio::time::sleep(Duration::from_millis(150)).await;
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.quote(&btc()).await })
        })
        .collect();
    let mut ok = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(matches!(e, MarketDataError::Unavailable(_)), "{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(server.count(), 2, "the failure and one probe");
    assert_eq!(p.breaker_state(), BreakerState::Closed);
}
