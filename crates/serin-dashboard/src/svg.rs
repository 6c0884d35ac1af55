//! The charts, as inline SVG strings: a weight sparkline for the list, the rollout timeline
//! (weight over time with steps, decisions and events marked) and one chart per metric (its
//! readings against its bounds). Every point carries `data-` attributes with its numbers, so
//! tests and tools can read a chart without measuring pixels.

use std::fmt::Write;

use serin_core::Time;

use crate::{
    history::{EventLine, Reading, WeightPoint},
    pages::{clock, escape},
};

/// Width and height of the timeline and metric charts, in SVG units.
const W: f64 = 720.0;
const H: f64 = 180.0;
/// Margins for the axis labels.
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 14.0;

/// A linear map from a time span to the horizontal axis.
struct TimeAxis {
    start: i64,
    end: i64,
    left: f64,
    right: f64,
}

impl TimeAxis {
    fn new(start: Time, end: Time, left: f64, right: f64) -> Self {
        let (start, end) = (start.as_millis(), end.as_millis().max(start.as_millis() + 1000));
        TimeAxis {
            start,
            end,
            left,
            right,
        }
    }

    fn x(&self, t: Time) -> f64 {
        let share = (t.as_millis() - self.start) as f64 / (self.end - self.start) as f64;
        self.left + share.clamp(0.0, 1.0) * (self.right - self.left)
    }
}

/// A linear map from values to the vertical axis (up is larger).
struct ValueAxis {
    low: f64,
    high: f64,
    top: f64,
    bottom: f64,
}

impl ValueAxis {
    fn y(&self, v: f64) -> f64 {
        let share = if self.high > self.low {
            (v - self.low) / (self.high - self.low)
        } else {
            0.5
        };
        self.bottom - share.clamp(0.0, 1.0) * (self.bottom - self.top)
    }
}

/// The weights as a step line: each weight holds until the next.
fn step_path(weights: &[WeightPoint], time: &TimeAxis, value: &ValueAxis, now: Time) -> String {
    let mut d = String::new();
    for (i, p) in weights.iter().enumerate() {
        let (x, y) = (time.x(p.at), value.y(p.weight as f64));
        if i == 0 {
            let _ = write!(d, "M{x:.1},{y:.1}");
        } else {
            let _ = write!(d, " H{x:.1} V{y:.1}");
        }
    }
    if !weights.is_empty() {
        let _ = write!(d, " H{:.1}", time.x(now));
    }
    d
}

/// A small weight-over-time line for the list of Canaries.
pub fn sparkline(weights: &[WeightPoint], max_weight: i64, now: Time) -> String {
    let (w, h) = (120.0, 24.0);
    let start = weights.first().map_or(now, |p| p.at);
    let time = TimeAxis::new(start, now, 1.0, w - 1.0);
    let value = ValueAxis {
        low: 0.0,
        high: max_weight.max(1) as f64,
        top: 2.0,
        bottom: h - 2.0,
    };
    format!(
        r#"<svg class="sparkline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="canary weight over time" data-points="{}"><path d="{}"/></svg>"#,
        weights.len(),
        step_path(weights, &time, &value, now)
    )
}

/// What the timeline draws besides the weights.
pub struct TimelineMarks<'a> {
    /// Decisions (time, summary).
    pub decisions: &'a [(Time, String)],
    /// Events of the rollout.
    pub events: Vec<&'a EventLine>,
    /// The rest of the rollout if every check passes, drawn dashed after now.
    pub ahead: Option<&'a Ahead>,
}

/// The plan ahead of a rollout in flight: its remaining steps and its promotion.
#[derive(Debug, Clone, PartialEq)]
pub struct Ahead {
    /// Each remaining step (time, weight).
    pub steps: Vec<(Time, i64)>,
    /// The estimated promotion.
    pub promotion: Time,
    /// While checks are failing: when the rollout would be rolled back if every check failed
    /// from now on.
    pub rollback: Option<Time>,
}

impl Ahead {
    /// The last moment the plan ahead shows.
    pub fn end(&self) -> Time {
        self.rollback.map_or(self.promotion, |r| r.max(self.promotion))
    }
}

/// The right edge of a rollout's charts: `now`, or the end of the plan ahead when there is
/// one, so the timeline and the metric charts share their time axis.
pub fn axis_end(ahead: Option<&Ahead>, now: Time) -> Time {
    ahead.map_or(now, |a| a.end().max(now))
}

