//! One metric's query, built the one way both the controller and `serin check-metrics` build it:
//! the text from its MetricTemplate, its inline `query` or the built-in set, rendered with the
//! Canary's names, the revisions and the metric's window.

use std::collections::BTreeMap;

use serin_core::{MetricCheck, Plan};

use crate::{QueryContext, QuerySet, TemplateError, builtin_query, promql_duration, render};

/// Where a metric's query text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuerySource<'a> {
    /// A MetricTemplate's `spec.query`, named `name.namespace` in template errors.
    Template {
        /// `name.namespace` of the MetricTemplate.
        name: &'a str,
        /// Its query.
        text: &'a str,
    },
    /// The metric's inline `query`.
    Inline(&'a str),
    /// The built-in query of the metric's kind.
    Builtin(QuerySet),
}

/// The revisions a query is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Revisions<'a> {
    /// The revision under analysis (`{{ route }}`).
    pub canary: &'a str,
    /// The primary revision (`{{ primary }}`).
    pub primary: &'a str,
}

/// The rendered query of `metric` of `plan`, with the metric's `templateVariables`.
pub fn metric_query(
    plan: &Plan,
    metric: &MetricCheck,
    source: QuerySource<'_>,
    revisions: Revisions<'_>,
    variables: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let ctx = QueryContext {
        name: plan.canary_name.clone(),
        namespace: plan.namespace.clone(),
        target: plan.target_name.clone(),
        service: plan.target_name.clone(),
        ingress: plan.target_name.clone(),
        route: revisions.canary.to_owned(),
        primary: revisions.primary.to_owned(),
        interval: promql_duration(metric.window),
        variables: variables.clone(),
    };
    let (name, text) = match source {
        QuerySource::Template { name, text } => (name, text),
        QuerySource::Inline(text) => (metric.name.as_str(), text),
        QuerySource::Builtin(set) => (
            metric.name.as_str(),
            builtin_query(metric.kind, set)
                .ok_or_else(|| TemplateError(format!("metric {} has no built-in query", metric.name)))?,
        ),
    };
    render(name, text, &ctx)
}

#[cfg(test)]
mod tests {
    use serin_core::sim::example_plan;

    use super::*;

    #[test]
    fn builtin_and_inline_queries_are_rendered_for_the_revision_and_window() {
        let plan = example_plan();
        let revisions = Revisions {
            canary: "podinfo-00002",
            primary: "podinfo-00001",
        };
        let builtin = metric_query(
            &plan,
            &plan.metrics[0],
            QuerySource::Builtin(QuerySet::Kourier),
            revisions,
            &BTreeMap::new(),
        )
        .expect("built-in");
        assert!(
            builtin.contains(r#"envoy_cluster_name=~"test/podinfo-00002""#),
            "{builtin}"
        );
        assert!(builtin.contains("[1m]"), "{builtin}");
        let inline = metric_query(
            &plan,
            &plan.metrics[0],
            QuerySource::Inline("up{rev=\"{{ route }}\",p=\"{{ primary }}\",v=\"{{ variables.k }}\"}"),
            revisions,
            &BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        )
        .expect("inline");
        assert_eq!(inline, r#"up{rev="podinfo-00002",p="podinfo-00001",v="v"}"#);
    }

    #[test]
    fn a_template_error_names_the_metric_template() {
        let plan = example_plan();
        let err = metric_query(
            &plan,
            &plan.metrics[0],
            QuerySource::Template {
                name: "error-rate.flagger-system",
                text: "{{ if }}",
            },
            Revisions::default(),
            &BTreeMap::new(),
        )
        .expect_err("bad template");
        assert!(err.0.starts_with("template: error-rate.flagger-system:1:"), "{err}");
    }
}
