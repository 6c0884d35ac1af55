//! The dashboard in a real headless Chromium (Debian's `chromium` driven through its
//! `chromedriver`), against the sandbox running the seed's two rollouts: the list shows the
//! Canary, the timeline advances while the rollout runs (pushed by the live stream, no reload),
//! the success-rate chart shows the failing readings under their bound during the rollback, and
//! the action buttons exist and work only when actions are allowed.

use std::{path::PathBuf, time::Duration};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::Value;
use serin_sandbox::browser::{ChromeDriver, Dashboard};
use tokio::time::Instant;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Waits until `probe` returns `Some`, re-running it every 200 ms, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An attribute of the first element matching `css`, if there is one now.
/// Read in one script run: the live stream replaces the page's content whenever the Canary
/// changes, so an element found by one WebDriver call can be gone by the next.
async fn attr(browser: &Browser, css: &str, name: &str) -> Option<String> {
    const ATTR: &str = "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);";
    let value = browser.execute(ATTR, vec![css.into(), name.into()]).await.ok()?;
    value.as_str().map(str::to_owned)
}

/// The text of the first element matching `css`, if there is one now (one script run).
async fn text(browser: &Browser, css: &str) -> Option<String> {
    const TEXT: &str = "const e = document.querySelector(arguments[0]); return e && e.textContent;";
    let value = browser.execute(TEXT, vec![css.into()]).await.ok()?;
    value.as_str().map(str::to_owned)
}

