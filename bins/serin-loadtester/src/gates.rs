//! Gate state (`/gate/*`, `/rollback/*`): in memory, in a JSON file (a loadtester run locally or
//! on an emptyDir), or in a ConfigMap (survives a new pod, shared by replicas).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ObjectMeta, PostParams},
};
use tokio::sync::Mutex;

/// Errors reading or writing gate state.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The file could not be read or written.
    #[error("gate state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JSON object of booleans.
    #[error("gate state file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The Kubernetes API refused or failed.
    #[error("gate ConfigMap {name}: {source}")]
    Api {
        /// The ConfigMap.
        name: String,
        /// The error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Other writers kept winning.
    #[error("gate ConfigMap {0}: still conflicting after {CONFLICT_RETRIES} attempts")]
    Conflict(String),
}

/// Attempts of a guarded ConfigMap update before giving up.
pub const CONFLICT_RETRIES: usize = 20;

/// Gates by key (`{name}.{namespace}`, `rollback.{name}.{namespace}`): open or closed.
pub enum GateStore {
    /// In memory, optionally persisted to a file.
    Local {
        /// The file, if any.
        path: Option<PathBuf>,
        /// The gates.
        gates: Mutex<BTreeMap<String, bool>>,
    },
    /// In a ConfigMap's `data` (`"true"` / `"false"`), every change a write guarded by the
    /// ConfigMap's resourceVersion, retried on conflict.
    ConfigMap {
        /// The ConfigMaps of the namespace.
        api: Box<Api<ConfigMap>>,
        /// The ConfigMap's name.
        name: String,
        /// Serializes this process's writers, so conflicts come only from other processes.
        writing: Mutex<()>,
    },
}

impl GateStore {
    /// A store that lives in memory only.
    pub fn in_memory() -> Self {
        GateStore::Local {
            path: None,
            gates: Mutex::new(BTreeMap::new()),
        }
    }

    /// A store persisted at `path`, loading what is there.
    pub fn open(path: &Path) -> Result<Self, GateError> {
        let gates = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| GateError::Corrupt {
                path: path.to_owned(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(GateError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        Ok(GateStore::Local {
            path: Some(path.to_owned()),
            gates: Mutex::new(gates),
        })
    }

    /// A store in the ConfigMap `name` of `namespace` (created on the first change).
    pub fn config_map(client: kube::Client, namespace: &str, name: &str) -> Self {
        GateStore::ConfigMap {
            api: Box::new(Api::namespaced(client, namespace)),
            name: name.to_owned(),
            writing: Mutex::new(()),
        }
    }

    /// Whether the gate is open; unknown gates are closed.
    pub async fn is_open(&self, key: &str) -> Result<bool, GateError> {
        match self {
            GateStore::Local { gates, .. } => Ok(gates.lock().await.get(key).copied().unwrap_or(false)),
            GateStore::ConfigMap { api, name, .. } => {
                let map = api.get_opt(name).await.map_err(|e| api_error(name, e))?;
                Ok(map
                    .and_then(|m| m.data)
                    .and_then(|d| d.get(key).map(|v| v == "true"))
                    .unwrap_or(false))
            }
        }
    }

    /// Opens or closes a gate and persists the change before returning.
    pub async fn set(&self, key: &str, open: bool) -> Result<(), GateError> {
        match self {
            GateStore::Local { path, gates } => {
                let mut gates = gates.lock().await;
                gates.insert(key.to_owned(), open);
                match path {
                    Some(path) => write_file(path, &gates).await,
                    None => Ok(()),
                }
            }
            GateStore::ConfigMap { api, name, writing } => {
                let _one_at_a_time = writing.lock().await;
                set_in_config_map(api, name, key, open).await
            }
        }
    }
}

fn api_error(name: &str, e: kube::Error) -> GateError {
    GateError::Api {
        name: name.to_owned(),
        source: Box::new(e),
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

async fn set_in_config_map(api: &Api<ConfigMap>, name: &str, key: &str, open: bool) -> Result<(), GateError> {
    for attempt in 0..CONFLICT_RETRIES {
        if attempt > 0 {
            // Another replica won the write: let it finish before reading again.
            tokio::time::sleep(std::time::Duration::from_millis(5 * attempt as u64)).await;
        }
        let written = match api.get_opt(name).await.map_err(|e| api_error(name, e))? {
            None => {
                let map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.to_owned()),
                        labels: Some(BTreeMap::from([(
                            "app.kubernetes.io/managed-by".to_owned(),
                            "serin-loadtester".to_owned(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    data: Some(BTreeMap::from([(key.to_owned(), open.to_string())])),
                    ..ConfigMap::default()
                };
                api.create(&PostParams::default(), &map).await
            }
            Some(mut map) => {
                if map.data.as_ref().and_then(|d| d.get(key)).map(String::as_str) == Some(&open.to_string()) {
                    return Ok(());
                }
                map.data
                    .get_or_insert_default()
                    .insert(key.to_owned(), open.to_string());
                // `replace` sends the resourceVersion read above: a concurrent change is a 409.
                api.replace(name, &PostParams::default(), &map).await
            }
        };
        match written {
            Ok(_) => return Ok(()),
            Err(e) if is_conflict(&e) => continue,
            Err(e) => return Err(api_error(name, e)),
        }
    }
    Err(GateError::Conflict(name.to_owned()))
}

async fn write_file(path: &Path, gates: &BTreeMap<String, bool>) -> Result<(), GateError> {
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(gates).map_err(|source| GateError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    tokio::fs::write(&tmp, bytes).await.map_err(|source| GateError::Io {
        path: tmp.clone(),
        source,
    })?;
    tokio::fs::rename(&tmp, path).await.map_err(|source| GateError::Io {
        path: path.to_owned(),
        source,
    })
}
