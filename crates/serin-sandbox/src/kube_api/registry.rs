//! The resources the emulator serves: built-ins, and those registered by applying a CRD.

use serde_json::{Value, json};

/// A printer column of a CRD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, …).
    pub type_: String,
    /// JSON path, e.g. `.status.phase`.
    pub json_path: String,
    /// 0 = shown by default; higher only with `-o wide`.
    pub priority: i64,
}

/// One served resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural (URL segment).
    pub plural: String,
    /// Singular.
    pub singular: String,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Has a `/status` subresource.
    pub status_subresource: bool,
    /// A custom resource (strategic merge patch refused).
    pub custom: bool,
    /// Printer columns (CRDs only).
    pub columns: Vec<PrinterColumn>,
    /// The version's `openAPIV3Schema` (CRDs only): objects are pruned, defaulted and validated
    /// against it.
    pub schema: Option<std::sync::Arc<Value>>,
}

impl ResourceDef {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short: &[&str],
        status: bool,
    ) -> Self {
        ResourceDef {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: short.iter().map(|s| (*s).to_owned()).collect(),
            categories: Vec::new(),
            namespaced,
            status_subresource: status,
            custom: false,
            columns: Vec::new(),
            schema: None,
        }
    }

    /// The APIResource entries of discovery (the resource and its status subresource).
    pub fn discovery(&self) -> Vec<Value> {
        let verbs = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.status_subresource {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "", "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        out
    }
}

/// The built-in resources.
pub fn builtins() -> Vec<ResourceDef> {
    vec![
        ResourceDef::builtin("", "v1", "Namespace", "namespaces", false, &["ns"], true),
        ResourceDef::builtin("", "v1", "Event", "events", true, &["ev"], false),
        ResourceDef::builtin("", "v1", "ConfigMap", "configmaps", true, &["cm"], false),
        ResourceDef::builtin("", "v1", "Secret", "secrets", true, &[], false),
        ResourceDef::builtin("", "v1", "ServiceAccount", "serviceaccounts", true, &["sa"], false),
        ResourceDef::builtin("", "v1", "Service", "services", true, &["svc"], true),
        ResourceDef::builtin("apps", "v1", "Deployment", "deployments", true, &["deploy"], true),
        ResourceDef::builtin("events.k8s.io", "v1", "Event", "events", true, &["ev"], false),
        ResourceDef::builtin("coordination.k8s.io", "v1", "Lease", "leases", true, &[], false),
        ResourceDef::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
        ),
        ResourceDef::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
        ),
        ResourceDef::builtin("rbac.authorization.k8s.io", "v1", "Role", "roles", true, &[], false),
        ResourceDef::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            &[],
            false,
        ),
        ResourceDef::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
        ),
    ]
}

/// The resources a CRD object declares (one per served version).
pub fn from_crd(crd: &Value) -> Result<Vec<ResourceDef>, String> {
    let spec = crd.get("spec").ok_or("CRD has no spec")?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let group = s(spec, "group").ok_or("spec.group is required")?;
    let names = spec.get("names").ok_or("spec.names is required")?;
    let plural = s(names, "plural").ok_or("spec.names.plural is required")?;
    let kind = s(names, "kind").ok_or("spec.names.kind is required")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let namespaced = s(spec, "scope").as_deref() != Some("Cluster");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or("spec.versions is required")?;
    let mut out = Vec::new();
    for v in versions {
        if v.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let version = s(v, "name").ok_or("spec.versions[].name is required")?;
        let columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: s(c, "name").unwrap_or_default(),
                        type_: s(c, "type").unwrap_or_else(|| "string".into()),
                        json_path: s(c, "jsonPath").unwrap_or_default(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ResourceDef {
            group: group.clone(),
            version,
            kind: kind.clone(),
            plural: plural.clone(),
            singular: s(names, "singular").unwrap_or_else(|| kind.to_lowercase()),
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            namespaced,
            status_subresource: v.pointer("/subresources/status").is_some(),
            custom: true,
            columns,
            schema: v.pointer("/schema/openAPIV3Schema").cloned().map(std::sync::Arc::new),
        });
    }
    if out.is_empty() {
        return Err("the CRD serves no version".into());
    }
    Ok(out)
}
