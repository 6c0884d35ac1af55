//! A run's summary printed the way hey 0.1.4 and wrk 4 print theirs, line for line, so log
//! parsers written for Flagger's loadtester (`Requests/sec:`, the status code distribution, the
//! latency distribution) keep working.
//!
//! What the native generator does not measure separately is printed as zero: DNS time is inside
//! `DNS+dialup`, and writing the request is inside `resp wait`. wrk's `Req/Sec` row is computed
//! from each thread's whole-run rate, not from wrk's 100 ms samples.

use std::fmt::Write as _;

use crate::generator::{Phase, Summary};

/// Which tool's report a run prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Style {
    /// hey's.
    #[default]
    Hey,
    /// wrk's.
    Wrk(WrkView),
}

/// The report of `summary` in `style`.
pub fn render(summary: &Summary, style: &Style) -> String {
    match style {
        Style::Hey => hey(summary),
        Style::Wrk(view) => wrk(summary, view),
    }
}

/// hey's default report (`requester/print.go`), including its blank lines.
pub fn hey(s: &Summary) -> String {
    let mut out = String::new();
    let lats: Vec<f64> = s.samples_micros.iter().map(|m| f64::from(*m) / 1e6).collect();
    let (fastest, slowest) = (
        lats.first().copied().unwrap_or(0.0),
        lats.last().copied().unwrap_or(0.0),
    );
    // hey divides by the number of responses: with none, Go prints NaN.
    let average = lats.iter().fold(0.0, |a, v| a + v) / lats.len() as f64;
    let total = s.elapsed.as_secs_f64();
    let rps = s.total() as f64 / total;
    let _ = write!(
        out,
        "\nSummary:\n  Total:\t{}\n  Slowest:\t{} secs\n  Fastest:\t{} secs\n  Average:\t{} secs\n  Requests/sec:\t{}\n  ",
        secs(total),
        number(slowest),
        number(fastest),
        number(average),
        number(rps)
    );
    if s.bytes > 0 {
        let per_request = s.bytes / lats.len().max(1) as u64;
        let _ = write!(
            out,
            "\n  Total data:\t{} bytes\n  Size/request:\t{per_request} bytes",
            s.bytes
        );
    }
    out.push_str("\n\nResponse time histogram:\n");
    if !lats.is_empty() {
        out.push_str(&histogram(&lats, fastest, slowest));
    }
    out.push_str("\n\nLatency distribution:");
    if !lats.is_empty() {
        for (percent, latency) in distribution(&lats) {
            let _ = write!(out, "\n  {percent}% in {} secs", number(latency));
        }
    }
    out.push_str("\n\nDetails (average, fastest, slowest):");
    let none = Phase::default();
    for (name, phase) in [
        ("DNS+dialup", &s.dial),
        ("DNS-lookup", &none),
        ("req write", &none),
        ("resp wait", &s.wait),
        ("resp read", &s.read),
    ] {
        let average = if lats.is_empty() { f64::NAN } else { phase.average() };
        let _ = write!(
            out,
            "\n  {name}:\t{} secs, {} secs, {} secs",
            number(average),
            number(phase.min),
            number(phase.max)
        );
    }
    out.push_str("\n\nStatus code distribution:");
    for (code, n) in &s.by_status {
        let _ = write!(out, "\n  [{code}]\t{n} responses");
    }
    out.push_str("\n\n");
    if !s.errors.is_empty() {
        out.push_str("Error distribution:");
        for (error, n) in &s.errors {
            let _ = write!(out, "\n  [{n}]\t{error}");
        }
    }
    out.push_str("\n\n");
    if s.unverified_tls > 0 {
        let _ = writeln!(
            out,
            "Note: {} TLS connection(s) did not verify against the system roots and were used anyway, as hey does.",
            s.unverified_tls
        );
    }
    out
}

fn number(x: f64) -> String {
    if x.is_nan() { "NaN".into() } else { format!("{x:.4}") }
}

fn secs(x: f64) -> String {
    format!("{} secs", number(x))
}

