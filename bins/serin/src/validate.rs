//! `serin validate FILE...`: every Canary in the files checked as the controller checks it, plus
//! what the controller would only find at the first analysis step: queries (inline, and those of
//! the MetricTemplates in the same files) that do not render, and MetricTemplate providers Serin
//! does not run. One line per problem, `FILE: Canary NAMESPACE/NAME: FIELD.PATH: problem`.

use std::{collections::BTreeMap, path::PathBuf};

use serin_api::{Canary, CanaryDocument, MetricTemplate, canaries_in, validate};
use serin_metrics::{QueryContext, render};

/// Prints one line per problem; returns whether every Canary is valid.
pub fn run(files: &[PathBuf]) -> anyhow::Result<bool> {
    let mut all_valid = true;
    for file in files {
        let name = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                println!("{name}: cannot read: {e}");
                all_valid = false;
                continue;
            }
        };
        let docs = match canaries_in(&text) {
            Ok(docs) => docs,
            Err(e) => {
                println!("{name}: {e}");
                all_valid = false;
                continue;
            }
        };
        for doc in docs {
            match doc {
                CanaryDocument::Malformed { id, problem } => {
                    println!("{name}: Canary {id}: {problem}");
                    all_valid = false;
                }
                CanaryDocument::Parsed(canary) => {
                    let id = format!(
                        "{}/{}",
                        canary.metadata.namespace.as_deref().unwrap_or("default"),
                        canary.metadata.name.as_deref().unwrap_or_default()
                    );
                    match validate(&canary) {
                        Ok(v) => {
                            for w in v.warnings {
                                eprintln!("{name}: Canary {id}: warning: {w}");
                            }
                            let mut problems = query_problems(&canary);
                            problems.extend(alert_problems(&canary, &text));
                            for p in &problems {
                                println!("{name}: Canary {id}: {p}");
                            }
                            if problems.is_empty() {
                                eprintln!("{name}: Canary {id}: valid");
                            } else {
                                all_valid = false;
                            }
                        }
                        Err(invalid) => {
                            all_valid = false;
                            for p in invalid.problems {
                                println!("{name}: Canary {id}: {p}");
                            }
                        }
                    }
                }
            }
        }
    }
    for file in files {
        for problem in std::fs::read_to_string(file)
            .ok()
            .map(|text| template_problems(&text))
            .unwrap_or_default()
        {
            println!("{}: {problem}", file.display());
            all_valid = false;
        }
    }
    Ok(all_valid)
}

/// A Canary's alert references, checked against the AlertProviders (and their Secrets) in the
/// same file; a file without AlertProviders is not checked (they may be installed elsewhere).
fn alert_problems(canary: &Canary, text: &str) -> Vec<String> {
    let docs = serde_saphyr::from_multiple::<serde_json::Value>(text).unwrap_or_default();
    let id = |d: &serde_json::Value| {
        format!(
            "{}/{}",
            d.pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or("default"),
            d.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default()
        )
    };
    let providers: Vec<&serde_json::Value> = docs.iter().filter(|d| d["kind"] == "AlertProvider").collect();
    if providers.is_empty() {
        return Vec::new();
    }
    let namespace = canary.metadata.namespace.as_deref().unwrap_or("default");
    let alerts = canary.spec.analysis.iter().flat_map(|a| a.alerts.iter()).enumerate();
    let mut problems = Vec::new();
    for (i, alert) in alerts {
        let wanted = format!(
            "{}/{}",
            alert
                .provider_ref
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace),
            alert.provider_ref.name
        );
        let path = format!("spec.analysis.alerts[{i}].providerRef");
        let Some(provider) = providers.iter().find(|p| id(p) == wanted) else {
            problems.push(format!("{path}: AlertProvider {wanted} is not in the file"));
            continue;
        };
        let spec = &provider["spec"];
        let kind = spec["type"].as_str().unwrap_or_default();
        let address = match spec.pointer("/secretRef/name").and_then(|n| n.as_str()) {
            Some(secret) => {
                let secret_id = format!("{}/{secret}", wanted.split('/').next().unwrap_or_default());
                match docs.iter().find(|d| d["kind"] == "Secret" && id(d) == secret_id) {
                    // Not in the file: its address cannot be checked.
                    None => continue,
                    Some(s) if s["data"].get("address").is_some() => continue,
                    Some(s) => match s["stringData"]["address"].as_str() {
                        Some(a) => a.to_owned(),
                        None => {
                            problems.push(format!(
                                "{path}: AlertProvider {wanted}: secret does not contain an address"
                            ));
                            continue;
                        }
                    },
                }
            }
            None => spec["address"].as_str().unwrap_or_default().to_owned(),
        };
        if let Err(e) = serin_alerts::Target::new(kind, &wanted, &address) {
            problems.push(format!("{path}: AlertProvider {wanted}: {e}"));
        }
    }
    problems
}

