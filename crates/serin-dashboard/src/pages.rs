//! The pages, rendered on the server as HTML: the list of Canaries and one Canary. Each page's
//! `<main>` is also what the live stream sends, so a browser with JavaScript swaps it in place
//! and one without still reads the whole page.

use std::fmt::Write;

use serin_api::{Canary, CanaryStatus, parse_time, rfc3339};
use serin_core::{Phase, Time, go_duration};

use crate::{
    history::History,
    svg::{self, Ahead, TimelineMarks},
};

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS` (UTC).
pub fn clock(t: Time) -> String {
    let text = rfc3339(t);
    text.get(11..19).unwrap_or(&text).to_owned()
}

const STYLE: &str = include_str!("style.css");

/// The whole page around a `<main>`: the live stream replaces `<main>` on every change.
pub fn page(title: &str, stream: &str, main: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{title} · Serin</title><style>{STYLE}</style></head><body><header><a href="/" class="brand">Serin</a> <span class="live" id="live">static page: reload for news</span></header><main id="main">{main}</main><script>
(function () {{
  if (!window.EventSource) return;
  var live = document.getElementById('live');
  var source = new EventSource({stream});
  source.onopen = function () {{ live.textContent = 'live'; live.className = 'live on'; }};
  source.onerror = function () {{ live.textContent = 'reconnecting…'; live.className = 'live'; }};
  source.onmessage = function (e) {{ document.getElementById('main').innerHTML = e.data; }};
}})();
</script></body></html>"#,
        title = escape(title),
        stream = js_string(stream),
    )
}

/// A JavaScript string literal that is safe inside `<script>`: no quote, backslash, `<`, `>`
/// or `&` of the text survives as itself, so text from a URL cannot end the script.
pub fn js_string(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            c if matches!(c, '"' | '\\' | '<' | '>' | '&' | '\'') || c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(crate) fn status(c: &Canary) -> CanaryStatus {
    c.status.clone().unwrap_or_default()
}

/// The Canary's `maxWeight` (the top of its weight charts).
pub fn max_weight(c: &Canary) -> i64 {
    let analysis = c.spec.analysis.as_ref();
    analysis
        .and_then(|a| a.max_weight)
        .or_else(|| analysis.and_then(|a| a.step_weights.as_ref()?.iter().copied().max()))
        .unwrap_or(100)
}

pub(crate) fn eta(s: &CanaryStatus, now: Time) -> String {
    match s.estimated_promotion_at.as_deref().and_then(parse_time) {
        Some(at) if at > now => format!(
            "{} (in {})",
            clock(at),
            go_duration(std::time::Duration::from_secs(at.since(now).as_secs()))
        ),
        Some(at) => clock(at),
        None => "—".into(),
    }
}

pub(crate) fn phase_pill(phase: &str) -> String {
    let class = match Phase::parse(phase) {
        _ if phase.is_empty() => "idle",
        Some(Phase::Succeeded | Phase::Initialized) => "ok",
        Some(Phase::Failed) => "bad",
        _ => "busy",
    };
    format!(
        r#"<span class="phase {class}">{}</span>"#,
        escape(if phase.is_empty() { "New" } else { phase })
    )
}

/// The rest of the Canary's rollout if every check passes, when the controller has estimated
/// its promotion: the engine's own projection (`serin_core::schedule::projection`) of the
/// Canary's plan from its status, moved onto the controller's estimate so that the flag on the
/// timeline and the ETA above it agree (the controller rewrites its estimate only when it
/// moves by an interval). While checks are failing, also when it would be rolled back if they
/// all kept failing (`rollback_if_failing`, moved the same way).
pub fn ahead(c: &Canary, now: Time) -> Option<Ahead> {
    use serin_core::schedule::{projection, rollback_if_failing};
    let s = status(c);
    let eta = s.estimated_promotion_at.as_deref().and_then(parse_time)?;
    let plan = serin_api::validate(c).ok()?.plan;
    let rollout = s.to_rollout();
    let projection = projection(&plan, &rollout, now)?;
    let shift = eta.as_millis() - projection.promotion?.as_millis();
    let moved = |t: Time| Time::from_millis((t.as_millis() + shift).max(now.as_millis()));
    let failing = rollout.failed_checks > 0;
    Some(Ahead {
        steps: projection
            .steps
            .iter()
            .map(|(t, w)| (moved(*t), i64::from(*w)))
            .collect(),
        promotion: eta.max(now),
        rollback: failing
            .then(|| rollback_if_failing(&plan, &rollout, now))
            .flatten()
            .map(moved),
    })
}

/// The actions a person may take, as forms posting the CLI's requests.
pub struct Actions<'a> {
    /// The CSRF token every form carries.
    pub csrf: &'a str,
}

fn action_forms(c: &Canary, actions: &Actions) -> String {
    let s = status(c);
    let phase = s.phase.as_deref().unwrap_or_default();
    let ns = escape(c.metadata.namespace.as_deref().unwrap_or_default());
    let name = escape(c.metadata.name.as_deref().unwrap_or_default());
    let suspended = c.spec.suspend.unwrap_or(false);
    let mut buttons: Vec<(&str, &str)> = vec![
        ("promote", "Promote one step"),
        ("promote-full", "Promote now"),
        ("abort", "Abort"),
        ("retry", "Retry"),
        ("approve-confirm-rollout", "Approve rollout"),
        ("approve-confirm-traffic-increase", "Approve traffic increase"),
        ("approve-confirm-promotion", "Approve promotion"),
    ];
    buttons
        .retain(|(word, _)| serin_api::requests::Request::parse(word).is_some_and(|r| r.refused_in(phase).is_none()));
    buttons.push(if suspended {
        ("resume", "Resume")
    } else {
        ("pause", "Pause")
    });
    let mut html = String::from(r#"<section class="actions"><h2>Actions</h2>"#);
    for (word, label) in buttons {
        let _ = write!(
            html,
            r#"<form method="post" action="/canaries/{ns}/{name}/requests"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="request" value="{word}"><button type="submit" id="action-{word}">{label}</button></form>"#,
            escape(actions.csrf)
        );
    }
    html.push_str("</section>");
    html
}

/// One Canary.
pub fn canary_main(h: &History, now: Time, actions: Option<&Actions>) -> String {
    let Some(c) = &h.canary else {
        return r#"<h1>Not found</h1><p class="empty">No such Canary (yet).</p>"#.into();
    };
    let s = status(c);
    let ns = c.metadata.namespace.clone().unwrap_or_default();
    let name = c.metadata.name.clone().unwrap_or_default();
    let threshold = c.spec.analysis.as_ref().and_then(|a| a.threshold).unwrap_or(0);
    let ahead = ahead(c, now);
    let mut html = format!(
        r#"<h1>{}/{} {}</h1><dl class="facts"><dt>Weight</dt><dd id="weight">{}%</dd><dt>Primary</dt><dd>{}</dd><dt>Canary</dt><dd>{}</dd><dt>Failed checks</dt><dd>{}/{}</dd><dt>ETA</dt><dd>{}</dd>{}</dl><p class="summary">{}</p>"#,
        escape(&ns),
        escape(&name),
        phase_pill(s.phase.as_deref().unwrap_or_default()),
        s.canary_weight.unwrap_or(0),
        escape(s.primary_revision.as_deref().unwrap_or("—")),
        escape(s.canary_revision.as_deref().unwrap_or("—")),
        s.failed_checks.unwrap_or(0),
        threshold,
        escape(&eta(&s, now)),
        [
            c.spec
                .suspend
                .unwrap_or(false)
                .then(|| "<dt>Suspended</dt><dd>yes</dd>".to_owned()),
            ahead.as_ref().and_then(|a| a.rollback).map(|at| {
                format!(
                    r#"<dt>Rollback</dt><dd id="rollback">{} if checks keep failing</dd>"#,
                    clock(at)
                )
            }),
            s.shard
                .as_deref()
                .map(|shard| format!("<dt>Shard</dt><dd>{}</dd>", escape(shard))),
        ]
        .into_iter()
        .flatten()
        .collect::<String>(),
        escape(s.last_decision.as_ref().map_or("", |d| d.summary.as_str())),
    );
    if let Some(actions) = actions {
        html.push_str(&action_forms(c, actions));
    }
    let start = h.started.or_else(|| h.weights.first().map(|p| p.at)).unwrap_or(now);
    // An ended rollout's charts end where it ended: the page then stays as it is while other
    // Canaries change, instead of its axis stretching with the clock.
    let phase = Phase::parse(s.phase.as_deref().unwrap_or_default());
    let ended = matches!(phase, Some(Phase::Succeeded | Phase::Failed | Phase::Initialized));
    let until = if ended {
        h.last_activity().unwrap_or(now).min(now)
    } else {
        now
    };
    let end = svg::axis_end(ahead.as_ref(), until);
    let marks = TimelineMarks {
        decisions: &h.decisions,
        events: h.rollout_events().collect(),
        ahead: ahead.as_ref(),
    };
    let caption = match ahead.as_ref() {
        Some(a) if a.rollback.is_some() => {
            r#"<p class="caption">Dashed: the rest of the plan if every check passes and every gate opens; red: the rollback if every check fails.</p>"#
        }
        Some(_) => r#"<p class="caption">Dashed: the rest of the plan if every check passes and every gate opens.</p>"#,
        None => "",
    };
    let _ = write!(
        html,
        r#"<section><h2>Timeline</h2>{}{caption}</section>"#,
        svg::timeline(&h.weights, max_weight(c), start, until, &marks)
    );
    if !h.metrics.is_empty() {
        html.push_str(r#"<section class="metrics"><h2>Metrics</h2>"#);
        for (metric, readings) in &h.metrics {
            let _ = write!(
                html,
                r#"<figure><figcaption>{}</figcaption>{}</figure>"#,
                escape(metric),
                svg::metric_chart(metric, readings, start, end)
            );
        }
        html.push_str("</section>");
    }
    if let Some(summary) = s.judge.as_ref().and_then(|j| j.get("summary")).and_then(|v| v.as_str()) {
        html.push_str(&crate::evidence::section(summary));
    }
    if !h.hooks.is_empty() {
        html.push_str(r#"<section><h2>Hooks and gates</h2><ul class="hooks">"#);
        for line in h.hooks.values() {
            // The line ends with the verdict (`serin_core::Verdict`): no data is not a failure.
            let class = match line.rsplit(' ').next() {
                Some("Pass") => "pass",
                Some("NoData") => "nodata",
                Some("Error") => "error",
                _ => "fail",
            };
            let _ = write!(html, r#"<li class="{class}">{}</li>"#, escape(line));
        }
        html.push_str("</ul></section>");
    }
    if !s.conditions.is_empty() {
        html.push_str(r#"<section><h2>Conditions</h2><table><tbody>"#);
        for cond in &s.conditions {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&cond.type_),
                escape(&cond.status),
                escape(cond.reason.as_deref().unwrap_or_default()),
                escape(cond.message.as_deref().unwrap_or_default())
            );
        }
        html.push_str("</tbody></table></section>");
    }
    html.push_str(r#"<section><h2>Events</h2><table class="events"><tbody>"#);
    for e in h.events.iter().rev() {
        let _ = write!(
            html,
            r#"<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            e.kind.to_lowercase(),
            clock(e.at),
            escape(&e.kind),
            if e.count > 1 {
                format!("×{}", e.count)
            } else {
                String::new()
            },
            escape(&e.message)
        );
    }
    html.push_str("</tbody></table></section>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_cluster_cannot_inject_markup() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        let mut h = History::default();
        let mut c = Canary::new("<b>podinfo</b>", Default::default());
        c.metadata.namespace = Some("test".into());
        h.observe(c, Time::from_millis(0));
        let all = [(("test".to_owned(), "<b>podinfo</b>".to_owned()), h)]
            .into_iter()
            .collect();
        let main = crate::list::list_main(&all, &Default::default(), Time::from_millis(1000));
        assert!(!main.contains("<b>podinfo"), "{main}");
        assert!(main.contains("&lt;b&gt;podinfo"), "{main}");
    }

    const SEED_CANARY: &str = r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: { name: podinfo, namespace: test }
spec:
  provider: knative
  targetRef: { apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo }
  analysis:
    interval: 15s
    threshold: 15
    maxWeight: 50
    stepWeight: 10
    metrics: [{ name: request-success-rate, thresholdRange: { min: 99 }, interval: 1m }]
"#;

    fn seed_canary_at_30_percent(eta: &str) -> Canary {
        let Some(serin_api::CanaryDocument::Parsed(mut c)) =
            serin_api::canaries_in(SEED_CANARY).expect("yaml").into_iter().next()
        else {
            panic!("the seed Canary parses");
        };
        c.status = Some(CanaryStatus {
            phase: Some("Progressing".into()),
            canary_weight: Some(30),
            primary_revision: Some("podinfo-00001".into()),
            canary_revision: Some("podinfo-00002".into()),
            rollout_started_at: Some("2026-12-02T10:00:00Z".into()),
            analysis_started_at: Some("2026-12-02T10:00:00Z".into()),
            next_step_at: Some("2026-12-02T10:00:45Z".into()),
            estimated_promotion_at: Some(eta.into()),
            ..Default::default()
        });
        *c
    }

    fn at(text: &str) -> Time {
        parse_time(text).expect("time")
    }

    #[test]
    fn the_plan_ahead_is_the_remaining_steps_up_to_the_controllers_estimate() {
        let now = at("2026-12-02T10:00:40Z");
        let c = seed_canary_at_30_percent("2026-12-02T10:01:15Z");
        let plan = ahead(&c, now).expect("a rollout in flight has a plan ahead");
        let steps: Vec<(String, i64)> = plan.steps.iter().map(|(t, w)| (clock(*t), *w)).collect();
        assert_eq!(steps, [("10:00:45".into(), 40), ("10:01:00".into(), 50)]);
        assert_eq!(clock(plan.promotion), "10:01:15");
        // The controller's estimate, rewritten only when it moves by an interval, is the anchor.
        let later = ahead_of(&seed_canary_at_30_percent("2026-12-02T10:01:30Z"), now);
        assert_eq!(later, [("10:01:00".into(), 40), ("10:01:15".into(), 50)]);

        let mut h = History::default();
        h.observe(c.clone(), now);
        let main = canary_main(&h, now, None);
        assert!(main.contains(r#"data-planned="2""#), "{main}");
        assert!(main.contains("estimated promotion 10:01:15"), "{main}");
        assert!(main.contains("if every check passes and every gate opens"), "{main}");

        assert_eq!(plan.rollback, None, "no check is failing");
        let mut failing = c.clone();
        failing.status.as_mut().expect("status").failed_checks = Some(13);
        let failing_plan = ahead(&failing, now).expect("plan ahead");
        assert_eq!(failing_plan.rollback.map(clock).as_deref(), Some("10:01:00"));
        h.observe(failing, now);
        let main = canary_main(&h, now, None);
        assert!(main.contains("10:01:00 if checks keep failing"), "{main}");
        assert!(main.contains(r#"<g class="rollback">"#), "{main}");

        let mut done = c;
        done.status.as_mut().expect("status").phase = Some("Succeeded".into());
        assert_eq!(ahead(&done, now), None, "nothing is ahead of a finished rollout");
    }

    #[test]
    fn a_phase_pill_is_coloured_by_the_phase_and_names_a_new_canary() {
        let class = |phase: &str| {
            let pill = phase_pill(phase);
            pill.split('"').nth(1).map(str::to_owned).unwrap_or(pill)
        };
        assert_eq!(class("Succeeded"), "phase ok");
        assert_eq!(class("Initialized"), "phase ok");
        assert_eq!(class("Failed"), "phase bad");
        assert_eq!(class("Progressing"), "phase busy");
        assert_eq!(class("SomethingNew"), "phase busy", "an unknown phase is shown as busy");
        assert_eq!(phase_pill(""), r#"<span class="phase idle">New</span>"#);
    }

    #[test]
    fn a_finished_rollouts_page_stays_as_it_ended_while_the_clock_runs() {
        let now = at("2026-12-02T10:00:40Z");
        let mut h = History::default();
        h.observe(seed_canary_at_30_percent("2026-12-02T10:01:15Z"), now);
        let mut done = seed_canary_at_30_percent("2026-12-02T10:01:15Z");
        let status = done.status.as_mut().expect("status");
        status.phase = Some("Succeeded".into());
        status.canary_weight = Some(0);
        let ended = at("2026-12-02T10:01:20Z");
        h.observe(done, ended);
        let soon = canary_main(&h, at("2026-12-02T10:01:21Z"), None);
        let much_later = canary_main(&h, at("2026-12-02T11:30:00Z"), None);
        assert_eq!(soon, much_later, "the axis ends where the rollout did");
        assert!(soon.contains("10:01:20"), "the axis ends at the last change: {soon}");
    }

    fn ahead_of(c: &Canary, now: Time) -> Vec<(String, i64)> {
        let ahead = ahead(c, now).expect("plan ahead");
        ahead.steps.iter().map(|(t, w)| (clock(*t), *w)).collect()
    }

    #[test]
    fn a_url_cannot_end_the_pages_script() {
        let page = page("x", "/sse/canaries/a/</script><script>alert(1)</script>", "");
        assert_eq!(page.matches("</script>").count(), 1, "{page}");
        assert!(
            page.contains(r#"new EventSource("/sse/canaries/a/\u003c/script\u003e"#),
            "{page}"
        );
        assert_eq!(js_string(r#"a"b\c"#), r#""a\u0022b\u005cc""#);
    }

    #[test]
    fn a_gate_without_data_yet_is_not_shown_as_failed() {
        let mut h = History::default();
        let mut c = Canary::new("podinfo", Default::default());
        c.metadata.namespace = Some("test".into());
        h.observe(c, Time::from_millis(0));
        for line in [
            "gate 5xx-slo: evidence 1.00 (>= 40) NoData",
            "webhook load-test (rollout): passed (2xx) Pass",
            "webhook gate (confirm-promotion): 403 (2xx) Fail",
            "webhook smoke (pre-rollout): timed out (2xx) Error",
        ] {
            let check = line.split_once(": ").map(|(c, _)| c.to_owned()).unwrap_or_default();
            h.hooks.insert(check, line.to_owned());
        }
        let main = canary_main(&h, Time::from_millis(1000), None);
        for (class, text) in [
            ("nodata", "gate 5xx-slo"),
            ("pass", "webhook load-test"),
            ("fail", "webhook gate"),
            ("error", "webhook smoke"),
        ] {
            assert!(
                main.contains(&format!(r#"<li class="{class}">{text}"#)),
                "{class}: {main}"
            );
        }
    }

    #[test]
    fn action_buttons_offer_only_what_the_phase_allows() {
        let mut h = History::default();
        let mut c = Canary::new("podinfo", Default::default());
        c.metadata.namespace = Some("test".into());
        c.status = Some(CanaryStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        h.observe(c, Time::from_millis(0));
        let actions = Actions { csrf: "t0ken" };
        let main = canary_main(&h, Time::from_millis(1000), Some(&actions));
        assert!(main.contains(r#"id="action-retry""#), "{main}");
        assert!(!main.contains(r#"id="action-abort""#), "{main}");
        assert!(main.contains(r#"name="csrf" value="t0ken""#));
        let read_only = canary_main(&h, Time::from_millis(1000), None);
        assert!(!read_only.contains("<form"), "{read_only}");
    }
}
