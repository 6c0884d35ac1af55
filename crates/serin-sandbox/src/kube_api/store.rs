//! Object storage with the API server's write semantics: a global resourceVersion, generation,
//! status isolation, optimistic concurrency, finalizers, and a watch log.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::{error::ApiError, registry::ResourceDef};

/// How many watch events are kept for resuming watches; older versions get 410 Gone.
pub const LOG_CAPACITY: usize = 50_000;

/// A change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// `ADDED`, `MODIFIED`, `DELETED`.
    pub kind: &'static str,
    /// API group.
    pub group: String,
    /// Plural.
    pub plural: String,
    /// Namespace ("" for cluster-scoped).
    pub namespace: String,
    /// The object after the change.
    pub object: Arc<Value>,
}

/// Where an object lives.
type Bucket = BTreeMap<(String, String), Value>;

/// All objects, the version counter and the change log.
pub struct Store {
    objects: BTreeMap<(String, String), Bucket>,
    rv: u64,
    uid: u64,
    log: VecDeque<Arc<Change>>,
    /// Live changes.
    pub changes: broadcast::Sender<Arc<Change>>,
}

/// The current time as Kubernetes writes it.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn meta(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata is an object")
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    v
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(16_384);
        Store {
            objects: BTreeMap::new(),
            rv: 0,
            uid: 0,
            log: VecDeque::new(),
            changes,
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest version a watch can resume from.
    pub fn oldest_rv(&self) -> u64 {
        self.log.front().map_or(self.rv, |c| c.rv.saturating_sub(1))
    }

    /// Changes after `rv`.
    pub fn changes_since(&self, rv: u64) -> Vec<Arc<Change>> {
        self.log.iter().filter(|c| c.rv > rv).cloned().collect()
    }

    fn bucket(&self, def: &ResourceDef) -> Option<&Bucket> {
        self.objects.get(&(def.group.clone(), def.plural.clone()))
    }

    fn record(&mut self, kind: &'static str, def: &ResourceDef, namespace: &str, object: Value) -> Value {
        let change = Arc::new(Change {
            rv: self.rv,
            kind,
            group: def.group.clone(),
            plural: def.plural.clone(),
            namespace: namespace.to_owned(),
            object: Arc::new(object.clone()),
        });
        if self.log.len() >= LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(change.clone());
        let _ = self.changes.send(change);
        object
    }

    fn stamp(&mut self, obj: &mut Value, def: &ResourceDef) {
        self.rv += 1;
        let rv = self.rv;
        let m = meta(obj);
        m.insert("resourceVersion".into(), json!(rv.to_string()));
        obj["apiVersion"] = json!(def.api_version());
        obj["kind"] = json!(def.kind);
    }

    /// GET.
    pub fn get(&self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.bucket(def)
            .and_then(|b| b.get(&(namespace.to_owned(), name.to_owned())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&resource_name(def), name))
    }

    /// Objects of a resource, in one namespace or all (`None`).
    pub fn list(&self, def: &ResourceDef, namespace: Option<&str>) -> Vec<Value> {
        self.list_where(def, namespace, |_| true)
    }

    /// Objects that match `keep`, cloning only those (selectors run on references).
    pub fn list_where(&self, def: &ResourceDef, namespace: Option<&str>, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.bucket(def)
            .map(|b| {
                b.iter()
                    .filter(|((ns, _), v)| namespace.is_none_or(|n| n == ns) && keep(v))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a namespace exists.
    pub fn namespace_exists(&self, name: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".into()))
            .is_some_and(|b| b.contains_key(&(String::new(), name.to_owned())))
    }

    /// POST.
    pub fn create(&mut self, def: &ResourceDef, namespace: &str, mut obj: Value) -> Result<Value, ApiError> {
        let resource = resource_name(def);
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        if def.namespaced && !self.namespace_exists(namespace) {
            return Err(ApiError::not_found("namespaces", namespace));
        }
        let m = meta(&mut obj);
        let mut name = m.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if name.is_empty() {
            let prefix = m
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if prefix.is_empty() {
                return Err(ApiError::invalid(format!(
                    "{resource} is invalid: metadata.name: Required value: name or generateName is required"
                )));
            }
            name = format!("{prefix}{:05x}", self.uid + 1);
        }
        validate_name(&resource, &name)?;
        if let Some(given) = m.get("namespace").and_then(Value::as_str)
            && def.namespaced
            && given != namespace
        {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object ({given}) does not match the namespace sent on the request ({namespace})"
            )));
        }
        if self
            .bucket(def)
            .is_some_and(|b| b.contains_key(&(namespace.to_owned(), name.clone())))
        {
            return Err(ApiError::already_exists(&resource, &name));
        }
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(namespace));
        } else {
            m.remove("namespace");
        }
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        m.insert("generation".into(), json!(1));
        m.remove("deletionTimestamp");
        if def.status_subresource
            && def.custom
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
        if def.plural == "namespaces" {
            obj["status"] = json!({"phase": "Active"});
        }
        self.stamp(&mut obj, def);
        self.objects
            .entry((def.group.clone(), def.plural.clone()))
            .or_default()
            .insert((namespace.to_owned(), name), obj.clone());
        Ok(self.record("ADDED", def, namespace, obj))
    }

    /// PUT (`status`: the status subresource). Checks resourceVersion when the body has one.
    pub fn update(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        mut obj: Value,
        status: bool,
    ) -> Result<Value, ApiError> {
        let resource = resource_name(def);
        let old = self.get(def, namespace, name)?;
        if !obj.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        let given_rv = obj
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let current_rv = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if given_rv.as_deref().is_some_and(|rv| !rv.is_empty() && rv != current_rv) {
            return Err(ApiError::conflict(&resource, name));
        }
        if obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| n != name)
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object does not match the name on the URL ({name})"
            )));
        }
        let mut new = if status {
            // Only status changes through /status.
            let mut n = old.clone();
            match obj.get("status") {
                Some(s) => n["status"] = s.clone(),
                None => {
                    if let Some(o) = n.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            n
        } else {
            if def.status_subresource {
                match old.get("status") {
                    Some(s) => obj["status"] = s.clone(),
                    None => {
                        if let Some(o) = obj.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            // Fields the server owns.
            let old_meta = old.get("metadata").cloned().unwrap_or_default();
            let m = meta(&mut obj);
            for key in [
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "namespace",
            ] {
                match old_meta.get(key) {
                    Some(v) => {
                        m.insert(key.into(), v.clone());
                    }
                    None => {
                        m.remove(key);
                    }
                }
            }
            m.insert("name".into(), json!(name));
            obj
        };
        if spec_part(&new) != spec_part(&old) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1) + 1;
            meta(&mut new).insert("generation".into(), json!(generation));
        }
        if new == old {
            return Ok(old);
        }
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        self.stamp(&mut new, def);
        let key = (namespace.to_owned(), name.to_owned());
        if deleting && !finalizers_left {
            if let Some(b) = self.objects.get_mut(&(def.group.clone(), def.plural.clone())) {
                b.remove(&key);
            }
            return Ok(self.record("DELETED", def, namespace, new));
        }
        self.objects
            .entry((def.group.clone(), def.plural.clone()))
            .or_default()
            .insert(key, new.clone());
        Ok(self.record("MODIFIED", def, namespace, new))
    }

    /// DELETE: with finalizers, marks the object; without, removes it.
    pub fn delete(&mut self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let mut obj = self.get(def, namespace, name)?;
        let has_finalizers = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(obj);
            }
            meta(&mut obj).insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
            self.stamp(&mut obj, def);
            self.objects
                .entry((def.group.clone(), def.plural.clone()))
                .or_default()
                .insert((namespace.to_owned(), name.to_owned()), obj.clone());
            return Ok(self.record("MODIFIED", def, namespace, obj));
        }
        if let Some(b) = self.objects.get_mut(&(def.group.clone(), def.plural.clone())) {
            b.remove(&(namespace.to_owned(), name.to_owned()));
        }
        self.stamp(&mut obj, def);
        Ok(self.record("DELETED", def, namespace, obj))
    }

    /// Every (group, plural, namespace, name) in a namespace, for cascading namespace deletion.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for ((group, plural), bucket) in &self.objects {
            for (ns, name) in bucket.keys() {
                if ns == namespace {
                    out.push((group.clone(), plural.clone(), name.clone()));
                }
            }
        }
        out
    }
}

/// `plural.group` (or `plural` for core), as error messages name resources.
pub fn resource_name(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.plural.clone()
    } else {
        format!("{}.{}", def.plural, def.group)
    }
}

fn validate_name(resource: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )))
    }
}
