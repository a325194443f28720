//! A small W3C WebDriver client over reqwest, enough for the dashboard's
//! browser tests: start Debian's `chromedriver`, open a headless Chromium
//! session, navigate, find, click, type, run scripts and take screenshots.
//!
//! [`Browser::start`] returns `None` when no chromedriver is installed and
//! `ORDERMON_REQUIRE_SERVICES` is not set (with it set, a missing browser
//! fails the test loudly, like any other missing service).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver uses for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian installs the driver and the browser.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver failure: the command and what the driver said.
#[derive(Debug)]
pub struct WebDriverError(pub String);

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WebDriverError {}

type Result<T> = std::result::Result<T, WebDriverError>;

/// A running chromedriver with one headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: tokio::process::Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session with a
    /// `width`×`height` window.
    ///
    /// # Panics
    /// When the driver is missing and `ORDERMON_REQUIRE_SERVICES` is set, or
    /// cannot start a session.
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                !crate::services_required(),
                "chromium and chromedriver are required (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipping: chromium/chromedriver not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("a free port: {e}"));
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver starts: {e}"));
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap_or_else(|e| panic!("new session: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("session json: {e}"));
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_owned();
        let b = Self {
            driver,
            http,
            session,
            base,
        };
        if let Err(e) = b.resize(width, height).await {
            panic!("window size: {e}");
        }
        Some(b)
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| WebDriverError(format!("{path}: {e}")))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .map_err(|e| WebDriverError(format!("{path}: {e}")))?;
        if !status.is_success() {
            return Err(WebDriverError(format!(
                "{path}: {} {}",
                v["value"]["error"], v["value"]["message"]
            )));
        }
        Ok(v["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    /// Resizes the window (the viewport follows).
    ///
    /// # Errors
    /// The driver refusing.
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(drop)
    }

    /// Navigates to `url` and waits for the load.
    ///
    /// # Errors
    /// The driver refusing.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({"url": url})).await.map(drop)
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    ///
    /// # Errors
    /// A script error.
    pub async fn exec(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Runs an async script: it calls `arguments[arguments.length - 1](value)` when done.
    ///
    /// # Errors
    /// A script error or timeout.
    pub async fn exec_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// The first element matching a CSS selector, if any.
    ///
    /// # Errors
    /// The driver failing (not finding is `Ok(None)`).
    pub async fn find(&self, css: &str) -> Result<Option<Element>> {
        match self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
        {
            Ok(v) => Ok(v[ELEMENT].as_str().map(|s| Element(s.to_owned()))),
            Err(e) if e.0.contains("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for an element matching `css`.
    ///
    /// # Errors
    /// Not found in time.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await? {
                return Ok(e);
            }
            if Instant::now() > deadline {
                let text = self.text_of("body").await.unwrap_or_default();
                return Err(WebDriverError(format!(
                    "no {css} after {timeout:?}; the page says: {}",
                    text.chars().take(600).collect::<String>()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `script` returns a truthy value; returns that value.
    ///
    /// # Errors
    /// Still falsy after `timeout`.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.exec(script, vec![]).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let text = self.text_of("body").await.unwrap_or_default();
                return Err(WebDriverError(format!(
                    "{what}: not true after {timeout:?}; the page says: {}",
                    text.chars().take(600).collect::<String>()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Clicks an element.
    ///
    /// # Errors
    /// Not clickable.
    pub async fn click(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await
            .map(drop)
    }

    /// Clicks the first element matching `css`, waiting up to 5 s for it.
    ///
    /// # Errors
    /// Not found or not clickable.
    pub async fn click_css(&self, css: &str) -> Result<()> {
        let e = self.wait_for(css, Duration::from_secs(5)).await?;
        self.click(&e).await
    }

    /// Types into an element (after clearing it).
    ///
    /// # Errors
    /// Not interactable.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let e = self.wait_for(css, Duration::from_secs(5)).await?;
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await?;
        self.post(&format!("/element/{}/value", e.0), json!({"text": text}))
            .await
            .map(drop)
    }

    /// The visible text of the first element matching `css`.
    ///
    /// # Errors
    /// Not found.
    pub async fn text_of(&self, css: &str) -> Result<String> {
        let v = self
            .exec(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![json!(css)],
            )
            .await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| WebDriverError(format!("no {css}")))
    }

    /// Presses keys in the focused element (WebDriver key codes allowed, e.g. `\u{E004}` for Tab).
    ///
    /// # Errors
    /// The driver refusing.
    pub async fn keys(&self, keys: &str) -> Result<()> {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                let k = c.to_string();
                [
                    json!({"type": "keyDown", "value": k}),
                    json!({"type": "keyUp", "value": k}),
                ]
            })
            .collect();
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "kb", "actions": actions}]}),
        )
        .await
        .map(drop)
    }

    /// Saves a PNG of the viewport to `path`.
    ///
    /// # Errors
    /// The driver refusing or the file not written.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| WebDriverError(format!("screenshot: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| WebDriverError(e.to_string()))?;
        }
        std::fs::write(path, png).map_err(|e| WebDriverError(e.to_string()))
    }

    /// Ends the session and stops the driver.
    pub async fn close(mut self) {
        drop(self.cmd(reqwest::Method::DELETE, "", None).await);
        drop(self.driver.kill().await);
    }
}
