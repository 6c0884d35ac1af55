//! The sequential judge's evidence (`status.judge.summary`) as one bar per test: how far each
//! harm test is towards rolling back, and each safety gate towards proving the canary safe, on
//! the log scale the judge decides on (1 is no evidence either way, the level is the end).

use std::fmt::Write;

use serin_core::evidence::{SummaryLine, read_summary};

use crate::pages::escape;

/// How far `line` is towards its level on a log scale, from 0 (evidence 1 or less) to 1.
pub fn progress(line: &SummaryLine) -> f64 {
    if line.evidence <= 1.0 || line.threshold <= 1.0 {
        return if line.threshold <= 1.0 && line.evidence >= line.threshold {
            1.0
        } else {
            0.0
        };
    }
    (line.evidence.ln() / line.threshold.ln()).clamp(0.0, 1.0)
}

/// The evidence section: the summary as written, and a bar per test that reads.
pub fn section(summary: &str) -> String {
    let mut html = format!(
        r#"<section class="evidence"><h2>Evidence (sequential judge)</h2><p>{}</p>"#,
        escape(summary)
    );
    let lines = read_summary(summary);
    if !lines.is_empty() {
        html.push_str(r#"<table class="evidence-bars"><tbody>"#);
        for line in &lines {
            let (kind, meaning) = if line.harm {
                ("harm", "rolls back")
            } else {
                ("gate", "proves it safe")
            };
            let share = progress(line);
            let _ = write!(
                html,
                r#"<tr class="{kind}" data-test="{name}" data-progress="{share:.3}"><td>{name}</td><td class="bar"><span style="width:{:.1}%"></span></td><td>{} of {} ({kind}: reaching it {meaning})</td></tr>"#,
                share * 100.0,
                number(line.evidence),
                number(line.threshold),
                name = escape(&line.name),
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
    html
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_is_a_bar_as_far_as_its_evidence_on_a_log_scale() {
        let html = section("5xx 0.3/300 · slow@p99 300.0/300 · tail 14.2/60");
        let progress_of = |test: &str| -> f64 {
            let marker = format!(r#"data-test="{test}" data-progress=""#);
            let rest = html.split(&marker).nth(1).expect("the test's row");
            rest.split('"').next().and_then(|p| p.parse().ok()).expect("a number")
        };
        assert_eq!(progress_of("5xx"), 0.0, "below 1 is no evidence of harm");
        assert_eq!(progress_of("slow@p99"), 1.0);
        let tail = progress_of("tail");
        assert!((tail - 14.2f64.ln() / 60f64.ln()).abs() < 0.001, "{tail}");
        assert!(html.contains(r#"<tr class="gate" data-test="tail""#), "{html}");
        assert!(html.contains(r#"<tr class="harm" data-test="5xx""#), "{html}");
        let text_only = section("paused unverified: <no traffic>");
        assert!(!text_only.contains("<table"), "{text_only}");
        assert!(text_only.contains("&lt;no traffic&gt;"));
    }
}
