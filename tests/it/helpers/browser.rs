//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests of pages and rendered
//! email: a page at an exact viewport width (phones are narrower than a headless window can be), navigation,
//! script evaluation, real clicks that submit forms, and screenshots.

// The page tests use some of these steps and the web tests the rest.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use futures_util::SinkExt;
use futures_util::stream::{SplitSink, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, broadcast, oneshot};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// Set by scripts/test outside CI when it could not install Chromium: browser tests then skip, loudly.
const SKIP_VAR: &str = "BROWSER_TEST_SKIP";
/// How long any one browser step may take before the test fails.
const STEP: Duration = Duration::from_secs(30);

type Socket = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running headless Chromium. Dropping it kills the process.
pub struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    socket: Mutex<Socket>,
    pending: Pending,
    events: broadcast::Sender<Value>,
    next_id: AtomicU64,
}

/// One tab, attached with its own session.
pub struct Page<'a> {
    browser: &'a Browser,
    session: String,
}

impl Browser {
    /// Starts Chromium, or returns `None` (after saying so) when scripts/test could not install it outside CI.
    pub async fn launch() -> Option<Browser> {
        let binary =
            std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        if !binary.exists() {
            if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED: browser test ({SKIP_VAR}=1: scripts/test could not install chromium)");
                return None;
            }
            panic!("{} not found: run the tests through scripts/test, which installs chromium", binary.display());
        }
        let profile = tempfile::tempdir().expect("profile folder");
        let mut child = tokio::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let url = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.expect("read chromium's output") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("chromium exited before it listened");
        })
        .await
        .expect("chromium starts");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("connect to DevTools");
        let (sink, mut stream) = socket.split();
        let pending: Pending = Arc::default();
        let (events, _) = broadcast::channel(1024);
        let (route_pending, route_events) = (pending.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Ok(text) = message.into_text() else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                match value["id"].as_u64() {
                    Some(id) => {
                        if let Some(reply) = route_pending.lock().expect("pending").remove(&id) {
                            let _ = reply.send(value);
                        }
                    }
                    None => {
                        let _ = route_events.send(value);
                    }
                }
            }
        });
        Some(Browser {
            _child: child,
            _profile: profile,
            socket: Mutex::new(sink),
            pending,
            events,
            next_id: AtomicU64::new(1),
        })
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, reply);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket.lock().await.send(Message::text(message.to_string())).await.expect("send to DevTools");
        let answer = tokio::time::timeout(STEP, answer).await.unwrap_or_else(|_| panic!("{method} timed out"));
        let answer = answer.expect("DevTools answered");
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        answer["result"].clone()
    }

    /// A new tab whose viewport is exactly `width` x `height` CSS pixels (a phone when narrower than 600).
    pub async fn page(&self, width: u32, height: u32) -> Page<'_> {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
        let attached =
            self.call(None, "Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true })).await;
        let page = Page { browser: self, session: attached["sessionId"].as_str().expect("session").to_owned() };
        page.call("Page.enable", json!({})).await;
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await;
        page
    }
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Waits for this tab's next `load` event after `action` ran.
    async fn until_loaded<F: std::future::Future>(&self, action: F) -> F::Output {
        let mut events = self.browser.events.subscribe();
        let output = action.await;
        tokio::time::timeout(STEP, async {
            loop {
                let event = events.recv().await.expect("DevTools events");
                if event["method"] == "Page.loadEventFired" && event["sessionId"] == self.session.as_str() {
                    return;
                }
            }
        })
        .await
        .expect("the page loads");
        output
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn goto(&self, url: &str) {
        self.until_loaded(self.call("Page.navigate", json!({ "url": url }))).await;
    }

    /// Evaluates `expression` in the page and returns its value (promises are awaited).
    pub async fn eval(&self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await;
        assert!(result.get("exceptionDetails").is_none(), "script failed: {result}");
        result["result"]["value"].clone()
    }

    /// Clicks the element matching `selector` with a real mouse event at its centre and waits for the page it
    /// leads to (a link followed or a form submitted by the browser itself).
    pub async fn click_and_wait(&self, selector: &str) {
        let point = self
            .eval(&format!(
                "(function(){{var e=document.querySelector({sel});if(!e)return null;e.scrollIntoView({{block:'center'}});\
                 var b=e.getBoundingClientRect();return {{x:b.left+b.width/2,y:b.top+b.height/2}};}})()",
                sel = serde_json::to_string(selector).expect("selector")
            ))
            .await;
        assert!(!point.is_null(), "nothing matches {selector}");
        self.until_loaded(async {
            for kind in ["mousePressed", "mouseReleased"] {
                self.call(
                    "Input.dispatchMouseEvent",
                    json!({ "type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1 }),
                )
                .await;
            }
        })
        .await;
    }

    /// Opens `url` with the Network, Runtime and Log domains on, waits until it has loaded, and returns what it
    /// asked the network for and every error it reported.
    pub async fn goto_watching(&self, url: &str) -> PageLoad {
        for domain in ["Network.enable", "Runtime.enable", "Log.enable"] {
            self.call(domain, json!({})).await;
        }
        let mut events = self.browser.events.subscribe();
        self.goto(url).await;
        // Let late events (a blocked load is reported after the load event) arrive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut load = PageLoad::default();
        while let Ok(event) = events.try_recv() {
            if event["sessionId"] != self.session.as_str() {
                continue;
            }
            let params = &event["params"];
            match event["method"].as_str().unwrap_or_default() {
                "Network.requestWillBeSent" => {
                    load.requests.push(params["request"]["url"].as_str().unwrap_or_default().to_owned())
                }
                "Runtime.exceptionThrown" => load.errors.push(params["exceptionDetails"].to_string()),
                "Runtime.consoleAPICalled" if params["type"] == "error" => load.errors.push(params["args"].to_string()),
                "Log.entryAdded" if params["entry"]["level"] == "error" => {
                    load.errors.push(params["entry"].to_string())
                }
                _ => {}
            }
        }
        load
    }

    /// Makes the page see `prefers-color-scheme: dark`, as a phone in dark mode would.
    pub async fn emulate_dark_mode(&self) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
        )
        .await;
    }

    /// The page's current URL.
    pub async fn url(&self) -> String {
        self.eval("location.href").await.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a PNG of the whole page (beyond the viewport) to `png`.
    pub async fn screenshot(&self, png: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("data")).expect("png");
        std::fs::write(png, bytes).expect("write screenshot");
    }
}

