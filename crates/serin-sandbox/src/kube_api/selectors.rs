//! Label and field selectors, as the API server parses them.

use serde_json::Value;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Label>);

/// Splits on commas outside parentheses.
fn split_top(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

fn set(values: &str) -> Result<Vec<String>, String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("expected (values), got {values:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top(text) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Label::NotExists(key.trim().to_owned())
            } else if let Some((k, v)) = part.split_once(" notin ") {
                Label::NotIn(k.trim().to_owned(), set(v)?)
            } else if let Some((k, v)) = part.split_once(" in ") {
                Label::In(k.trim().to_owned(), set(v)?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Label::Ne(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Label::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if part.contains(' ') {
                return Err(format!("unable to parse requirement: {part:?}"));
            } else {
                Label::Exists(part)
            };
            reqs.push(req);
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether an object's labels match.
    pub fn matches(&self, object: &Value) -> bool {
        let label = |k: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
        };
        self.0.iter().all(|req| match req {
            Label::Eq(k, v) => label(k) == Some(v.as_str()),
            Label::Ne(k, v) => label(k) != Some(v.as_str()),
            Label::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Label::Exists(k) => label(k).is_some(),
            Label::NotExists(k) => label(k).is_none(),
        })
    }
}

/// A parsed field selector (`metadata.name=x,involvedObject.kind!=Pod`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `=`, `==` and `!=` terms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in split_top(text) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("invalid field selector {part:?}"));
            };
            terms.push((field.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the object's fields match (a missing field reads as the empty string).
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = match object.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_match_like_the_api_server() {
        let obj = json!({"metadata": {"labels": {"app": "podinfo", "tier": "web"}}});
        for (sel, expected) in [
            ("app=podinfo", true),
            ("app==podinfo,tier=web", true),
            ("app!=podinfo", false),
            ("tier in (web, api)", true),
            ("tier notin (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("missing notin (x)", true),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(sel).expect(sel).matches(&obj), expected, "{sel}");
        }
        assert!(LabelSelector::parse("tier in web").is_err());
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let ev = json!({"metadata": {"name": "e1", "namespace": "test"}, "involvedObject": {"kind": "Canary", "name": "podinfo"}});
        assert!(
            FieldSelector::parse("involvedObject.kind=Canary,involvedObject.name=podinfo")
                .expect("parse")
                .matches(&ev)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=test")
                .expect("parse")
                .matches(&ev)
        );
        assert!(FieldSelector::parse("involvedObject.uid=").expect("parse").matches(&ev));
    }
}
