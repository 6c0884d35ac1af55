//! The list of Canaries: rollouts in flight first, then failed ones, then the rest; a count
//! per phase that filters the list when clicked; a namespace filter; pages of [`PAGE_SIZE`]
//! rows. The query (`?namespace=&phase=&page=`) is the whole state, so every view is a link,
//! works without JavaScript, and its live stream renders the same view.
//!
//! It renders only the rows of the page asked for: a fleet of thousands of Canaries costs a
//! sort of their keys per render, not thousands of rows.

use std::{collections::BTreeMap, fmt::Write};

use serde::Deserialize;
use serin_core::{Phase, Time};

use crate::{
    history::History,
    pages::{escape, eta, max_weight, phase_pill, status},
    store::Key,
    svg,
};

/// Rows per page.
pub const PAGE_SIZE: usize = 50;

/// Which Canaries the list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ListQuery {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Only this phase (`New` for a Canary without one yet).
    pub phase: Option<String>,
    /// The page, from 1.
    pub page: Option<usize>,
}

impl ListQuery {
    /// The query string of this view (with its `?`, or empty), for links and the live stream.
    pub fn query_string(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(ns) = self.namespace.as_deref().filter(|n| !n.is_empty()) {
            q.append_pair("namespace", ns);
        }
        if let Some(phase) = self.phase.as_deref().filter(|p| !p.is_empty()) {
            q.append_pair("phase", phase);
        }
        if let Some(page) = self.page.filter(|p| *p > 1) {
            q.append_pair("page", &page.to_string());
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }

    fn with(&self, change: impl FnOnce(&mut ListQuery)) -> String {
        let mut other = self.clone();
        change(&mut other);
        format!("/{}", other.query_string())
    }
}

/// The phase as the list names it.
fn phase_name(h: &History) -> &str {
    h.canary
        .as_ref()
        .and_then(|c| c.status.as_ref()?.phase.as_deref())
        .filter(|p| !p.is_empty())
        .unwrap_or("New")
}

/// In flight first, then failed, then the rest.
fn group(phase: &str) -> u8 {
    match Phase::parse(phase) {
        Some(p) if p.is_active() || matches!(p, Phase::Waiting) => 0,
        Some(Phase::Failed) => 1,
        _ => 2,
    }
}

/// The list's `<main>`, [`PAGE_SIZE`] rows a page.
pub fn list_main(all: &BTreeMap<Key, History>, query: &ListQuery, now: Time) -> String {
    list_page(all, query, now, PAGE_SIZE)
}

/// The list's `<main>` with `page_size` rows a page (`usize::MAX`: every row on one page, as
/// the benchmark's baseline).
pub fn list_page(all: &BTreeMap<Key, History>, query: &ListQuery, now: Time, page_size: usize) -> String {
    let page_size = page_size.max(1);
    let namespace = query.namespace.as_deref().filter(|n| !n.is_empty());
    // Each Canary's group and phase, worked out once: (group, phase, key, history).
    let in_namespace: Vec<(u8, &str, &Key, &History)> = all
        .iter()
        .filter(|(key, h)| h.canary.is_some() && namespace.is_none_or(|ns| key.0 == ns))
        .map(|(key, h)| {
            let phase = phase_name(h);
            (group(phase), phase, key, h)
        })
        .collect();
    let mut phases: BTreeMap<(u8, &str), usize> = BTreeMap::new();
    for (group, phase, _, _) in &in_namespace {
        *phases.entry((*group, *phase)).or_default() += 1;
    }
    let wanted = query.phase.as_deref().filter(|p| !p.is_empty());
    let mut shown: Vec<&(u8, &str, &Key, &History)> = in_namespace
        .iter()
        .filter(|(_, phase, _, _)| wanted.is_none_or(|p| *phase == p))
        .collect();
    shown.sort_by_key(|(group, _, key, _)| (*group, *key));

    let pages = shown.len().div_ceil(page_size).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let first = (page - 1) * page_size;

    let mut html = format!(r#"<h1>Canaries <small>{}</small></h1>"#, in_namespace.len());
    html.push_str(&filters(query, namespace, wanted, &phases, in_namespace.len()));
    if shown.is_empty() {
        html.push_str(if all.values().any(|h| h.canary.is_some()) {
            r#"<p class="empty">No Canary matches.</p>"#
        } else {
            r#"<p class="empty">No Canaries yet.</p>"#
        });
        return html;
    }
    html.push_str(r#"<table class="list"><thead><tr><th>Namespace</th><th>Name</th><th>Phase</th><th>Weight</th><th>Primary → canary</th><th>ETA</th><th>Weight over time</th><th>Last decision</th></tr></thead><tbody>"#);
    for (_, _, _, h) in shown.iter().skip(first).take(page_size) {
        row(&mut html, h, query, now);
    }
    html.push_str("</tbody></table>");
    if pages > 1 {
        let last = first.saturating_add(page_size).min(shown.len());
        let _ = write!(
            html,
            r#"<nav class="pages" data-page="{page}" data-pages="{pages}">{}–{last} of {} · "#,
            first + 1,
            shown.len()
        );
        let link = |to: usize, text: &str, rel: &str| {
            format!(
                r#"<a rel="{rel}" href="{}">{text}</a>"#,
                escape(&query.with(|q| q.page = Some(to)))
            )
        };
        html.push_str(&if page > 1 {
            link(page - 1, "← previous", "prev")
        } else {
            "← previous".into()
        });
        let _ = write!(html, " · page {page} of {pages} · ");
        html.push_str(&if page < pages {
            link(page + 1, "next →", "next")
        } else {
            "next →".into()
        });
        html.push_str("</nav>");
    }
    html
}

/// The namespace chip and the count per phase, each a link to its view.
fn filters(
    query: &ListQuery,
    namespace: Option<&str>,
    wanted: Option<&str>,
    phases: &BTreeMap<(u8, &str), usize>,
    total: usize,
) -> String {
    let mut html = String::from(r#"<nav class="filters">"#);
    if let Some(ns) = namespace {
        let _ = write!(
            html,
            r#"<a class="chip" href="{}" title="show every namespace">namespace {} ×</a> "#,
            escape(&query.with(|q| {
                q.namespace = None;
                q.page = None;
            })),
            escape(ns)
        );
    }
    let all_class = if wanted.is_none() { "count current" } else { "count" };
    let _ = write!(
        html,
        r#"<a class="{all_class}" href="{}">all {total}</a>"#,
        escape(&query.with(|q| {
            q.phase = None;
            q.page = None;
        }))
    );
    for ((_, phase), n) in phases {
        let current = if wanted == Some(*phase) { " current" } else { "" };
        let _ = write!(
            html,
            r#" <a class="count{current}" data-phase="{p}" href="{}">{} {n}</a>"#,
            escape(&query.with(|q| {
                q.phase = Some((*phase).to_owned());
                q.page = None;
            })),
            phase_pill(phase),
            p = escape(phase),
        );
    }
    html.push_str("</nav>");
    html
}

fn row(html: &mut String, h: &History, query: &ListQuery, now: Time) {
    let Some(c) = &h.canary else { return };
    let s = status(c);
    let ns = c.metadata.namespace.clone().unwrap_or_default();
    let name = c.metadata.name.clone().unwrap_or_default();
    let ns_link = query.with(|q| {
        q.namespace = Some(ns.clone());
        q.page = None;
    });
    let _ = write!(
        html,
        r#"<tr class="canary" data-name="{ns}/{name}"><td><a class="ns" href="{}">{ns}</a></td><td><a href="/canaries/{ns}/{name}">{name}</a></td><td>{}</td><td class="weight">{}%</td><td>{} → {}</td><td>{}</td><td>{}</td><td class="summary">{}</td></tr>"#,
        escape(&ns_link),
        phase_pill(s.phase.as_deref().unwrap_or_default()),
        s.canary_weight.unwrap_or(0),
        escape(s.primary_revision.as_deref().unwrap_or("—")),
        escape(s.canary_revision.as_deref().unwrap_or("—")),
        escape(&eta(&s, now)),
        svg::sparkline(&h.weights, max_weight(c), now),
        escape(s.last_decision.as_ref().map_or("", |d| d.summary.as_str())),
        ns = escape(&ns),
        name = escape(&name),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serin_api::{Canary, CanaryStatus};

    fn fleet(n: usize, failed_every: usize, progressing_every: usize) -> BTreeMap<Key, History> {
        let mut all = BTreeMap::new();
        for i in 0..n {
            let ns = if i % 2 == 0 { "blue" } else { "green" };
            let name = format!("app-{i:04}");
            let mut c = Canary::new(&name, Default::default());
            c.metadata.namespace = Some(ns.into());
            let phase = if i % failed_every == 0 {
                "Failed"
            } else if i % progressing_every == 0 {
                "Progressing"
            } else {
                "Succeeded"
            };
            c.status = Some(CanaryStatus {
                phase: Some(phase.into()),
                ..Default::default()
            });
            let mut h = History::default();
            h.observe(c, Time::from_millis(0));
            all.insert((ns.to_owned(), name), h);
        }
        all
    }

    fn names(main: &str) -> Vec<&str> {
        main.split(r#"<tr class="canary" data-name=""#)
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    #[test]
    fn rollouts_in_flight_come_first_then_failed_ones_in_pages() {
        let all = fleet(120, 10, 7);
        let main = list_main(&all, &ListQuery::default(), Time::from_millis(1000));
        let rows = names(&main);
        assert_eq!(rows.len(), PAGE_SIZE);
        // 0, 10, … 110 fail; the other multiples of 7 progress.
        let progressing = (0..120).filter(|i| i % 10 != 0 && i % 7 == 0).count();
        assert_eq!(rows[0], "blue/app-0014", "{rows:?}");
        let phase_of = |row: &str| {
            let (ns, name) = row.split_once('/').expect("ns/name");
            phase_name(&all[&(ns.to_owned(), name.to_owned())]).to_owned()
        };
        assert!(
            rows[..progressing].iter().all(|r| phase_of(r) == "Progressing"),
            "{rows:?}"
        );
        assert_eq!(rows[progressing], "blue/app-0000", "failed after in flight: {rows:?}");
        assert_eq!(phase_of(rows[progressing + 12]), "Succeeded", "{rows:?}");
        assert!(main.contains(r#"data-pages="3""#), "{main}");
        assert!(main.contains(r#"href="/?page=2""#), "{main}");

        let page = |n: usize| {
            let query = ListQuery {
                page: Some(n),
                ..Default::default()
            };
            list_main(&all, &query, Time::from_millis(1000))
        };
        let (third, beyond) = (page(3), page(99));
        assert_eq!(names(&third).len(), 20);
        assert_eq!(names(&beyond), names(&third), "a page past the end shows the last one");
    }

    #[test]
    fn phase_and_namespace_filters_count_and_narrow() {
        let all = fleet(120, 10, 7);
        let failed_in_blue = ListQuery {
            namespace: Some("blue".into()),
            phase: Some("Failed".into()),
            page: None,
        };
        let main = list_main(&all, &failed_in_blue, Time::from_millis(1000));
        let rows = names(&main);
        assert_eq!(rows.len(), 12, "every multiple of 10 is even, so blue: {rows:?}");
        assert!(rows.iter().all(|r| r.starts_with("blue/")));
        assert!(main.contains("namespace blue ×"), "{main}");
        assert!(main.contains(r#"data-phase="Progressing""#), "{main}");
        assert!(!main.contains("page 1 of"), "one page needs no pager: {main}");
        assert_eq!(failed_in_blue.query_string(), "?namespace=blue&phase=Failed");

        let nothing = ListQuery {
            phase: Some("Promoting".into()),
            ..Default::default()
        };
        assert!(list_main(&all, &nothing, Time::from_millis(0)).contains("No Canary matches."));
        assert!(list_main(&BTreeMap::new(), &ListQuery::default(), Time::from_millis(0)).contains("No Canaries yet."));
        let odd = ListQuery {
            namespace: Some("a&b=<c>".into()),
            ..Default::default()
        };
        assert_eq!(odd.query_string(), "?namespace=a%26b%3D%3Cc%3E");
    }
}