/// hey's ten-bucket histogram from fastest to slowest, bars of at most 40 `■`.
fn histogram(lats: &[f64], fastest: f64, slowest: f64) -> String {
    const BUCKETS: usize = 10;
    let step = (slowest - fastest) / BUCKETS as f64;
    let mut marks: Vec<f64> = (0..BUCKETS).map(|i| fastest + step * i as f64).collect();
    marks.push(slowest);
    let mut counts = vec![0usize; marks.len()];
    let mut bucket = 0;
    for &lat in lats {
        while lat > marks[bucket] && bucket < marks.len() - 1 {
            bucket += 1;
        }
        counts[bucket] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    let mut out = String::new();
    for (mark, count) in marks.iter().zip(&counts) {
        let bar = (count * 40 + max / 2).checked_div(max).unwrap_or(0);
        let _ = writeln!(out, "  {mark:4.3} [{count}]\t|{}", "■".repeat(bar));
    }
    out
}

/// hey's latency distribution: for each percentile, the first sorted latency at or past it;
/// a percentile never reached prints as `0% in 0.0000`, as hey prints it.
fn distribution(lats: &[f64]) -> Vec<(u32, f64)> {
    const PERCENTILES: [u32; 7] = [10, 25, 50, 75, 90, 95, 99];
    let mut found = [0.0; PERCENTILES.len()];
    let mut next = 0;
    for (i, &lat) in lats.iter().enumerate() {
        if next == PERCENTILES.len() {
            break;
        }
        if (i * 100 / lats.len()) as u32 >= PERCENTILES[next] {
            found[next] = lat;
            next += 1;
        }
    }
    PERCENTILES
        .iter()
        .zip(found)
        .map(|(p, lat)| if lat > 0.0 { (*p, lat) } else { (0, 0.0) })
        .collect()
}

/// What wrk prints besides the summary: its command line's threads and `--latency`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrkView {
    /// The target URL, as given.
    pub url: String,
    /// `-t`.
    pub threads: usize,
    /// `-c`.
    pub connections: usize,
    /// `-d`, in seconds.
    pub duration_secs: u64,
    /// `--latency`.
    pub latency: bool,
}

/// wrk's report (`src/wrk.c`, `src/units.c`).
pub fn wrk(s: &Summary, view: &WrkView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Running {} test @ {}",
        units(view.duration_secs as f64, TIME_S, 0),
        view.url
    );
    let _ = writeln!(out, "  {} threads and {} connections", view.threads, view.connections);
    let _ = writeln!(
        out,
        "  Thread Stats{:>6}{:>11}{:>8}{:>12}",
        "Avg", "Stdev", "Max", "+/- Stdev"
    );
    let lats: Vec<f64> = s.samples_micros.iter().map(|m| f64::from(*m)).collect();
    stats_row(&mut out, "Latency", &lats, time_us);
    let threads = view.threads.max(1);
    let per_thread: Vec<f64> = (0..threads)
        .map(|t| {
            let requests: u64 = s.per_worker.iter().skip(t).step_by(threads).sum();
            requests as f64 / s.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
        })
        .collect();
    stats_row(&mut out, "Req/Sec", &per_thread, |n| units(n, METRIC, 2));
    if view.latency {
        out.push_str("  Latency Distribution\n");
        for p in [50.0, 75.0, 90.0, 99.0] {
            let n = percentile(&lats, p);
            let _ = writeln!(out, "{p:7.0}%{}", padded(&time_us(n), 10));
        }
    }
    let runtime_us = s.elapsed.as_secs_f64() * 1e6;
    let _ = writeln!(
        out,
        "  {} requests in {}, {}B read",
        s.responses,
        time_us(runtime_us),
        units(s.bytes as f64, BINARY, 2)
    );
    let e = s.socket_errors;
    if e.connect + e.read + e.write + e.timeout > 0 {
        let _ = writeln!(
            out,
            "  Socket errors: connect {}, read {}, write {}, timeout {}",
            e.connect, e.read, e.write, e.timeout
        );
    }
    let bad_status: u64 =
        s.by_status.range(400..).map(|(_, n)| n).sum::<u64>() + s.by_status.range(..200).map(|(_, n)| n).sum::<u64>();
    if bad_status > 0 {
        let _ = writeln!(out, "  Non-2xx or 3xx responses: {bad_status}");
    }
    let seconds = s.elapsed.as_secs_f64();
    let _ = writeln!(out, "Requests/sec: {:9.2}", s.responses as f64 / seconds);
    let _ = writeln!(out, "Transfer/sec: {:>10}B", units(s.bytes as f64 / seconds, BINARY, 2));
    if s.unverified_tls > 0 {
        let _ = writeln!(
            out,
            "Note: {} TLS connection(s) did not verify against the system roots and were used anyway, as wrk does.",
            s.unverified_tls
        );
    }
    out
}

