//! Query templating with Go's `text/template` semantics, as Flagger renders MetricTemplates:
//! comments, `{{-` / `-}}` trimming, pipelines, `printf`, `if` / `else`, `with`, `range`, and
//! Flagger's functions `name`, `namespace`, `target`, `service`, `ingress`, `route` (the canary
//! revision), `interval` and `variables` (`{{ variables.KEY }}`), plus Serin's `primary` (the
//! primary revision). The same values are also the template's data, so `{{ .namespace }}` works
//! too. Rendering is done by the `gotmpl` crate, a port of Go's package.

use std::{collections::BTreeMap, sync::Arc};

use gotmpl::{MissingKey, Template, Value};

/// Why a query could not be rendered: Go's message, with the template's name and position
/// (`template: NAME:LINE:COL: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

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
    fn strings(&self) -> [(&'static str, &str); 8] {
        [
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("target", &self.target),
            ("service", &self.service),
            ("ingress", &self.ingress),
            ("route", &self.route),
            ("primary", &self.primary),
            ("interval", &self.interval),
        ]
    }

    fn variables(&self) -> Value {
        Value::Map(Arc::new(
            self.variables
                .iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), Value::String(v.as_str().into())))
                .collect(),
        ))
    }
}

/// Renders the query template called `name` (a MetricTemplate's `name.namespace`, or the
/// metric's name for an inline query) and collapses whitespace runs to one space. A missing
/// variable is an error, not Go's `<no value>` in the query.
pub fn render(name: &str, template: &str, ctx: &QueryContext) -> Result<String, TemplateError> {
    let mut data: BTreeMap<Arc<str>, Value> = BTreeMap::new();
    let mut tmpl = Template::new(name).missing_key(MissingKey::Error);
    for (key, value) in ctx.strings() {
        let value = Value::String(value.into());
        data.insert(key.into(), value.clone());
        tmpl = tmpl.func(key, move |_| Ok(value.clone()));
    }
    let variables = ctx.variables();
    data.insert("variables".into(), variables.clone());
    tmpl = tmpl.func("variables", move |_| Ok(variables.clone()));
    let rendered = tmpl
        .parse(template)
        .and_then(|t| t.execute_to_string(&Value::Map(Arc::new(data))))
        .map_err(|e| describe(name, template, e))?;
    Ok(collapse_whitespace(&rendered))
}

/// Go's wording where Go reports the error at parse time with a position; the template's name
/// in front of every other error.
fn describe(name: &str, template: &str, error: gotmpl::TemplateError) -> TemplateError {
    match error {
        gotmpl::TemplateError::UndefinedFunction(function) => {
            let line = template
                .lines()
                .position(|l| l.contains(function.as_str()))
                .map_or(1, |i| i + 1);
            TemplateError(format!("template: {name}:{line}: function \"{function}\" not defined"))
        }
        e @ (gotmpl::TemplateError::Parse { .. } | gotmpl::TemplateError::Lex { .. }) => TemplateError(e.to_string()),
        e => TemplateError(format!("template: {name}: {e}")),
    }
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
        let q = render(
            "t",
            "sum(x{ns=\"{{ namespace }}\", rev=\"{{route}}\", p=\"{{ .primary }}\"}[{{ interval }}])\n  > {{ variables.threshold }}",
            &ctx(),
        )
        .expect("renders");
        assert_eq!(
            q,
            "sum(x{ns=\"test\", rev=\"podinfo-00002\", p=\"podinfo-00001\"}[1m]) > 5"
        );
    }

    #[test]
    fn go_template_features_render_as_go_renders_them() {
        let q = render(
            "features.test",
            "{{/* a comment */}}{{- if eq namespace \"test\" -}} a {{- else -}} b {{- end }} {{ printf \"%s-%d\" name 7 }} {{ with variables.threshold }}[{{ . }}]{{ end }} {{ namespace | printf \"%q\" }}",
            &ctx(),
        )
        .expect("renders");
        assert_eq!(q, "a podinfo-7 [5] \"test\"");
    }

    #[test]
    fn template_errors_carry_the_templates_name_and_position() {
        let err = render("error-rate.flagger-system", "x\n{{ revision }}", &ctx()).expect_err("unknown function");
        assert_eq!(
            err.0,
            "template: error-rate.flagger-system:2: function \"revision\" not defined"
        );
        let err = render("t", "{{ variables.nope }}", &ctx()).expect_err("missing variable");
        assert!(err.0.contains("nope"), "{err}");
        let err = render("t", "ok {{ name", &ctx()).expect_err("unclosed");
        assert!(err.0.starts_with("template: t:1:"), "{err}");
    }

    #[test]
    fn promql_durations_use_the_largest_whole_unit() {
        use std::time::Duration;
        assert_eq!(promql_duration(Duration::from_secs(60)), "1m");
        assert_eq!(promql_duration(Duration::from_secs(90)), "90s");
        assert_eq!(promql_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
    }
}
