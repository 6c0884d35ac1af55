//! Where an alert goes: a provider type and its hook, resolved from an `AlertProvider` (or the
//! controller's global notifier flags) by the caller.

use std::fmt;

/// Flagger's alert provider types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// Slack incoming webhook.
    Slack,
    /// Microsoft Teams: a legacy connector (MessageCard) or a Workflows webhook (Adaptive Card).
    MsTeams,
    /// Discord, through its Slack-compatible endpoint.
    Discord,
    /// Rocket.Chat incoming webhook.
    Rocket,
    /// Google Chat webhook.
    GChat,
}

impl ProviderKind {
    /// The `spec.type` of an AlertProvider.
    pub fn parse(kind: &str) -> Option<Self> {
        Some(match kind {
            "slack" => ProviderKind::Slack,
            "msteams" => ProviderKind::MsTeams,
            "discord" => ProviderKind::Discord,
            "rocket" => ProviderKind::Rocket,
            "gchat" => ProviderKind::GChat,
            _ => return None,
        })
    }

    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Slack => "slack",
            ProviderKind::MsTeams => "msteams",
            ProviderKind::Discord => "discord",
            ProviderKind::Rocket => "rocket",
            ProviderKind::GChat => "gchat",
        }
    }
}

/// Why a target cannot be built (Flagger's texts, without the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not a provider type Flagger knows.
    #[error("provider {0} not supported")]
    UnknownKind(String),
    /// The hook address is not an absolute http(s) URL.
    #[error("invalid {0} hook URL")]
    Address(&'static str),
    /// The proxy is not a URL.
    #[error("unable to parse proxy URL")]
    Proxy,
}

/// A resolved alert destination. `Debug` shows no URL, proxy or token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// Provider type.
    pub kind: ProviderKind,
    /// A name for reports and rate limits (`AlertProvider` `namespace/name`, or `global`).
    pub name: String,
    /// Hook URL (a secret: Slack's and Teams' URLs carry the credential).
    pub url: String,
    /// Bearer token, sent as `Authorization` (Slack).
    pub token: Option<String>,
    /// HTTP(S) proxy URL.
    pub proxy: Option<String>,
    /// Bot user name (Slack, Discord, Rocket.Chat; Flagger's default `flagger`).
    pub username: String,
    /// Channel (Slack, Discord, Rocket.Chat; Flagger's default `general`).
    pub channel: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target with Flagger's defaults (`flagger`, `general`), checked as Flagger checks it;
    /// Discord's URL gets its `/slack` suffix.
    pub fn new(kind: &str, name: &str, url: &str) -> Result<Target, TargetError> {
        let kind = ProviderKind::parse(kind).ok_or_else(|| TargetError::UnknownKind(kind.to_owned()))?;
        let parsed = reqwest::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or(TargetError::Address(match kind {
                ProviderKind::Slack => "Slack",
                ProviderKind::MsTeams => "MS Teams webhook",
                ProviderKind::Discord => "Discord",
                ProviderKind::Rocket => "Rocket",
                ProviderKind::GChat => "Google Chat webhook",
            }))?;
        let mut url = url.trim().to_owned();
        if kind == ProviderKind::Discord && !parsed.path().ends_with("/slack") {
            let mut with_suffix = parsed.clone();
            with_suffix.set_path(&format!("{}/slack", parsed.path().trim_end_matches('/')));
            url = with_suffix.to_string();
        }
        Ok(Target {
            kind,
            name: name.to_owned(),
            url,
            token: None,
            proxy: None,
            username: "flagger".into(),
            channel: "general".into(),
        })
    }

    /// Sets a proxy, checked.
    pub fn with_proxy(mut self, proxy: Option<&str>) -> Result<Target, TargetError> {
        if let Some(p) = proxy.map(str::trim).filter(|p| !p.is_empty()) {
            reqwest::Url::parse(p).map_err(|_| TargetError::Proxy)?;
            self.proxy = Some(p.to_owned());
        }
        Ok(self)
    }
}
