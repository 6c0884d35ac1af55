//! `Table` responses (`Accept: application/json;as=Table;…`), built from a CRD's printer columns,
//! so `kubectl get` prints what it prints on a cluster.

use serde_json::{Value, json};

use super::registry::ResourceDef;

fn lookup(object: &Value, json_path: &str) -> Value {
    let path = json_path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    let mut node = object;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        match node.get(part) {
            Some(next) => node = next,
            None => return Value::Null,
        }
    }
    match node {
        Value::Array(items) => json!(
            items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.clone(),
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