/// Values to render queries with: what the controller fills in, with placeholder revisions.
fn sample_context(canary: &Canary) -> QueryContext {
    let target = canary.spec.target_ref.name.clone();
    QueryContext {
        name: canary.metadata.name.clone().unwrap_or_default(),
        namespace: canary.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
        service: target.clone(),
        ingress: target.clone(),
        route: format!("{target}-00002"),
        primary: format!("{target}-00001"),
        target,
        interval: "1m".into(),
        variables: Default::default(),
    }
}

/// Inline queries that the controller could not render: each would fail every check.
fn query_problems(canary: &Canary) -> Vec<String> {
    let mut ctx = sample_context(canary);
    let metrics = canary.spec.analysis.iter().flat_map(|a| a.metrics.iter()).enumerate();
    let mut problems = Vec::new();
    for (i, metric) in metrics {
        let Some(query) = &metric.query else { continue };
        ctx.variables = metric.template_variables.clone().unwrap_or_default();
        if let Err(e) = render(&metric.name, query, &ctx) {
            problems.push(format!("spec.analysis.metrics[{i}].query: {e}"));
        }
    }
    problems
}

/// Every Secret key a provider reads: stands in for a Secret that is not in the file, whose keys
/// cannot be checked.
const ANY_SECRET_KEYS: [&str; 11] = [
    "token",
    "username",
    "password",
    "org",
    "datadog_api_key",
    "datadog_application_key",
    "newrelic_account_id",
    "newrelic_query_key",
    "dynatrace_token",
    "sf_token_key",
    "project",
];

/// The keys of the Secrets in a file, by `namespace/name`.
fn secrets_in(docs: &[serde_json::Value]) -> BTreeMap<String, Vec<String>> {
    docs.iter()
        .filter(|d| d["kind"] == "Secret")
        .map(|d| {
            let id = format!(
                "{}/{}",
                d.pointer("/metadata/namespace")
                    .and_then(|v| v.as_str())
                    .unwrap_or("default"),
                d.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or_default()
            );
            let keys = ["data", "stringData"]
                .iter()
                .filter_map(|f| d[f].as_object())
                .flat_map(|m| m.keys().cloned())
                .collect();
            (id, keys)
        })
        .collect()
}

/// A template's provider settings for validation: its Secret's keys when the Secret is in the
/// file (values are placeholders), every key a provider reads when it is not.
fn template_settings(
    template: &MetricTemplate,
    secrets: &BTreeMap<String, Vec<String>>,
) -> serin_metrics::providers::ProviderSettings {
    let provider = &template.spec.provider;
    let mut settings = serin_metrics::providers::ProviderSettings::new(&provider.type_);
    settings.address = provider.address.clone();
    settings.region = provider.region.clone();
    settings.secret = provider.secret_ref.as_ref().map(|r| {
        let namespace = template.metadata.namespace.as_deref().unwrap_or("default");
        let keys: Vec<String> = match secrets.get(&format!("{namespace}/{}", r.name)) {
            Some(keys) => keys.clone(),
            None => ANY_SECRET_KEYS.iter().map(|k| (*k).to_owned()).collect(),
        };
        keys.into_iter().map(|k| (k, "placeholder".to_owned())).collect()
    });
    settings
}

/// The MetricTemplates of a file whose query does not render or whose provider cannot be built
/// (an unknown or unsupported type, a missing field or Secret key): every check using them would
/// fail.
fn template_problems(text: &str) -> Vec<String> {
    let Ok(docs) = serde_saphyr::from_multiple::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let secrets = secrets_in(&docs);
    let mut problems = Vec::new();
    for doc in docs.into_iter().filter(|d| d["kind"] == "MetricTemplate") {
        let id = format!(
            "{}/{}",
            doc.pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or("default"),
            doc.pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
        );
        let template: MetricTemplate = match serde_json::from_value(doc) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("MetricTemplate {id}: {e}"));
                continue;
            }
        };
        if let Err(e) = serin_metrics::providers::build_provider(&template_settings(&template, &secrets)) {
            problems.push(format!("MetricTemplate {id}: spec.provider: {e}"));
        }
        let ctx = QueryContext {
            name: "canary".into(),
            namespace: "default".into(),
            target: "app".into(),
            service: "app".into(),
            ingress: "app".into(),
            route: "app-00002".into(),
            primary: "app-00001".into(),
            interval: "1m".into(),
            variables: Default::default(),
        };
        // Variables come from each Canary's templateVariables: only the syntax is checked here.
        if let Err(e) = render(&id, &template.spec.query, &ctx)
            && !e.0.contains("map has no entry for key")
        {
            problems.push(format!("MetricTemplate {id}: spec.query: {e}"));
        }
    }
    problems
}