async fn post_request(url: &str, csrf: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{url}/canaries/test/podinfo/requests"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&request=abort"))
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_a_real_browser_during_the_seed_rollouts() {
    serin_metrics::install_crypto_provider();
    if let Err(e) = serin_sandbox::browser::chromium() {
        // `cargo xtask ci` installs it and sets SERIN_REQUIRE_TOOLS: there, a missing browser fails.
        assert!(std::env::var_os("SERIN_REQUIRE_TOOLS").is_none(), "{e:#}");
        eprintln!("skipped: {e:#}");
        return;
    }
    let (cluster, client, mut observer) =
        serin_sandbox::demo::seeded_cluster(env!("CARGO_BIN_EXE_serin-sandbox").as_ref(), &root(), true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    let driver = ChromeDriver::start(&cluster.logs).unwrap_or_else(|e| panic!("{e:#}"));
    let read_only = Dashboard::start(client.clone(), false).await.expect("dashboard");
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(ChromeDriver::capabilities())
        .connect(&driver.url)
        .await
        .expect("a Chromium session");

    // The list shows the Canary.
    browser.goto(&format!("{}/", read_only.url)).await.expect("list page");
    let row = r#"tr.canary[data-name="test/podinfo"]"#;
    eventually("the Canary's row, Initialized", Duration::from_secs(30), || async {
        text(&browser, row).await.filter(|t| t.contains("Initialized"))
    })
    .await;

    // The timeline advances while the promotion runs, without reloading the page.
    browser
        .goto(&format!("{}/canaries/test/podinfo", read_only.url))
        .await
        .expect("canary page");
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("#live.on"))
        .await
        .expect("the live stream connects");
    serin_sandbox::demo::set_image(&client, "6.0.1")
        .await
        .expect("new image");
    let mut weights_seen: Vec<String> = Vec::new();
    let mut most_planned = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let steps = attr(&browser, "svg.timeline", "data-steps")
            .await
            .and_then(|s| s.parse::<usize>().ok());
        let planned = attr(&browser, "svg.timeline", "data-planned")
            .await
            .and_then(|s| s.parse::<usize>().ok());
        most_planned = most_planned.max(planned.unwrap_or(0));
        let weight = text(&browser, "#weight").await;
        if let Some(weight) = weight
            && weights_seen.last() != Some(&weight)
        {
            weights_seen.push(weight);
        }
        if steps.is_some_and(|s| s >= 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timeline never showed three steps: {weights_seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        weights_seen.len() >= 2,
        "the weight shown changed live: {weights_seen:?}"
    );
    assert!(
        most_planned >= 2,
        "the timeline showed the steps still ahead (at most {most_planned} seen)"
    );
    let phase = observer
        .wait_phase(&["Succeeded", "Failed"], Duration::from_secs(120))
        .await
        .expect("promotion ends");
    assert_eq!(phase, "Succeeded");

    // The rollback: the success rate is drawn under its bound.
    serin_sandbox::demo::set_image(&client, "6.0.2")
        .await
        .expect("failing image");
    // While its checks fail, the page says when it will be rolled back if they keep failing.
    let rollback = eventually("a rollback estimate", Duration::from_secs(60), || async {
        text(&browser, "#rollback").await
    })
    .await;
    assert!(rollback.ends_with("if checks keep failing"), "{rollback}");
    let phase = observer
        .wait_phase(&["Failed"], Duration::from_secs(180))
        .await
        .expect("rollback");
    assert_eq!(phase, "Failed");
    if std::env::var_os("SERIN_DEBUG_DASHBOARD").is_some() {
        eprintln!("{}", browser.source().await.unwrap_or_default());
        eprintln!("{:#}", observer.canary().await.unwrap_or_default());
    }
    // Read in one script run, so that the live stream cannot swap the chart between reads.
    const FAILING_READING: &str = r#"
        const chart = document.querySelector('svg.metric[data-metric="request-success-rate"]');
        const point = chart && chart.querySelector('circle.reading.fail');
        const bound = chart && chart.querySelector('line.bound.min');
        if (!point || !bound) return null;
        return [point.dataset.value, point.dataset.min, bound.getAttribute('y1'), point.getAttribute('cy')]
            .map(Number);
    "#;
    let (value, min, bound_y, point_y) =
        eventually("a failing success-rate reading", Duration::from_secs(10), || async {
            let read = browser.execute(FAILING_READING, vec![]).await.ok()?;
            let numbers: Vec<f64> = serde_json::from_value(read).ok()?;
            match numbers[..] {
                [value, min, bound_y, point_y] => Some((value, min, bound_y, point_y)),
                _ => None,
            }
        })
        .await;
    assert!(value < min, "failing reading {value} is under its bound {min}");
    assert!(point_y > bound_y, "the failing point is drawn below the bound line");

    // A Canary that does not exist is a 404 (the watch has listed them all by now).
    let missing = reqwest::get(format!("{}/canaries/test/no-such-canary", read_only.url))
        .await
        .expect("GET a missing Canary");
    assert_eq!(missing.status().as_u16(), 404);

    // Read-only: no buttons, and a forged request is refused.
    let forms = browser.find_all(Locator::Css("form")).await.expect("forms");
    assert!(forms.is_empty(), "no action forms without --allow-actions");
    let (status, body) = post_request(&read_only.url, "anything").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--allow-actions"), "{body}");

    // With actions allowed: the button writes the CLI's request, the controller handles it;
    // a request without the page's token is refused.
    let acting = Dashboard::start(client.clone(), true)
        .await
        .expect("dashboard with actions");
    let (status, body) = post_request(&acting.url, "forged").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    browser
        .goto(&format!("{}/canaries/test/podinfo", acting.url))
        .await
        .expect("canary page with actions");
    // Found and clicked again if the live stream replaced the button in between.
    eventually(
        "a Retry button to click on the Failed Canary",
        Duration::from_secs(30),
        || async {
            browser
                .find(Locator::Css("#action-retry"))
                .await
                .ok()?
                .click()
                .await
                .ok()
        },
    )
    .await;
    let handled = eventually(
        "the controller to handle the retry",
        Duration::from_secs(60),
        || async {
            let canary = observer.canary().await.ok()?;
            canary
                .pointer("/status/handledRequests/serin.dev~1retry")
                .and_then(Value::as_str)
                .map(str::to_owned)
        },
    )
    .await;
    assert!(handled.contains("by sandbox via dashboard"), "{handled}");

    browser.close().await.expect("close the browser");
}
