//! The native generator as a process, against local targets: hey's and wrk's report shapes
//! (compared with the real tools), https, HTTP/2, keep-alive, proxies and rates.

mod support;

use std::sync::atomic::Ordering;

use support::{have_tool, run_load, start_target};

/// A report's skeleton: numbers become `N`, histogram bars go, runs of blanks become one.
fn skeleton(report: &str) -> Vec<String> {
    let number = regex::Regex::new(r"-?[0-9]+(\.[0-9]+)?").expect("regex");
    report
        .lines()
        .map(|line| {
            let line = line.replace('■', "");
            let line = number.replace_all(&line, "N");
            line.split_whitespace().collect::<Vec<_>>().join(" ")
        })
        .filter(|l| !l.starts_with("N [N] |"))
        .collect()
}

fn real(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool).args(args).output().expect(tool);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_hey_report_has_the_real_heys_lines() {
    if !have_tool("hey") {
        return;
    }
    let target = start_target(false, b"hello");
    let url = format!("http://127.0.0.1:{}/", target.port);
    let ours = run_load(&["-n", "40", "-c", "2", &url]);
    let theirs = real("hey", &["-n", "40", "-c", "2", &url]);
    assert_eq!(skeleton(&ours), skeleton(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
    assert!(ours.contains("  [200]\t40 responses\n"), "{ours}");
}

#[test]
fn the_wrk_report_has_the_real_wrks_lines() {
    if !have_tool("wrk") {
        return;
    }
    let target = start_target(false, b"hello");
    let url = format!("http://127.0.0.1:{}/", target.port);
    let unit = regex::Regex::new(r"N[a-zA-Z]*").expect("regex");
    for extra in [&[][..], &["--latency"][..]] {
        let args: Vec<&str> = ["-t1", "-c2", "-d1s"]
            .iter()
            .chain(extra)
            .copied()
            .chain([url.as_str()])
            .collect();
        let ours = run_load(&[&["wrk"][..], &args].concat());
        let theirs = real("wrk", &args);
        // Units differ with speed (`us` or `ms`, `k` or none): compare the words only.
        let words = |r: &str| -> Vec<String> {
            skeleton(r)
                .iter()
                .map(|l| unit.replace_all(l, "N").into_owned())
                .collect()
        };
        assert_eq!(words(&ours), words(&theirs), "ours:\n{ours}\ntheirs:\n{theirs}");
    }
}

#[test]
fn https_targets_are_loaded_and_unverified_certificates_counted_as_hey_accepts_them() {
    let target = start_target(true, b"secure");
    let url = format!("https://localhost:{}/", target.port);
    let out = run_load(&["-n", "12", "-c", "3", &url]);
    assert!(out.contains("  [200]\t12 responses\n"), "{out}");
    assert!(
        out.contains("Note: 3 TLS connection(s) did not verify against the system roots"),
        "{out}"
    );
    assert_eq!(target.seen.requests.load(Ordering::Relaxed), 12);
    let lines = target.seen.lines.lock().expect("lines").clone();
    assert!(lines.iter().all(|l| l.starts_with("HTTP/1.1 GET / ")), "{lines:?}");
}

#[test]
fn h2_is_negotiated_over_tls_and_plain_http_stays_http1_as_in_hey() {
    let target = start_target(true, b"two");
    let out = run_load(&[
        "-n",
        "4",
        "-c",
        "1",
        "-h2",
        &format!("https://localhost:{}/", target.port),
    ]);
    assert!(out.contains("[200]\t4 responses"), "{out}");
    let lines = target.seen.lines.lock().expect("lines").clone();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l.starts_with("HTTP/2.0 GET")), "{lines:?}");

    let plain = start_target(false, b"one");
    run_load(&[
        "-n",
        "2",
        "-c",
        "1",
        "-h2",
        &format!("http://127.0.0.1:{}/", plain.port),
    ]);
    let lines = plain.seen.lines.lock().expect("lines").clone();
    assert!(lines.iter().all(|l| l.starts_with("HTTP/1.1")), "{lines:?}");
}

#[test]
fn keep_alive_reuses_one_connection_per_worker_and_disable_keepalive_does_not() {
    let target = start_target(false, b"k");
    let url = format!("http://127.0.0.1:{}/", target.port);
    run_load(&["-n", "6", "-c", "1", &url]);
    assert_eq!(target.seen.connections.load(Ordering::Relaxed), 1);
    run_load(&["-n", "6", "-c", "1", "-disable-keepalive", &url]);
    assert_eq!(target.seen.connections.load(Ordering::Relaxed), 7);
    assert_eq!(target.seen.requests.load(Ordering::Relaxed), 12);
}

#[test]
fn an_http_proxy_is_asked_for_the_absolute_url() {
    let proxy = start_target(false, b"via proxy");
    let out = run_load(&[
        "-n",
        "3",
        "-c",
        "1",
        "-x",
        &format!("127.0.0.1:{}", proxy.port),
        "http://upstream.test:8080/path?q=1",
    ]);
    assert!(out.contains("[200]\t3 responses"), "{out}");
    let lines = proxy.seen.lines.lock().expect("lines").clone();
    assert_eq!(
        lines,
        vec!["HTTP/1.1 GET http://upstream.test:8080/path?q=1 upstream.test:8080".to_owned(); 3]
    );
}

#[test]
fn wrk_counts_connection_errors_by_kind() {
    // Nothing listens on this port.
    let port = support::free_port();
    let out = run_load(&["wrk", "-t1", "-c1", "-d1s", &format!("http://127.0.0.1:{port}/")]);
    assert!(out.contains("  0 requests in "), "{out}");
    let connect: u64 = regex::Regex::new(r"Socket errors: connect (\d+), read 0, write 0, timeout 0")
        .expect("regex")
        .captures(&out)
        .and_then(|c| c[1].parse().ok())
        .unwrap_or_else(|| panic!("no socket errors line: {out}"));
    assert!(connect > 0, "{out}");
}
