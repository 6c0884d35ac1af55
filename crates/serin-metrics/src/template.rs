//! Query templating: `{{ name }}`, `{{ namespace }}`, `{{ target }}`, `{{ service }}`,
//! `{{ ingress }}`, `{{ route }}` (the canary revision), `{{ primary }}` (the primary revision),
//! `{{ interval }}` and `{{ variables.KEY }}`, as in Flagger's MetricTemplates.

use std::collections::BTreeMap;

/// Why a query could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// An unknown variable.
    #[error("query template uses unknown variable {{{{ {0} }}}}")]
    Unknown(String),
    /// A `{{` without `}}`.
    #[error("query template has an unclosed {{{{ at byte {0}")]
    Unclosed(usize),
}

/// The values a query may use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryContext {
    /// Canary name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Target (Knative Service) name.
    pub target: String,
    /// `spec.service.name`, or the target.
    pub service: String,
    /// `spec.ingressRef.name`, or the target.
    pub ingress: String,
    /// The canary revision (Flagger's `{{ route }}` for Knative).
    pub route: String,
    /// The primary revision (Serin addition).
    pub primary: String,
    /// The metric window, e.g. `1m`.
    pub interval: String,
    /// `templateVariables`.
    pub variables: BTreeMap<String, String>,
}

impl QueryContext {
    fn lookup(&self, key: &str) -> Option<&str> {
        Some(match key {
            "name" => &self.name,
            "namespace" => &self.namespace,
            "target" => &self.target,
            "service" => &self.service,
            "ingress" => &self.ingress,
            "route" => &self.route,
            "primary" => &self.primary,
            "interval" => &self.interval,
            _ => {
                return key
                    .strip_prefix("variables.")
                    .and_then(|k| self.variables.get(k))
                    .map(String::as_str);
            }
        })
    }
}

/// Renders a template and collapses whitespace runs to one space (as Flagger does).
pub fn render(template: &str, ctx: &QueryContext) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::Unclosed(offset + start))?;
        let key = after[..end].trim().trim_start_matches('.');
        out.push_str(ctx.lookup(key).ok_or_else(|| TemplateError::Unknown(key.to_owned()))?);
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    Ok(collapse_whitespace(&out))
}

/// A PromQL range duration for `{{ interval }}`: `1m`, `30s`, `2h`, `1500ms`.
pub fn promql_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) && ms > 0 => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) && ms > 0 => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

/// Collapses every whitespace run to one space and trims the ends.
pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> QueryContext {
        QueryContext {
            name: "podinfo".into(),
            namespace: "test".into(),
            target: "podinfo".into(),
            route: "podinfo-00002".into(),
            primary: "podinfo-00001".into(),
            interval: "1m".into(),
            variables: BTreeMap::from([("threshold".to_owned(), "5".to_owned())]),
            ..QueryContext::default()
        }
    }

    #[test]
    fn renders_every_variable_and_collapses_whitespace() {
        let q = render("sum(x{ns=\"{{ namespace }}\", rev=\"{{route}}\", p=\"{{ .primary }}\"}[{{ interval }}])\n  > {{ variables.threshold }}", &ctx())
            .expect("renders");
        assert_eq!(
            q,
            "sum(x{ns=\"test\", rev=\"podinfo-00002\", p=\"podinfo-00001\"}[1m]) > 5"
        );
    }

    #[test]
    fn promql_durations_use_the_largest_whole_unit() {
        use std::time::Duration;
        assert_eq!(promql_duration(Duration::from_secs(60)), "1m");
        assert_eq!(promql_duration(Duration::from_secs(90)), "90s");
        assert_eq!(promql_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn unknown_variables_and_unclosed_braces_are_named() {
        assert_eq!(
            render("x{{ revision }}", &ctx()),
            Err(TemplateError::Unknown("revision".into()))
        );
        assert_eq!(
            render("{{ variables.nope }}", &ctx()),
            Err(TemplateError::Unknown("variables.nope".into()))
        );
        assert_eq!(render("ok {{ name", &ctx()), Err(TemplateError::Unclosed(3)));
        assert_eq!(
            TemplateError::Unknown("revision".into()).to_string(),
            "query template uses unknown variable {{ revision }}"
        );
    }
}
