//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! chromedriver on 127.0.0.1 (installed by `tests/browser/install.sh` when missing). The browser
//! runs with a fresh profile and no background networking. If it cannot run, the test fails.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The key under which WebDriver answers an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Makes sure chromium and chromedriver are installed; panics (the test fails) if they cannot be.
pub fn ensure_installed() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/install.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", script.display()));
    assert!(
        status.success(),
        "chromium and chromium-driver are required for the browser tests and could not be installed \
         ({} failed); install them with `apt-get install chromium chromium-driver`",
        script.display()
    );
}

/// A chromedriver process and one browser session; dropped, both end.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    pub async fn start() -> Browser {
        ensure_installed();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a fresh browser profile");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        assert!(ready, "chromedriver did not become ready");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let binary = which("chromium").expect("chromium on PATH");
        let created = browser
            .call(
                reqwest::Method::POST,
                "/session",
                Some(json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": binary, "args": args},
                }}})),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("the browser did not start: {created}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("reach chromedriver");
        let status = response.status();
        let value: Value = response.json().await.expect("WebDriver JSON");
        assert!(status.is_success(), "WebDriver {method} {path}: {value}");
        value["value"].clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call(
            reqwest::Method::POST,
            &self.path("/url"),
            Some(json!({"url": url})),
        )
        .await;
    }

    pub async fn url(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.path("/url"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn source(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.path("/source"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The element matching a CSS selector (panics when there is none).
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                &self.path("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Types into the element matching `css` (clearing it first).
    pub async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &self.path(&format!("/element/{id}/clear")),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &self.path(&format!("/element/{id}/value")),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &self.path(&format!("/element/{id}/click")),
            Some(json!({})),
        )
        .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let v = self
            .call(
                reqwest::Method::GET,
                &self.path(&format!("/element/{id}/text")),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Switches into the frame element `id` (an id from [`Browser::find`]).
    pub async fn enter_frame(&self, id: &str) {
        self.call(
            reqwest::Method::POST,
            &self.path("/frame"),
            Some(json!({"id": {ELEMENT: id}})),
        )
        .await;
    }

    /// Back to the top-level page.
    pub async fn leave_frame(&self) {
        self.call(
            reqwest::Method::POST,
            &self.path("/frame/parent"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn title(&self) -> String {
        let v = self
            .call(reqwest::Method::GET, &self.path("/title"), None)
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The current value of a form field.
    pub async fn value(&self, css: &str) -> String {
        let id = self.find(css).await;
        let v = self
            .call(
                reqwest::Method::GET,
                &self.path(&format!("/element/{id}/property/value")),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Waits (without navigating) until the page's URL contains `part` and its source `needle`.
    pub async fn settle(&self, part: &str, needle: &str) -> String {
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..120 {
            let source = self.source().await;
            let url = self.url().await;
            if url.contains(part) && source.contains(needle) {
                return source;
            }
            if seen.last() != Some(&url) {
                seen.push(url);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "never reached {part} showing {needle:?}; went through {seen:?}; at {}:\n{}",
            self.url().await,
            self.source().await
        );
    }

    /// Reloads `url` until its source contains `needle`; panics after a generous while.
    pub async fn wait_for(&self, url: &str, needle: &str) -> String {
        for _ in 0..120 {
            self.goto(url).await;
            let source = self.source().await;
            if source.contains(needle) {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "{url} never showed {needle:?}; last page:\n{}",
            self.source().await
        );
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| Path::new(p).exists())
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the browser through its driver (a plain blocking request: drop cannot await),
        // then the driver itself: our own child, by pid.
        if !self.session.is_empty() {
            let address = self.base.trim_start_matches("http://").to_owned();
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                if stream.write_all(request.as_bytes()).is_ok() {
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
