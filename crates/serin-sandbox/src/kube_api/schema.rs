//! Custom resources against their CRD's structural schema, as the API server handles them:
//! unknown fields pruned (and nulls in non-nullable fields), `default`s applied, then the value
//! validated, every problem a field cause in the API server's wording.
//!
//! Checked: `type` (with `nullable`, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields`), `required`, `enum`, `pattern`, `minimum` / `maximum`
//! (and their exclusive forms), `minLength` / `maxLength`, `minItems` / `maxItems`,
//! `allOf` / `anyOf` / `oneOf` / `not`. Not checked: `format`, CEL rules
//! (`x-kubernetes-validations`), list-type and map-type uniqueness, `metadata` beyond what the
//! store checks (`docs/sandbox.md`).

use serde_json::{Map, Value, json};

use super::error::ApiError;

/// One field problem, as a `StatusCause`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`.
    pub reason: &'static str,
    /// The field path, e.g. `spec.analysis.interval`.
    pub field: String,
    /// The message without the field, e.g. `Required value`.
    pub message: String,
}

/// Prunes and defaults `obj` in place, then validates it against `schema` (a CRD version's
/// `openAPIV3Schema`); the causes of every problem found.
pub fn admit(schema: &Value, obj: &mut Value) -> Vec<Cause> {
    normalize(schema, obj, true);
    let mut causes = Vec::new();
    if let Some(map) = obj.as_object() {
        // The root: `apiVersion`, `kind` and `metadata` are the API server's, not the schema's.
        validate_object(schema, map, "", &mut causes, true);
        validate_combinators(schema, obj, "", &mut causes);
    }
    causes
}

/// The API server's 422 for `causes` on `{kind}.{group}` named `name`.
pub fn invalid(kind: &str, group: &str, name: &str, causes: &[Cause]) -> ApiError {
    let each: Vec<String> = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
    let listed = if each.len() == 1 {
        each[0].clone()
    } else {
        format!("[{}]", each.join(", "))
    };
    ApiError {
        details: Some(json!({
            "name": name,
            "group": group,
            "kind": kind,
            "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        })),
        ..ApiError::invalid(format!("{kind}.{group} \"{name}\" is invalid: {listed}"))
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn normalize(schema: &Value, value: &mut Value, root: bool) {
    match value {
        Value::Object(map) => normalize_object(schema, map, root),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    normalize(item_schema, item, false);
                }
            }
        }
        // The API server decodes numbers as float64 and writes an integral one without a
        // fraction: `5.0` is stored as `5`.
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.007_199_254_740_992e15
            {
                *value = json!(f as i64);
            }
        }
        _ => {}
    }
}

fn normalize_object(schema: &Value, map: &mut Map<String, Value>, root: bool) {
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let kept = |key: &str| root && matches!(key, "apiVersion" | "kind" | "metadata");
    if let Some(props) = props {
        map.retain(|k, v| {
            kept(k)
                || match props.get(k) {
                    Some(p) => !v.is_null() || flag(p, "nullable"),
                    None => preserve,
                }
        });
        for (k, p) in props {
            if !map.contains_key(k)
                && let Some(default) = p.get("default")
            {
                map.insert(k.clone(), default.clone());
            }
        }
        for (k, v) in map.iter_mut() {
            if let Some(p) = props.get(k)
                && !kept(k)
            {
                normalize(p, v, false);
            }
        }
    } else if let Some(additional) = additional {
        for v in map.values_mut() {
            normalize(additional, v, false);
        }
    } else if !preserve && schema.get("type").and_then(Value::as_str) == Some("object") {
        // An object with neither properties nor preserved fields keeps nothing.
        map.retain(|k, _| kept(k));
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid_value(causes: &mut Vec<Cause>, path: &str, value: &Value, what: String) {
    causes.push(Cause {
        reason: "FieldValueInvalid",
        field: path.to_owned(),
        message: format!("Invalid value: {value}: {path} in body {what}"),
    });
}

fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    let actual = type_name(value);
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    let expected = schema.get("type").and_then(Value::as_str);
    let type_ok = if int_or_string {
        matches!(actual, "integer" | "string")
    } else {
        match expected {
            None => true,
            Some("number") => matches!(actual, "integer" | "number"),
            Some(t) => t == actual,
        }
    };
    if !type_ok {
        let wanted = if int_or_string {
            "integer,string"
        } else {
            expected.unwrap_or_default()
        };
        let shown = json!(actual);
        invalid_value(causes, path, &shown, format!("must be of type {wanted}: {shown}"));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: path.to_owned(),
            message: format!("Unsupported value: {value}: supported values: {}", list.join(", ")),
        });
    }
    match value {
        Value::String(text) => validate_string(schema, value, text, path, causes),
        Value::Number(n) => validate_number(schema, value, n.as_f64().unwrap_or_default(), path, causes),
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                invalid_value(causes, path, &json!(count), format!("should have at least {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    field: path.to_owned(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item_schema, item, &format!("{path}[{i}]"), causes);
                }
            }
        }
        Value::Object(map) => validate_object(schema, map, path, causes, false),
        _ => {}
    }
    validate_combinators(schema, value, path, causes);
}

