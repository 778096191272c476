//! The HTML report in a real browser: Debian's Chromium driven through chromedriver
//! (WebDriver) renders `driftbridge report --format html`, every chart is there with its
//! bars, and a screenshot is saved (`target/report-screenshot.png`). Skips on a machine
//! without chromedriver, never under `CI=true` (`.ci/run` installs it).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bridge_store::Backend;
use fantoccini::{ClientBuilder, Locator};

use crate::helpers::*;

/// chromedriver on a free port, killed when dropped.
pub struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn chromedriver() -> Option<Driver> {
    let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(path) = path else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no chromedriver; under CI=true there must be one (.ci/run installs chromium-driver)"
        );
        eprintln!("skipping the browser test: no chromedriver");
        return None;
    };
    let port = crate::processes::free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    Some(Driver(child, port))
}

/// A WebDriver session with headless Chromium through `driver`.
pub async fn session(driver: &Driver) -> fantoccini::Client {
    let caps: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({
            "goog:chromeOptions": {"args": ["--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1300,1500"]}
        }))
        .unwrap();
    let url = format!("http://{}", SocketAddr::from(([127, 0, 0, 1], driver.1)));
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(c) = ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no WebDriver session with headless Chromium");
}

#[tokio::test]
async fn the_html_report_renders_in_headless_chromium_with_every_chart() {
    let Some(driver) = chromedriver() else {
        return;
    };
    let Some(env) = env(Backend::Sqlite, 300).await else {
        return;
    };
    let o = org(&env.sim);
    crate::analytics::export(&env, o.0, None).await;
    let page = tempfile::Builder::new().suffix(".html").tempfile().unwrap();
    let report = driftbridge::report_cmd::ReportArgs {
        since: Some("0".into()),
        until: None,
        org: Some(o.0),
        by: "playbook".into(),
        format: "html".into(),
        out: Some(page.path().to_owned()),
        check_against_drift: false,
    };
    driftbridge::report_cmd::run(&env.config, report)
        .await
        .unwrap();
    let store = bridge_store::Store::connect(&env.db.url).await.unwrap();
    let facts = bridge_store::analytics::facts(&store, o.0, 0, i64::MAX)
        .await
        .unwrap();
    let playbooks = bridge_core::analytics::aggregate(&facts, bridge_core::analytics::By::Playbook);
    let days = bridge_core::analytics::aggregate(&facts, bridge_core::analytics::By::Day);

    let c = session(&driver).await;
    c.goto(&format!("file://{}", page.path().display()))
        .await
        .unwrap();
    let count = |css: &'static str| {
        let c = c.clone();
        async move { c.find_all(Locator::Css(css)).await.unwrap().len() }
    };
    assert_eq!(
        count("svg#reply-distribution rect").await,
        7,
        "a bar per bucket"
    );
    assert_eq!(count("svg#volume rect").await, days.len(), "a bar per day");
    assert_eq!(count("svg#volume polyline").await, 1, "the handoff line");
    assert_eq!(
        count("svg#funnel rect").await,
        4 * playbooks.len(),
        "four stages a playbook"
    );
    assert_eq!(count("table tr").await, 1 + playbooks.len());
    // The chart has a size on the page: the browser laid it out.
    let svg = c
        .find(Locator::Css("svg#reply-distribution"))
        .await
        .unwrap();
    let (_, _, w, h) = svg.rectangle().await.unwrap();
    assert!(w > 100.0 && h > 100.0, "{w}x{h}");
    let png = c.screenshot().await.unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/report-screenshot.png");
    std::fs::write(&out, &png).unwrap();
    c.close().await.unwrap();
}