fn stats_row(out: &mut String, name: &str, values: &[f64], format: impl Fn(f64) -> String) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().fold(0.0, |a, v| a + v) / n;
    let stdev = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    let max = values.iter().copied().fold(0.0, f64::max);
    let within = values.iter().filter(|v| (*v - mean).abs() <= stdev).count() as f64 / n * 100.0;
    let _ = writeln!(
        out,
        "    {name:<10}{}{}{}{within:8.2}%",
        padded(&format(mean), 8),
        padded(&format(stdev), 10),
        padded(&format(max), 9)
    );
}

/// wrk's `print_units`: right-aligned, with two trailing columns kept for a unit.
fn padded(text: &str, width: usize) -> String {
    let alpha = |i: usize| text.chars().rev().nth(i).is_some_and(|c| c.is_ascii_alphabetic());
    let pad = 2 - usize::from(alpha(0)) - usize::from(alpha(1));
    format!("{text:>w$}{}", " ".repeat(pad), w = width - pad)
}

struct Units {
    scale: f64,
    base: &'static str,
    units: &'static [&'static str],
}

const TIME_US: Units = Units {
    scale: 1000.0,
    base: "us",
    units: &["ms", "s"],
};
const TIME_S: Units = Units {
    scale: 60.0,
    base: "s",
    units: &["m", "h"],
};
const BINARY: Units = Units {
    scale: 1024.0,
    base: "",
    units: &["K", "M", "G", "T", "P"],
};
const METRIC: Units = Units {
    scale: 1000.0,
    base: "",
    units: &["k", "M", "G", "T", "P"],
};

/// wrk's `format_units`: divides while at least 85% of the next unit, never into the last one.
fn units(n: f64, u: Units, precision: usize) -> String {
    let mut amount = n;
    let mut unit = u.base;
    let mut i = 0;
    while i + 1 < u.units.len() && amount >= u.scale * 0.85 {
        amount /= u.scale;
        unit = u.units[i];
        i += 1;
    }
    format!("{amount:.precision$}{unit}")
}

fn time_us(n: f64) -> String {
    if n >= 1_000_000.0 {
        units(n / 1_000_000.0, TIME_S, 2)
    } else {
        units(n, TIME_US, 2)
    }
}

/// The smallest value with at least `p` percent of the values at or below it.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_units_match_wrk() {
        assert_eq!(units(818.44 * 1024.0, BINARY, 2), "818.44K");
        assert_eq!(units(389.5, METRIC, 2), "389.50");
        assert_eq!(units(890.0, METRIC, 2), "0.89k");
        assert_eq!(time_us(5700.0), "5.70ms");
        assert_eq!(time_us(1_000_000.0), "1.00s");
        assert_eq!(time_us(90_000_000.0), "1.50m");
        assert_eq!(units(60.0, TIME_S, 0), "1m");
        assert_eq!(units(30.0, TIME_S, 0), "30s");
        assert_eq!(padded("5.70ms", 8), "  5.70ms");
        assert_eq!(padded("0.89k", 9), "   0.89k ");
        assert_eq!(padded("389.50", 8), "389.50  ");
    }

    #[test]
    fn hey_distribution_picks_the_first_latency_at_each_percentile() {
        let lats: Vec<f64> = (1..=20).map(|i| f64::from(i) / 1000.0).collect();
        let d = distribution(&lats);
        assert_eq!(d[0], (10, 0.003));
        assert_eq!(d[2], (50, 0.011));
        assert_eq!(d[6], (0, 0.0), "a 20-sample run never reaches 99%, as in hey");
    }
}