fn validate_string(schema: &Value, value: &Value, text: &str, path: &str, causes: &mut Vec<Cause>) {
    let chars = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        invalid_value(causes, path, value, format!("should be at least {min} chars long"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            field: path.to_owned(),
            message: format!("Too long: may not be more than {max} bytes"),
        });
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match compiled(pattern) {
            Ok(re) if !re.is_match(text) => {
                invalid_value(causes, path, value, format!("should match '{pattern}'"));
            }
            Ok(_) => {}
            Err(e) => invalid_value(causes, path, value, format!("has an unusable pattern '{pattern}': {e}")),
        }
    }
}

/// Compiled `pattern`s, kept: a CRD has a handful, each checked on every write.
fn compiled(pattern: &str) -> Result<regex::Regex, regex::Error> {
    static CACHE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, regex::Regex>>> =
        std::sync::LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(re) = cache.get(pattern) {
        return Ok(re.clone());
    }
    let re = regex::Regex::new(pattern)?;
    cache.insert(pattern.to_owned(), re.clone());
    Ok(re)
}

fn validate_number(schema: &Value, value: &Value, n: f64, path: &str, causes: &mut Vec<Cause>) {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMinimum") && n <= min {
            invalid_value(causes, path, value, format!("should be greater than {min}"));
        } else if n < min {
            invalid_value(causes, path, value, format!("should be greater than or equal to {min}"));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        if flag(schema, "exclusiveMaximum") && n >= max {
            invalid_value(causes, path, value, format!("should be less than {max}"));
        } else if n > max {
            invalid_value(causes, path, value, format!("should be less than or equal to {max}"));
        }
    }
}

