//! The JSON body Flagger POSTs to webhooks, shared by the client and the
//! loadtester.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The webhook request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanaryWebhookPayload {
    /// Canary name.
    pub name: String,
    /// Canary namespace.
    pub namespace: String,
    /// Canary phase when the hook is called.
    #[serde(default)]
    pub phase: String,
    /// A stable digest of the revision under analysis.
    #[serde(default)]
    pub checksum: String,
    /// Hook type (Serin addition; Flagger's loadtester ignores it).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The hook's metadata; for event webhooks also `eventMessage`, `eventType`, `timestamp`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl CanaryWebhookPayload {
    /// `{name}.{namespace}`, the loadtester's gate key.
    pub fn key(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }

    /// The payload of an event webhook: the hook's metadata plus the event, without letting
    /// the hook's keys override the event's.
    pub fn event(mut self, message: &str, event_type: &str, timestamp_millis: i64) -> Self {
        self.metadata.insert("eventMessage".into(), message.to_owned());
        self.metadata.insert("eventType".into(), event_type.to_owned());
        self.metadata.insert("timestamp".into(), timestamp_millis.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_matches_flaggers_wire_format() {
        let mut p = CanaryWebhookPayload {
            name: "podinfo".into(),
            namespace: "test".into(),
            phase: "Progressing".into(),
            checksum: "85d557f4".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&p).expect("json"),
            serde_json::json!({"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "85d557f4"})
        );
        p.metadata.insert("cmd".into(), "hey -z 1m http://podinfo.test".into());
        p = p.event("Advance podinfo.test canary weight 10", "Normal", 1_700_000_000_000);
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(v["metadata"]["eventType"], "Normal");
        assert_eq!(v["metadata"]["timestamp"], "1700000000000");
        assert_eq!(v["metadata"]["cmd"], "hey -z 1m http://podinfo.test");
    }
}