/// What loading a page did: the URL of every request (the page itself included) and every error reported.
#[derive(Debug, Default)]
pub struct PageLoad {
    pub requests: Vec<String>,
    pub errors: Vec<String>,
}

/// Where tests keep screenshots and other files worth looking at (scripts/test sets it).
pub fn artifacts_dir() -> PathBuf {
    let dir = std::env::var_os("TEST_ARTIFACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts"));
    std::fs::create_dir_all(&dir).expect("create the artifacts folder");
    dir
}

/// Steps the web tests add: acting as a phone, clicks that do not navigate, typing and keys.
impl Page<'_> {
    /// Sends `agent` as the user agent from now on (a phone's, not headless Chromium's, which the rating
    /// page rightly takes for a link scanner).
    pub async fn set_user_agent(&self, agent: &str) {
        self.call("Emulation.setUserAgentOverride", json!({ "userAgent": agent })).await;
    }

    /// Clicks the centre of the element matching `selector` with a real mouse event, without waiting for a
    /// page to load (a label, a radio button).
    pub async fn click(&self, selector: &str) {
        let point = self
            .eval(&format!(
                "(function(){{var e=document.querySelector({sel});if(!e)return null;e.scrollIntoView({{block:'center'}});\
                 var b=e.getBoundingClientRect();return {{x:b.left+b.width/2,y:b.top+b.height/2}};}})()",
                sel = serde_json::to_string(selector).expect("selector")
            ))
            .await;
        assert!(!point.is_null(), "nothing matches {selector}");
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Focuses the element matching `selector` and types `text` into it, as a keyboard would.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let focused = self
            .eval(&format!(
                "(function(){{var e=document.querySelector({sel});if(!e)return false;e.focus();return true;}})()",
                sel = serde_json::to_string(selector).expect("selector")
            ))
            .await;
        assert_eq!(focused, Value::Bool(true), "nothing matches {selector}");
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// Presses and releases a key on the focused element, e.g. `("ArrowRight", 39)` or `("Tab", 9)`.
    pub async fn press(&self, key: &str, key_code: u32) {
        for kind in ["rawKeyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": key_code }),
            )
            .await;
        }
    }
}

/// Steps the email tests add.
impl Page<'_> {
    /// Blocks every load from the network from now on: the page shows as a mail client with images off does.
    pub async fn block_remote_loads(&self) {
        self.call("Network.enable", json!({})).await;
        self.call("Network.setBlockedURLs", json!({ "urls": ["http://*", "https://*"] })).await;
    }
}