fn validate_object(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>, root: bool) {
    for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(key) = key.as_str()
            && !map.contains_key(key)
        {
            causes.push(Cause {
                reason: "FieldValueRequired",
                field: child(path, key),
                message: "Required value".into(),
            });
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (k, v) in map {
        if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(p) = props.and_then(|props| props.get(k)) {
            validate(p, v, &child(path, k), causes);
        } else if let Some(a) = additional {
            validate(a, v, &format!("{path}[{k}]"), causes);
        }
    }
}

fn passes(schema: &Value, value: &Value, path: &str) -> bool {
    let mut scratch = Vec::new();
    validate(schema, value, path, &mut scratch);
    scratch.is_empty()
}

fn validate_combinators(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let list = |key: &str| schema.get(key).and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for sub in list("allOf") {
        validate(sub, value, path, causes);
    }
    let any = list("anyOf");
    if !any.is_empty() && !any.iter().any(|s| passes(s, value, path)) {
        invalid_value(causes, path, value, "must validate at least one schema (anyOf)".into());
    }
    let one = list("oneOf");
    if !one.is_empty() && one.iter().filter(|s| passes(s, value, path)).count() != 1 {
        invalid_value(
            causes,
            path,
            value,
            "must validate one and only one schema (oneOf)".into(),
        );
    }
    if let Some(not) = schema.get("not")
        && passes(not, value, path)
    {
        invalid_value(causes, path, value, "must not validate the schema (not)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["targetRef"],
                    "properties": {
                        "targetRef": {"type": "object", "properties": {"name": {"type": "string"}}},
                        "interval": {"type": "string", "pattern": "^[0-9]+(m|s)"},
                        "threshold": {"type": "integer", "minimum": 0, "default": 5},
                        "maxWeight": {"type": "number", "maximum": 100},
                        "provider": {"type": "string", "enum": ["knative", "istio"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "closed": {"type": "object"},
                        "metrics": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                        "note": {"type": "string", "nullable": true},
                    }
                }
            }
        })
    }

    fn messages(mut obj: Value) -> Vec<String> {
        admit(&schema(), &mut obj)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn a_type_mismatch_reads_like_the_api_servers() {
        assert_eq!(
            messages(json!({"spec": {"targetRef": {}, "interval": 15}})),
            [r#"spec.interval: Invalid value: "integer": spec.interval in body must be of type string: "integer""#]
        );
        assert_eq!(
            messages(json!({"spec": {"targetRef": {}, "threshold": "five"}})),
            [r#"spec.threshold: Invalid value: "string": spec.threshold in body must be of type integer: "string""#]
        );
        assert_eq!(
            messages(json!({"spec": {"targetRef": {}, "metrics": {"a": 1}}})),
            [r#"spec.metrics: Invalid value: "object": spec.metrics in body must be of type array: "object""#]
        );
    }

    #[test]
    fn required_enum_pattern_and_bounds() {
        assert_eq!(
            messages(
                json!({"spec": {"interval": "often", "threshold": -1, "maxWeight": 101.5, "provider": "linkerd", "metrics": [{}]}})
            ),
            [
                "spec.targetRef: Required value",
                r#"spec.interval: Invalid value: "often": spec.interval in body should match '^[0-9]+(m|s)'"#,
                "spec.maxWeight: Invalid value: 101.5: spec.maxWeight in body should be less than or equal to 100",
                "spec.metrics[0].name: Required value",
                r#"spec.provider: Unsupported value: "linkerd": supported values: "knative", "istio""#,
                "spec.threshold: Invalid value: -1: spec.threshold in body should be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn int_or_string_maps_and_nullable() {
        assert!(messages(json!({"spec": {"targetRef": {}, "port": 80, "note": null}})).is_empty());
        assert!(messages(json!({"spec": {"targetRef": {}, "port": "http"}})).is_empty());
        assert_eq!(
            messages(json!({"spec": {"targetRef": {}, "port": true, "metadata": {"a": 1}}})),
            [
                r#"spec.metadata[a]: Invalid value: "integer": spec.metadata[a] in body must be of type string: "integer""#,
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            ]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_defaults_applied_and_nulls_dropped() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "labels": {"k": "v"}},
            "spec": {"targetRef": {"name": "t", "extra": 1}, "free": {"any": {"thing": 1}}, "closed": {"gone": 1}, "interval": null},
            "unknown": true
        });
        assert!(admit(&schema(), &mut obj).is_empty());
        assert_eq!(
            obj,
            json!({
                "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "labels": {"k": "v"}},
                "spec": {"targetRef": {"name": "t"}, "free": {"any": {"thing": 1}}, "closed": {}, "threshold": 5}
            })
        );
    }

    #[test]
    fn an_integral_float_is_stored_as_an_integer_like_go_writes_it() {
        let mut obj = json!({"spec": {"targetRef": {}, "threshold": 5.0, "maxWeight": 50.5}});
        assert!(admit(&schema(), &mut obj).is_empty());
        assert_eq!(obj["spec"]["threshold"].to_string(), "5");
        assert_eq!(obj["spec"]["maxWeight"].to_string(), "50.5");
    }

    #[test]
    fn the_status_lists_every_cause() {
        let causes = admit(&schema(), &mut json!({"spec": {"interval": 1}}));
        let error = invalid("Canary", "flagger.app", "podinfo", &causes);
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            r#"Canary.flagger.app "podinfo" is invalid: [spec.targetRef: Required value, spec.interval: Invalid value: "integer": spec.interval in body must be of type string: "integer"]"#
        );
        let status = error.status();
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.targetRef"})
        );
        assert_eq!(status["details"]["kind"], "Canary");
    }
}
