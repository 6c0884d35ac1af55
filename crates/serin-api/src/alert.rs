//! The `AlertProvider` custom resource (`flagger.app/v1beta1`) and a Canary's
//! `spec.analysis.alerts[]`, as Flagger defines them.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::canary::CrossNamespaceRef;

/// `AlertProvider.spec`: where alerts of one chat service go.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "flagger.app",
    version = "v1beta1",
    kind = "AlertProvider",
    plural = "alertproviders",
    singular = "alertprovider",
    namespaced,
    category = "all",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertProviderSpec {
    /// `slack`, `msteams`, `discord`, `rocket` or `gchat`.
    #[serde(rename = "type")]
    #[schemars(schema_with = "provider_type")]
    pub type_: String,
    /// Channel (Slack, Discord, Rocket.Chat; default `general`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Bot user name (default `flagger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Hook URL (or `address` in the Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// HTTP(S) proxy URL (or `proxy` in the Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Secret with `address`, and optionally `proxy` and `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<crate::template::SecretRef>,
}

fn provider_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Flagger's enum: the API server refuses other types.
    schemars::json_schema!({
        "type": "string",
        "enum": ["slack", "msteams", "discord", "rocket", "gchat"],
        "description": "Type of this provider"
    })
}

/// `spec.analysis.alerts[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryAlert {
    /// Name of the alert.
    pub name: String,
    /// `info` (default: every alert), `warn` (warnings and errors) or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "severity")]
    pub severity: Option<String>,
    /// The AlertProvider (in the Canary's namespace unless given).
    pub provider_ref: CrossNamespaceRef,
}

fn severity(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["", "info", "warn", "error"],
        "description": "Severity level can be info, warn, error (default info)"
    })
}
