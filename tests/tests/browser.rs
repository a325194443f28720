//! The dashboard in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver) against a real server on the embedded SQLite
//! default with the demo users trading the simulated market.
//!
//! Screenshots of every page at 1280×800 and 390×844 go to
//! `target/browser-screenshots/` (not committed), with `perf.json` holding the
//! first-paint and blotter-scrolling figures `docs/benchmarks.md` quotes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ordermon::RunningApp;
use ordermon::config::{Config, ServiceUrl};
use ordermon_domain::user::Role;
use ordermon_tests::webdriver::Browser;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DEMO_PASSWORD: &str = "ordermon-demo";
const PASSWORD: &str = "e2e-password-123";
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    running: RunningApp,
    base: String,
    admin: String,
    http: reqwest::Client,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where screenshots and figures go.
fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("browser-screenshots")
}

/// A server on a fresh SQLite file, as the README's first command runs it
/// (demo instruments, the simulated feed, the paper venue), demo users on or off.
async fn server(demo_users: bool) -> Server {
    let dir = std::env::temp_dir().join(format!(
        "ordermon-browser-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut config = Config::default();
    config.database.url = ServiceUrl::new(format!("sqlite://{}/ordermon.db", dir.display()));
    config.auth.jwt_secret = Some(
        "browser-secret-0123456789abcdef0123456789"
            .to_owned()
            .into(),
    );
    config.logs.dir = dir.join("logs");
    config.demo.instruments = true;
    config.auth.bootstrap_admin = Some("root".into());
    config.demo.users = demo_users;
    let app = ordermon::build(config).await.expect("the app builds");
    let running = app
        .spawn(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        )
        .expect("the app serves");
    let admin = running
        .mint_token("root", Role::Admin, Duration::from_secs(3600))
        .expect("token");
    let base = running.base_url();
    Server {
        running,
        base,
        admin,
        http: reqwest::Client::new(),
        _dir: TempDir(dir),
    }
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        let (s, b) = self
            .call(reqwest::Method::POST, path, token, Some(body))
            .await;
        assert!(s.is_success(), "POST {path}: {s} {b}");
        b
    }

    async fn get(&self, path: &str, token: &str) -> Value {
        let (s, b) = self.call(reqwest::Method::GET, path, token, None).await;
        assert!(s.is_success(), "GET {path}: {s} {b}");
        b
    }

    /// A funded trader with a password; returns an API token for it.
    async fn trader(&self, id: &str) -> String {
        self.post(
            "/api/v1/users",
            &self.admin,
            json!({"id": id, "name": id, "role": "trader"}),
        )
        .await;
        self.post(
            &format!("/api/v1/users/{id}/cash"),
            &self.admin,
            json!({"currency": "USD", "amount": "1000000", "reason": "e2e deposit"}),
        )
        .await;
        let (s, b) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/users/{id}/password"),
                &self.admin,
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "set password: {b}");
        self.running
            .mint_token(id, Role::Trader, Duration::from_secs(3600))
            .expect("token")
    }
}

async fn sign_in(b: &Browser, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/")).await.expect("open");
    b.wait_for("#signin-form", WAIT)
        .await
        .expect("the sign-in page");
    b.type_into("#user", user).await.expect("user");
    b.type_into("#password", password).await.expect("password");
    b.click_css("#signin-submit").await.expect("submit");
    b.wait_for("#signout", WAIT).await.expect("signed in");
}

async fn sign_out(b: &Browser) {
    b.click_css("#signout").await.expect("sign out");
    b.wait_for("#signin-form", WAIT)
        .await
        .expect("back to the sign-in page");
}

