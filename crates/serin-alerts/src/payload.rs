//! Each provider's JSON body, field for field as Flagger sends it (`pkg/notifier`), plus the
//! Adaptive Card that Microsoft Teams' Workflows webhooks (which replaced connectors) accept.

use serde_json::{Value, json};
use serin_core::{Alert, AlertSeverity};

use crate::{ProviderKind, Target};

/// What an alert is about: the Canary's `name.namespace`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Canary name.
    pub name: String,
    /// Canary namespace.
    pub namespace: String,
}

impl Subject {
    fn id(&self) -> String {
        format!("{}.{}", self.name, self.namespace)
    }
}

/// Slack's attachment format, shared by Slack, Discord and Rocket.Chat (colours differ).
fn slack_like(target: &Target, subject: &Subject, alert: &Alert, color: &str) -> Value {
    let fields: Vec<Value> = alert
        .fields
        .iter()
        .map(|(title, value)| json!({"title": title, "value": value, "short": false}))
        .collect();
    json!({
        "channel": target.channel,
        "username": target.username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [{
            "color": color,
            "author_name": subject.id(),
            "text": alert.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}

/// A legacy Office 365 connector URL (MessageCard); anything else is a Workflows webhook.
pub fn is_teams_connector(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h.ends_with("webhook.office.com") || h == "outlook.office.com")
}

/// The body for `target`.
pub fn body(target: &Target, subject: &Subject, alert: &Alert) -> Value {
    let error = alert.severity == AlertSeverity::Error;
    match target.kind {
        ProviderKind::Slack | ProviderKind::Discord => {
            slack_like(target, subject, alert, if error { "danger" } else { "good" })
        }
        ProviderKind::Rocket => slack_like(target, subject, alert, if error { "#FF0000" } else { "#0076D7" }),
        ProviderKind::MsTeams if is_teams_connector(&target.url) => {
            let facts: Vec<Value> = alert
                .fields
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "themeColor": if error { "FF0000" } else { "0076D7" },
                "summary": subject.id(),
                "sections": [{
                    "activityTitle": alert.message,
                    "activitySubtitle": subject.id(),
                    "facts": facts,
                }],
            })
        }
        ProviderKind::MsTeams => {
            let facts: Vec<Value> = alert
                .fields
                .iter()
                .map(|(title, value)| json!({"title": title, "value": value}))
                .collect();
            let mut title =
                json!({"type": "TextBlock", "text": alert.message, "weight": "Bolder", "size": "Medium", "wrap": true});
            if error {
                title["color"] = json!("Attention");
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            title,
                            {"type": "TextBlock", "text": subject.id(), "isSubtle": true, "wrap": true},
                            {"type": "FactSet", "facts": facts},
                        ],
                    },
                }],
            })
        }
        ProviderKind::GChat => {
            let mut sections = vec![json!({"widgets": [{"textParagraph": {
                "text": format!("<font color=#848484><strong>{}</strong></font>", alert.message)
            }}]})];
            sections.extend(alert.fields.iter().map(|(name, value)| {
                json!({"widgets": [{"textParagraph": {
                    "text": format!("{name}<br><font color=#848484><strong>{value}</strong></font>")
                }}]})
            }));
            json!({"cards": [{
                "header": {"title": "Flagger", "subtitle": subject.id(), "imageUrl": "https://flagger.app/favicon.png"},
                "sections": sections,
            }]})
        }
    }
}
