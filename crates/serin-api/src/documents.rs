//! Reading Canaries out of multi-document YAML, as `kubectl apply -f` files hold them.

use serde_json::Value;

use crate::{Canary, Problem};

/// A YAML text that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("not valid YAML: {0}")]
pub struct YamlError(String);

/// One Canary document: parsed, or the problem that kept it from parsing.
#[derive(Debug)]
pub enum CanaryDocument {
    /// A Canary.
    Parsed(Box<Canary>),
    /// A Canary-kind document whose fields have the wrong shape.
    Malformed {
        /// `NAMESPACE/NAME` as far as it could be read.
        id: String,
        /// The problem, at its field path.
        problem: Problem,
    },
}

/// The Canary documents in `text` (other kinds are skipped).
pub fn canaries_in(text: &str) -> Result<Vec<CanaryDocument>, YamlError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| YamlError(e.to_string()))?;
    let mut out = Vec::new();
    for doc in documents {
        let is_canary = doc.get("kind").and_then(Value::as_str) == Some("Canary")
            && doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("flagger.app/"));
        if !is_canary {
            continue;
        }
        let meta = |key: &str| {
            doc.pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let id = format!(
            "{}/{}",
            meta("namespace").unwrap_or_else(|| "default".into()),
            meta("name").unwrap_or_default()
        );
        match serde_path_to_error::deserialize::<_, Canary>(doc) {
            Ok(canary) => out.push(CanaryDocument::Parsed(Box::new(canary))),
            Err(e) => out.push(CanaryDocument::Malformed {
                id,
                problem: Problem {
                    path: e.path().to_string(),
                    message: e.inner().to_string(),
                },
            }),
        }
    }
    Ok(out)
}
