//! `Table` responses (`Accept: application/json;as=Table;…`), built from a CRD's printer columns,
//! so `kubectl get` prints what it prints on a cluster.

use serde_json::{Value, json};

use super::registry::ResourceDef;

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `['k.with.dots']`, `[0]`,
/// and `[?(@.type=='Ready')]`.
fn lookup(object: &Value, json_path: &str) -> Value {
    let path = json_path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut nodes: Vec<&Value> = vec![object];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[?(@.") {
            let Some(end) = after.find(")]") else {
                return Value::Null;
            };
            let cond = &after[..end];
            let Some((key, wanted)) = cond.split_once("==") else {
                return Value::Null;
            };
            let wanted = wanted.trim().trim_matches('\'').trim_matches('"');
            nodes = nodes
                .into_iter()
                .flat_map(|n| n.as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default())
                .filter(|item| item.get(key.trim()).and_then(Value::as_str) == Some(wanted))
                .collect();
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let Some(end) = after.find("']") else {
                return Value::Null;
            };
            let key = after[..end].replace("\\.", ".");
            nodes = nodes.into_iter().filter_map(|n| n.get(&key)).collect();
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { return Value::Null };
            let index: usize = after[..end].parse().unwrap_or(usize::MAX);
            nodes = nodes.into_iter().filter_map(|n| n.get(index)).collect();
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if !key.is_empty() {
                nodes = nodes.into_iter().filter_map(|n| n.get(key)).collect();
            }
            rest = &after[end..];
        } else {
            return Value::Null;
        }
    }
    match nodes.as_slice() {
        [] => Value::Null,
        [Value::Array(items)] => json!(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(",")
        ),
        [one] => (*one).clone(),
        many => json!(
            many.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// `5s`, `3m`, `2h`, `4d`, as the API server renders ages.
fn age(timestamp: &Value) -> Value {
    let Some(t) = timestamp.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return timestamp.clone();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    json!(match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    })
}

fn column(name: &str, type_: &str, priority: i64) -> Value {
    // Dates are rendered as ages by the server, so clients see strings.
    let type_ = if type_ == "date" { "string" } else { type_ };
    json!({"name": name, "type": type_, "format": "", "description": name, "priority": priority})
}

/// A Table of objects.
pub fn table(def: &ResourceDef, objects: &[Value], list_rv: Option<String>) -> Value {
    let mut columns =
        vec![json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0})];
    let use_age = def.columns.is_empty();
    columns.extend(def.columns.iter().map(|c| column(&c.name, &c.type_, c.priority)));
    if use_age {
        columns.push(column("Age", "date", 0));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            for c in &def.columns {
                let v = lookup(o, &c.json_path);
                cells.push(if c.type_ == "date" { age(&v) } else { v });
            }
            if use_age {
                cells.push(age(&o.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null)));
            }
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or_default()}
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": list_rv.unwrap_or_default()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::lookup;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let o = json!({"metadata": {"labels": {"serving.knative.dev/configuration": "podinfo"}}, "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}], "traffic": [{"percent": 90}]}});
        assert_eq!(
            lookup(&o, ".status.conditions[?(@.type=='Ready')].status"),
            json!("True")
        );
        assert_eq!(
            lookup(&o, ".metadata.labels['serving\\.knative\\.dev/configuration']"),
            json!("podinfo")
        );
        assert_eq!(lookup(&o, ".status.traffic[0].percent"), json!(90));
        assert_eq!(lookup(&o, ".status.missing"), serde_json::Value::Null);
    }
}