async fn page(b: &Browser, name: &str, ready: &str) {
    b.exec(
        "location.hash = arguments[0];",
        vec![json!(format!("#/{name}"))],
    )
    .await
    .expect("navigate");
    b.wait_for(ready, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Every page, admin's view, at one size.
async fn screenshots(b: &Browser, size: &str) {
    let dir = out_dir();
    for (name, ready) in [
        ("overview", "#ov-health dl"),
        ("orders", "#blotter"),
        ("positions", "#positions table"),
        ("strategies", "#strategies table"),
        ("alerts", "#alerts table"),
        ("users", "#users table"),
    ] {
        page(b, name, ready).await;
        // Let live data land before the picture.
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.screenshot(&dir.join(format!("{name}-{size}.png")))
            .await
            .expect("screenshot");
    }
}

fn js_str(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_signs_in_trades_live_and_keeps_traders_apart() {
    let Some(b) = Browser::start(1280, 800).await else {
        return;
    };
    let s = server(true).await;
    let base = s.base.clone();
    let started = Instant::now();

    // The sign-in page first; the keyboard moves from field to field.
    b.goto(&format!("{base}/")).await.expect("open");
    b.wait_for("#signin-form", WAIT)
        .await
        .expect("sign-in page");
    b.screenshot(&out_dir().join("signin-1280.png"))
        .await
        .expect("shot");
    let focused = b
        .exec("return document.activeElement.id", vec![])
        .await
        .expect("focus");
    assert_eq!(js_str(&focused), "user", "the user id field has focus");
    b.keys("\u{E004}").await.expect("tab");
    let focused = b
        .exec("return document.activeElement.id", vec![])
        .await
        .expect("focus");
    assert_eq!(js_str(&focused), "password", "Tab moves to the password");

    // A wrong password is a readable message, not JSON.
    b.type_into("#user", "admin").await.expect("user");
    b.type_into("#password", "not-the-password")
        .await
        .expect("password");
    b.click_css("#signin-submit").await.expect("submit");
    let msg = b
        .wait_until(
            "an error shows",
            "return document.getElementById('signin-error').textContent",
            WAIT,
        )
        .await
        .expect("error");
    assert_eq!(js_str(&msg), "Wrong user id or password.");

    // The demo admin of the README: the overview shows the market trading.
    sign_in(&b, &base, "admin", DEMO_PASSWORD).await;
    b.wait_for("#ov-feed", WAIT).await.expect("overview");
    let trading = b
        .wait_until(
            "the overview shows orders or fills",
            "const li = [...document.querySelectorAll('#ov-feed li')]; \
             return li.some(l => / new | fill /.test(' ' + l.textContent + ' ')) ? li.length : 0;",
            WAIT,
        )
        .await
        .expect("trading within 10 s");
    eprintln!(
        "overview shows trading {:?} after the server started ({trading} events listed)",
        started.elapsed()
    );
    assert!(
        b.find("#nav-users").await.expect("find").is_some(),
        "admins see Users"
    );

    screenshots(&b, "1280").await;
    b.resize(390, 844).await.expect("phone size");
    screenshots(&b, "390").await;
    // Nothing overflows sideways on a phone, except inside the scrolling tables.
    let wide = b
        .exec(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .expect("width");
    assert!(
        wide.as_i64().unwrap_or(999) <= 1,
        "the page scrolls sideways by {wide} px at 390 px"
    );
    b.resize(1280, 800).await.expect("desktop size");

    // Signing out revokes the session: its refresh token no longer works.
    let session = b
        .exec(
            "return JSON.parse(sessionStorage.getItem('ordermon.session'))",
            vec![],
        )
        .await
        .expect("session");
    let refresh = js_str(&session["refresh"]);
    assert!(
        !refresh.is_empty(),
        "a password sign-in keeps a refresh token"
    );
    sign_out(&b).await;
    let resp = s
        .http
        .post(format!("{base}/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .expect("refresh");
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a signed-out session cannot refresh"
    );

    // A trader: an order submitted through the API shows in the blotter within 1 s.
    let alice = s.trader("e2e-alice").await;
    let bob = s.trader("e2e-bob").await;
    sign_in(&b, &base, "e2e-alice", PASSWORD).await;
    assert!(
        b.find("#nav-users").await.expect("find").is_none(),
        "traders do not see Users"
    );
    page(&b, "orders", "#blotter").await;
    b.wait_until(
        "the blotter loaded",
        "return /orders$/.test(document.getElementById('orders-count').textContent)",
        WAIT,
    )
    .await
    .expect("loaded");
    let submitted = Instant::now();
    let order = s
        .post(
            "/api/v1/orders",
            &alice,
            json!({"client_order_id": "e2e-1", "instrument_id": "ACME.SIM", "side": "buy",
                   "type": "limit", "quantity": "3", "price": "1.00", "time_in_force": "gtc"}),
        )
        .await;
    let id = js_str(&order["id"]);
    let row = format!("#blotter .vrow[data-id=\"{id}\"]");
    b.wait_for(&row, Duration::from_secs(1))
        .await
        .expect("the order shows within 1 s");
    eprintln!(
        "order visible in the blotter {:?} after submission",
        submitted.elapsed()
    );
    b.wait_until(
        "the order is accepted",
        &format!("const r = document.querySelector('{row}'); return r && r.dataset.status === 'accepted';"),
        WAIT,
    )
    .await
    .expect("accepted");

    // Cancel from the row: the status changes in place.
    b.click_css(&format!("{row} button[data-action=cancel]"))
        .await
        .expect("cancel");
    b.wait_until(
        "the row shows canceled",
        &format!("const r = document.querySelector('{row}'); return r && r.dataset.status === 'canceled';"),
        WAIT,
    )
    .await
    .expect("canceled in the UI");
    let o = s.get(&format!("/api/v1/orders/{id}"), &alice).await;
    assert_eq!(o["status"], "canceled", "{o}");

    // The event history opens from the row.
    b.click_css(&format!("{row} button[data-action=history]"))
        .await
        .expect("history");
    let hist = b
        .wait_until("the history lists events", "const d = document.querySelector('dialog'); return d && /order\\.canceled/.test(d.innerText) ? d.innerText : '';", WAIT)
        .await
        .expect("history");
    assert!(js_str(&hist).contains("order.initialized"), "{hist}");
    b.click_css("dialog button[value=ok]").await.expect("close");

    // A fill changes the position, live.
    page(&b, "positions", "#positions").await;
    b.wait_until(
        "positions loaded",
        "return document.querySelector('#positions table') !== null",
        WAIT,
    )
    .await
    .expect("positions");
    s.post(
        "/api/v1/orders",
        &alice,
        json!({"client_order_id": "e2e-2", "instrument_id": "ACME.SIM", "side": "buy",
               "type": "market", "quantity": "7", "time_in_force": "ioc"}),
    )
    .await;
    b.wait_until(
        "the position shows",
        "const t = document.querySelector('#positions table'); return t && /ACME\\.SIM/.test(t.innerText) && /\\b7\\b/.test(t.innerText);",
        WAIT,
    )
    .await
    .expect("position updated by the fill");
    let balances = b.text_of("#balances").await.expect("balances");
    assert!(balances.contains("USD"), "{balances}");

    // Disable a strategy from the list.
    s.post(
        "/api/v1/strategies",
        &alice,
        json!({"id": "e2e-mr", "type": "mean_reversion", "name": "E2E mean reversion",
               "instruments": ["ACME.SIM"],
               "params": {"window": 50, "threshold_pct": "0.5", "quantity": "1", "max_position": "1"}}),
    )
    .await;
    page(&b, "strategies", "#strategies table").await;
    b.click_css("button[data-toggle=\"e2e-mr\"]")
        .await
        .expect("disable");
    b.wait_until(
        "the strategy shows disabled",
        "const e = document.querySelector('[data-status=\"e2e-mr\"]'); return e && e.textContent === 'disabled';",
        WAIT,
    )
    .await
    .expect("disabled in the UI");
    let st = s.get("/api/v1/strategies/e2e-mr", &alice).await;
    assert_eq!(st["status"], "disabled", "{st}");

    // Acknowledge an alert: halting alice's trading raises one for her.
    s.post(
        "/api/v1/admin/kill-switch",
        &s.admin,
        json!({"scope": "user", "user_id": "e2e-alice", "state": "halted", "reason": "e2e"}),
    )
    .await;
    page(&b, "alerts", "#alerts").await;
    let ack = b
        .wait_until(
            "an alert to acknowledge",
            "const b = document.querySelector('button[data-ack]'); return b ? b.dataset.ack : '';",
            Duration::from_secs(15),
        )
        .await
        .expect("a firing alert");
    let alert_id = js_str(&ack);
    b.click_css(&format!("button[data-ack=\"{alert_id}\"]"))
        .await
        .expect("ack");
    b.wait_for(&format!("[data-acked=\"{alert_id}\"]"), WAIT)
        .await
        .expect("acknowledged in the UI");
    let a = s.get(&format!("/api/v1/alerts/{alert_id}"), &alice).await;
    assert_eq!(a["acknowledged"], true, "{a}");
    assert_eq!(a["acknowledged_by"], "e2e-alice", "{a}");

    // Another trader sees none of alice's orders.
    sign_out(&b).await;
    s.post(
        "/api/v1/orders",
        &bob,
        json!({"client_order_id": "bob-1", "instrument_id": "ACME.SIM", "side": "buy",
               "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"}),
    )
    .await;
    sign_in(&b, &base, "e2e-bob", PASSWORD).await;
    page(&b, "orders", "#blotter").await;
    b.wait_until(
        "bob's blotter",
        "return document.getElementById('orders-count').textContent === '1 orders'",
        WAIT,
    )
    .await
    .expect("bob sees his one order");
    let text = b.text_of("#blotter").await.expect("blotter");
    assert!(
        text.contains("bob-1") && !text.contains("e2e-1") && !text.contains("e2e-2"),
        "{text}"
    );
    // And alice's new orders do not arrive on his stream.
    s.post(
        "/api/v1/orders",
        &alice,
        json!({"client_order_id": "e2e-3", "instrument_id": "ACME.SIM", "side": "buy",
               "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let text = b.text_of("#blotter").await.expect("blotter");
    assert!(!text.contains("e2e-3"), "{text}");

    // A viewer reads but cannot act.
    sign_out(&b).await;
    // An open order of the viewer's own (placed by an admin) to not be offered for cancel.
    s.post(
        "/api/v1/users/demo-viewer/cash",
        &s.admin,
        json!({"currency": "USD", "amount": "100", "reason": "e2e"}),
    )
    .await;
    let o = s
        .post(
            "/api/v1/orders?user_id=demo-viewer",
            &s.admin,
            json!({"client_order_id": "viewer-1", "instrument_id": "ACME.SIM", "side": "buy",
                   "type": "limit", "quantity": "1", "price": "1.00", "time_in_force": "gtc"}),
        )
        .await;
    assert_eq!(o["status"], "accepted", "{o}");
    sign_in(&b, &base, "demo-viewer", DEMO_PASSWORD).await;
    page(&b, "orders", "#blotter").await;
    assert!(
        b.find("#new-order").await.expect("find").is_none(),
        "viewers get no order form"
    );
    b.wait_until(
        "the viewer's blotter",
        "return /orders$/.test(document.getElementById('orders-count').textContent)",
        WAIT,
    )
    .await
    .expect("loaded");
    let shown = b
        .exec(
            "return [...document.querySelectorAll('#blotter .vrow:not([hidden])')].length",
            vec![],
        )
        .await
        .expect("rows");
    assert!(shown.as_u64().unwrap_or(0) > 0, "a viewer reads the orders");
    assert!(
        b.find("#blotter .vrow:not([hidden]) button[data-action=cancel]:not([hidden])")
            .await
            .expect("find")
            .is_none(),
        "viewers get no cancel buttons"
    );
    sign_out(&b).await;

    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_paint_and_a_ten_thousand_order_blotter() {
    let Some(b) = Browser::start(1280, 800).await else {
        return;
    };
    let s = server(false).await;
    let base = s.base.clone();

    // First meaningful paint of the sign-in page (fresh load, nothing cached),
    // against a blank page in the same browser.
    let blank = paint(&b, "data:text/html,<p>x</p>").await;
    let mut fcp = Vec::new();
    for _ in 0..5 {
        b.goto("about:blank").await.expect("blank");
        fcp.push(paint(&b, &format!("{base}/")).await);
    }
    fcp.sort_by(f64::total_cmp);
    let fcp_median = fcp[fcp.len() / 2];
    eprintln!(
        "first contentful paint: median {fcp_median:.0} ms of {fcp:?}; blank page {blank:.0} ms"
    );

    // 10,000 resting orders for one trader.
    let load = s.trader("e2e-load").await;
    let made = Instant::now();
    for batch in 0..100 {
        let orders: Vec<Value> = (0..100)
            .map(|i| {
                json!({"client_order_id": format!("L-{batch}-{i}"), "instrument_id": "ACME.SIM",
                       "side": "buy", "type": "limit", "quantity": "1", "price": "1.00",
                       "time_in_force": "gtc"})
            })
            .collect();
        s.post(
            "/api/v1/orders/batch",
            &load,
            json!({"orders": orders, "atomic": false}),
        )
        .await;
    }
    eprintln!("10,000 orders submitted in {:?}", made.elapsed());

    sign_in(&b, &base, "e2e-load", PASSWORD).await;
    let opened = Instant::now();
    page(&b, "orders", "#blotter").await;
    b.wait_until(
        "10,000 rows loaded",
        "return document.getElementById('orders-count').textContent === '10,000 orders'",
        Duration::from_secs(60),
    )
    .await
    .expect("all rows");
    let loaded = opened.elapsed();
    let rows = b
        .exec(
            "return document.querySelectorAll('#blotter .vrow:not([hidden])').length",
            vec![],
        )
        .await
        .expect("rows");
    let rows = rows.as_u64().unwrap_or(0);
    assert!(
        rows > 10 && rows < 100,
        "virtualized: {rows} rows in the DOM for 10,000 orders"
    );

    // Frames while idle (the browser's own cadence), then while scrolling the
    // whole list at 120 px per frame for 4 s.
    let idle = frames(&b, 0).await;
    let scroll = frames(&b, 120).await;
    // And flinging through all of it: 1,200 px (37 rows) per frame.
    let fling = frames(&b, 1200).await;
    let reached = b
        .exec(
            "return document.getElementById('blotter').scrollTop",
            vec![],
        )
        .await
        .expect("scrollTop");
    let text = b.text_of("#blotter").await.expect("blotter");
    assert!(
        text.contains("L-"),
        "rows are drawn after scrolling: {}",
        text.chars().take(200).collect::<String>()
    );
    let report = json!({
        "first_contentful_paint_ms": {"median": fcp_median, "runs": fcp, "blank_page": blank},
        "blotter": {
            "orders": 10000, "load_ms": loaded.as_millis() as u64, "dom_rows": rows,
            "scrolled_px": reached,
            "idle": idle, "scrolling": scroll, "flinging": fling,
        },
    });
    eprintln!("{report:#}");
    std::fs::create_dir_all(out_dir()).expect("out dir");
    std::fs::write(out_dir().join("perf.json"), format!("{report:#}")).expect("perf.json");
    b.close().await;
}

/// First contentful paint of `url`, in ms from navigation start.
async fn paint(b: &Browser, url: &str) -> f64 {
    b.goto(url).await.expect("goto");
    let v = b
        .wait_until(
            "a contentful paint",
            "const p = performance.getEntriesByName('first-contentful-paint')[0]; return p ? p.startTime : 0;",
            WAIT,
        )
        .await
        .expect("paint");
    v.as_f64().unwrap_or(f64::NAN)
}

/// Frame intervals over 4 s while scrolling the blotter by `step` px per frame
/// (from the top; the list stops at its end):
/// count, median, p95, max, and frames over 1.5× the median cadence (dropped).
async fn frames(b: &Browser, step: u32) -> Value {
    let v = b
        .exec_async(
            "const [step, done] = arguments; const sc = document.getElementById('blotter'); \
             sc.scrollTop = 0; const ts = []; let last = 0; const t0 = performance.now(); \
             function f(t) { if (last) ts.push(t - last); last = t; sc.scrollTop += step; \
               if (t - t0 < 4000) requestAnimationFrame(f); else done(ts); } \
             requestAnimationFrame(f);",
            vec![json!(step)],
        )
        .await
        .expect("frames");
    let mut ts: Vec<f64> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    ts.sort_by(f64::total_cmp);
    let n = ts.len().max(1);
    let median = ts.get(n / 2).copied().unwrap_or(f64::NAN);
    let p95 = ts.get(n * 95 / 100).copied().unwrap_or(f64::NAN);
    let max = ts.last().copied().unwrap_or(f64::NAN);
    let dropped = ts.iter().filter(|t| **t > 25.0).count();
    json!({"frames": ts.len(), "median_ms": median, "p95_ms": p95, "max_ms": max, "over_25ms": dropped})
}
