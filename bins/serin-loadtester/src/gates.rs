//! Gate state (`/gate/*`, `/rollback/*`), kept in a JSON file so it survives restarts.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use tokio::sync::Mutex;

/// Errors reading or writing the state file.
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
}

/// Gates by key (`{name}.{namespace}`, `rollback.{name}.{namespace}`): open or closed.
#[derive(Debug)]
pub struct GateStore {
    path: Option<PathBuf>,
    gates: Mutex<BTreeMap<String, bool>>,
}

impl GateStore {
    /// A store that lives in memory only.
    pub fn in_memory() -> Self {
        GateStore {
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
        Ok(GateStore {
            path: Some(path.to_owned()),
            gates: Mutex::new(gates),
        })
    }

    /// Whether the gate is open; unknown gates are closed.
    pub async fn is_open(&self, key: &str) -> bool {
        self.gates.lock().await.get(key).copied().unwrap_or(false)
    }

    /// Opens or closes a gate and persists the change before returning.
    pub async fn set(&self, key: &str, open: bool) -> Result<(), GateError> {
        let mut gates = self.gates.lock().await;
        gates.insert(key.to_owned(), open);
        if let Some(path) = &self.path {
            let tmp = path.with_extension("tmp");
            let bytes = serde_json::to_vec_pretty(&*gates).map_err(|source| GateError::Corrupt {
                path: path.clone(),
                source,
            })?;
            tokio::fs::write(&tmp, bytes).await.map_err(|source| GateError::Io {
                path: tmp.clone(),
                source,
            })?;
            tokio::fs::rename(&tmp, path).await.map_err(|source| GateError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}
