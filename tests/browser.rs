//! A real headless Chromium, driven over the W3C WebDriver protocol by
//! Debian's ChromeDriver (both installed by `infra/scripts/chromium.sh`;
//! `CHROMIUM_BIN` / `CHROMEDRIVER_BIN` point elsewhere).
//!
//! The protocol is a handful of JSON requests; this speaks them with the
//! suite's own HTTP client rather than a second HTTP stack.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    http: reqwest::Client,
    base: String,
    session: String,
    driver: tokio::process::Child,
    _profile: TempDir,
}

/// A directory removed when dropped (Chromium's profile).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    /// ChromeDriver on a free loopback port and one headless Chromium at
    /// 1280×800 (`width` × `height` when given).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_sized(1280, 800).await
    }

    pub async fn start_sized(width: u32, height: u32) -> anyhow::Result<Self> {
        let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver =
            std::env::var("CHROMEDRIVER_BIN").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        anyhow::ensure!(
            std::path::Path::new(&chromedriver).exists(),
            "{chromedriver} is missing: run infra/scripts/chromium.sh (make tools does)"
        );
        let port = free_port()?;
        let driver = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("chromedriver did not answer on {base}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("smartchat-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&profile)?;
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await?
            .json()
            .await?;
        let session = created["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("no session: {created}"))?
            .to_owned();
        Ok(Self {
            http,
            base,
            session,
            driver,
            _profile: TempDir(profile),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method.clone(), url);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let res = req.send().await?;
        let status = res.status();
        let v: Value = res.json().await?;
        if !status.is_success() {
            bail!("webdriver {path}: {status} {}", v["value"]);
        }
        Ok(v["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await
            .map(|_| ())
    }

    /// The first element matching `css` once there is one (within `wait`).
    pub async fn find(&self, css: &str, wait: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Ok(v) = &found
                && let Some(id) = v[ELEMENT].as_str()
            {
                return Ok(id.to_owned());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("no element {css} within {wait:?}: {found:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, element: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            json!({}),
        )
        .await
        .map(|_| ())
    }

    /// Clicks the element matching `css` now (lists redraw: an element
    /// found earlier may have been replaced).
    pub async fn click_on(&self, css: &str, wait: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let element = self.find(css, wait).await?;
            match self.click(&element).await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub async fn type_into(&self, element: &str, text: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await
        .map(|_| ())
    }

    pub async fn text(&self, element: &str) -> anyhow::Result<String> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                json!({}),
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn run(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Waits until `script` returns something truthy; that value.
    pub async fn until(&self, script: &str, wait: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let v = self.run(script, json!([])).await?;
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("not true within {wait:?}: {script}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves what the page looks like as a PNG at `path`.
    pub async fn screenshot(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", json!({}))
            .await?;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or(""))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// `result` as it is; on a failure, first a screenshot of the page in
    /// `target/browser-failures/{name}.png` (named in the error).
    pub async fn saving_failure<T>(
        &self,
        name: &str,
        result: anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let Err(e) = result else { return result };
        let path = crate::workspace()
            .join("target/browser-failures")
            .join(format!("{name}.png"));
        match self.screenshot(&path).await {
            Ok(()) => Err(e.context(format!("screenshot: {}", path.display()))),
            Err(shot) => Err(e.context(format!("no screenshot either: {shot}"))),
        }
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}