/// The rollout timeline: the canary's weight over time, a dot at every step, a tick for every
/// decision at the top and for every event at the bottom (hover for the text); with a plan
/// ahead, a "now" line, the remaining steps dashed and the estimated promotion flagged.
pub fn timeline(weights: &[WeightPoint], max_weight: i64, start: Time, now: Time, marks: &TimelineMarks) -> String {
    let time = TimeAxis::new(start, axis_end(marks.ahead, now), LEFT, W - 8.0);
    let top_weight = max_weight
        .max(weights.iter().map(|p| p.weight).max().unwrap_or(0))
        .max(1);
    let value = ValueAxis {
        low: 0.0,
        high: top_weight as f64,
        top: TOP,
        bottom: H - BOTTOM,
    };
    let mut svg = format!(
        r#"<svg class="timeline" viewBox="0 0 {W} {H}" role="img" aria-label="canary weight over the rollout" data-steps="{}" data-planned="{}">"#,
        weights.len(),
        marks.ahead.map_or(0, |a| a.steps.len())
    );
    axes(&mut svg, &value, &format!("{top_weight}%"), "0%", &time);
    let _ = write!(
        svg,
        r#"<path class="weight" d="{}"/>"#,
        step_path(weights, &time, &value, now)
    );
    if let Some(ahead) = marks.ahead {
        plan_ahead(
            &mut svg,
            ahead,
            weights.last().map_or(0, |p| p.weight),
            now,
            &time,
            &value,
        );
    }
    for p in weights {
        let _ = write!(
            svg,
            r#"<circle class="step" cx="{:.1}" cy="{:.1}" r="3" data-weight="{}"><title>{} weight {}%</title></circle>"#,
            time.x(p.at),
            value.y(p.weight as f64),
            p.weight,
            clock(p.at),
            p.weight
        );
    }
    for (at, summary) in marks.decisions {
        let x = time.x(*at);
        let _ = write!(
            svg,
            r#"<rect class="decision" x="{:.1}" y="2" width="3" height="8"><title>{} {}</title></rect>"#,
            x - 1.5,
            clock(*at),
            escape(summary)
        );
    }
    for e in &marks.events {
        let x = time.x(e.at);
        let _ = write!(
            svg,
            r#"<line class="event {}" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"><title>{} {}</title></line>"#,
            e.kind.to_lowercase(),
            H - BOTTOM,
            H - BOTTOM - 8.0,
            clock(e.at),
            escape(&e.message)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The plan ahead: a line at now, the remaining steps as a dashed step line from the current
/// weight, hollow dots at the steps, and a flag at the estimated promotion.
fn plan_ahead(svg: &mut String, ahead: &Ahead, weight: i64, now: Time, time: &TimeAxis, value: &ValueAxis) {
    let x_now = time.x(now);
    let _ = write!(
        svg,
        r#"<line class="now" x1="{x_now:.1}" x2="{x_now:.1}" y1="{}" y2="{}"/><text class="label now-label" x="{:.1}" y="{}" text-anchor="end">now</text>"#,
        value.top,
        value.bottom,
        x_now - 3.0,
        value.top + 8.0,
    );
    let mut d = format!("M{x_now:.1},{:.1}", value.y(weight as f64));
    for (at, w) in &ahead.steps {
        let _ = write!(d, " H{:.1} V{:.1}", time.x(*at), value.y(*w as f64));
    }
    let x_end = time.x(ahead.promotion);
    let _ = write!(d, " H{x_end:.1}");
    let _ = write!(svg, r#"<path class="planned" d="{d}"/>"#);
    for (at, w) in &ahead.steps {
        let _ = write!(
            svg,
            r#"<circle class="planned-step" cx="{:.1}" cy="{:.1}" r="3" data-weight="{w}"><title>planned {} weight {w}%</title></circle>"#,
            time.x(*at),
            value.y(*w as f64),
            clock(*at),
        );
    }
    let title = format!("estimated promotion {}", clock(ahead.promotion));
    flag(svg, "promotion", &title, x_end, value, "promotion", value.bottom - 4.0);
    if let Some(rollback) = ahead.rollback {
        let title = format!("rollback at {} if every check fails from now", clock(rollback));
        let label = "rollback if failing";
        flag(svg, "rollback", &title, time.x(rollback), value, label, value.top + 8.0);
    }
}

/// A labelled vertical line across the chart at `x` (hover for `title`).
fn flag(svg: &mut String, class: &str, title: &str, x: f64, value: &ValueAxis, label: &str, label_y: f64) {
    let _ = write!(
        svg,
        r#"<g class="{class}"><title>{}</title><line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}"/><text class="label" x="{:.1}" y="{label_y}" text-anchor="end">{}</text></g>"#,
        escape(title),
        value.top,
        value.bottom,
        x - 3.0,
        escape(label),
    );
}

/// Time ticks at a round step (1 s … 1 day) that gives at most six labels across the span.
fn ticks(time: &TimeAxis) -> Vec<i64> {
    const STEPS_S: [i64; 17] = [
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        3 * 3600,
        6 * 3600,
        12 * 3600,
    ];
    let span = time.end - time.start;
    let step = STEPS_S
        .iter()
        .map(|s| s * 1000)
        .find(|s| span / s <= 5)
        .unwrap_or(24 * 3600 * 1000);
    let first = time.start.div_euclid(step) * step + if time.start % step == 0 { 0 } else { step };
    (0..).map(|i| first + i * step).take_while(|t| *t <= time.end).collect()
}

/// The frame: value labels at the top and bottom, a labelled tick at round times.
fn axes(svg: &mut String, value: &ValueAxis, high: &str, low: &str, time: &TimeAxis) {
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}"/><line class="axis" x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}"/><text class="label" x="{lx}" y="{ty}" text-anchor="end">{high}</text><text class="label" x="{lx}" y="{bottom}" text-anchor="end">{low}</text>"#,
        top = value.top,
        bottom = value.bottom,
        right = W - 8.0,
        lx = LEFT - 4.0,
        ty = value.top + 4.0,
        high = escape(high),
        low = escape(low),
    );
    for t in ticks(time) {
        let x = time.x(Time::from_millis(t));
        let _ = write!(
            svg,
            r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{b:.1}" y2="{:.1}"/><text class="label tick-label" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            value.bottom + 3.0,
            H - 4.0,
            clock(Time::from_millis(t)),
            b = value.bottom,
        );
    }
}

fn with_unit(v: f64, unit: &str) -> String {
    let text = if v.fract() == 0.0 || v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{text}{unit}")
}

/// One metric's readings over the rollout against its bounds: dashed lines at the bounds, a
/// dot per reading (`pass` or `fail`).
/// `end` is the right edge: now, or the estimated promotion when the timeline shows the plan
/// ahead, so the two charts share their time axis.
pub fn metric_chart(name: &str, readings: &[Reading], start: Time, end: Time) -> String {
    let unit = readings.last().map_or("", |r| r.unit.as_str());
    let mut values: Vec<f64> = readings.iter().map(|r| r.value).collect();
    let last = readings.last();
    values.extend(last.and_then(|r| r.min));
    values.extend(last.and_then(|r| r.max));
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = if low.is_finite() && high.is_finite() {
        let pad = ((high - low) * 0.1).max(high.abs() * 0.01).max(0.5);
        // Rates and durations are not negative: the axis does not pretend they could be.
        let floor = if low >= 0.0 { 0.0 } else { f64::NEG_INFINITY };
        ((low - pad).max(floor), high + pad)
    } else {
        (0.0, 1.0)
    };
    let value = ValueAxis {
        low,
        high,
        top: TOP,
        bottom: H - BOTTOM,
    };
    let time = TimeAxis::new(start, end, LEFT, W - 8.0);
    let mut svg = format!(
        r#"<svg class="metric" data-metric="{}" viewBox="0 0 {W} {H}" role="img" aria-label="{} over the rollout">"#,
        escape(name),
        escape(name)
    );
    axes(&mut svg, &value, &with_unit(high, unit), &with_unit(low, unit), &time);
    for (class, bound) in [
        ("bound min", last.and_then(|r| r.min)),
        ("bound max", last.and_then(|r| r.max)),
    ] {
        if let Some(b) = bound {
            let y = value.y(b);
            let _ = write!(
                svg,
                r#"<line class="{class}" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="label bound-label" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - 8.0,
                W - 10.0,
                y - 3.0,
                escape(&with_unit(b, unit))
            );
        }
    }
    let points: Vec<String> = readings
        .iter()
        .map(|r| format!("{:.1},{:.1}", time.x(r.at), value.y(r.value)))
        .collect();
    let _ = write!(svg, r#"<polyline class="series" points="{}"/>"#, points.join(" "));
    for r in readings {
        let _ = write!(
            svg,
            r#"<circle class="reading {}" cx="{:.1}" cy="{:.1}" r="4" data-value="{}" data-min="{}" data-max="{}"><title>{} {}</title></circle>"#,
            if r.passed { "pass" } else { "fail" },
            time.x(r.at),
            value.y(r.value),
            r.value,
            r.min.map(|v| v.to_string()).unwrap_or_default(),
            r.max.map(|v| v.to_string()).unwrap_or_default(),
            clock(r.at),
            escape(&with_unit(r.value, unit))
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(secs: i64, value: f64, passed: bool) -> Reading {
        Reading {
            at: Time::from_millis(secs * 1000),
            value,
            min: Some(99.0),
            max: None,
            unit: "%".into(),
            passed,
        }
    }

    fn y_of(svg: &str, class: &str) -> Vec<f64> {
        svg.split(&format!(r#"class="{class}""#))
            .skip(1)
            .filter_map(|rest| {
                let tag = rest.split('>').next()?;
                let (_, y) = tag.split_once(r#"cy=""#).or_else(|| tag.split_once(r#"y1=""#))?;
                y.split('"').next()?.parse().ok()
            })
            .collect()
    }

    #[test]
    fn a_failing_reading_is_drawn_below_its_lower_bound_and_a_passing_one_above() {
        let readings = [reading(10, 100.0, true), reading(20, 61.4, false)];
        let svg = metric_chart(
            "request-success-rate",
            &readings,
            Time::from_millis(0),
            Time::from_millis(30_000),
        );
        let bound = y_of(&svg, "bound min");
        let (pass, fail) = (y_of(&svg, "reading pass"), y_of(&svg, "reading fail"));
        assert_eq!((bound.len(), pass.len(), fail.len()), (1, 1, 1), "{svg}");
        // SVG's y grows downwards: below the bound is a larger y.
        assert!(fail[0] > bound[0] && pass[0] < bound[0], "{svg}");
        assert!(svg.contains(r#"data-value="61.4""#));
    }

    #[test]
    fn time_ticks_fall_on_round_times_and_stay_few() {
        let axis = |start: i64, end: i64| TimeAxis::new(Time::from_millis(start), Time::from_millis(end), LEFT, W);
        assert_eq!(ticks(&axis(0, 75_000)), [0, 15_000, 30_000, 45_000, 60_000, 75_000]);
        assert_eq!(ticks(&axis(7_000, 47_000)), [10_000, 20_000, 30_000, 40_000]);
        let long = ticks(&axis(1_000, 3 * 3600 * 1000));
        assert!(long.len() <= 6 && long.len() >= 2, "{long:?}");
        assert!(long.iter().all(|t| t % (1800 * 1000) == 0), "{long:?}");
    }

    #[test]
    fn the_timeline_steps_up_with_the_weights_and_marks_events() {
        let weights: Vec<WeightPoint> = [(0, 0), (10, 10), (20, 20)]
            .iter()
            .map(|&(s, weight)| WeightPoint {
                at: Time::from_millis(s * 1000),
                weight,
            })
            .collect();
        let event = EventLine {
            at: Time::from_millis(15_000),
            kind: "Warning".into(),
            message: "Halt <advancement>".into(),
            count: 1,
            name: "e".into(),
        };
        let marks = TimelineMarks {
            decisions: &[],
            events: vec![&event],
            ahead: None,
        };
        let svg = timeline(&weights, 50, Time::from_millis(0), Time::from_millis(30_000), &marks);
        let ys = y_of(&svg, "step");
        assert_eq!(ys.len(), 3);
        assert!(ys[0] > ys[1] && ys[1] > ys[2], "higher weight is higher up: {ys:?}");
        assert!(svg.contains("Halt &lt;advancement&gt;"), "event text is escaped: {svg}");
        assert!(svg.contains(r#"class="event warning""#));
    }
}
