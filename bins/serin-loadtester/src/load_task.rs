//! The `load` task type, Serin's typed alternative to a hey command line: `url`, `duration`,
//! `qps` (total), `concurrency`, `method`, `headers` (`K: V` lines), `body`.

use crate::hey::LoadSpec;

/// `type: load` metadata: `url`, `duration`, `qps` (total), `concurrency`, `method`,
/// `headers` (`K: V` lines), `body`.
pub fn from_metadata(meta: &std::collections::BTreeMap<String, String>) -> Result<LoadSpec, String> {
    let url = meta.get("url").ok_or("url not found in metadata")?.clone();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(format!("url {url:?}: only http:// and https:// targets are supported"));
    }
    let duration = humantime::parse_duration(meta.get("duration").map(String::as_str).unwrap_or("1m"))
        .map_err(|e| format!("duration: {e}"))?;
    let workers: usize = meta
        .get("concurrency")
        .map(|c| c.parse())
        .transpose()
        .map_err(|_| "concurrency is not a number")?
        .unwrap_or(1);
    if workers == 0 || workers > 10_000 {
        return Err("concurrency must be between 1 and 10000".into());
    }
    let qps: Option<f64> = meta
        .get("qps")
        .map(|q| q.parse())
        .transpose()
        .map_err(|_| "qps is not a number")?;
    let mut headers = Vec::new();
    for line in meta
        .get("headers")
        .map(String::as_str)
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("header {line:?} is not \"Key: Value\""))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(LoadSpec {
        url,
        duration: Some(duration),
        requests: None,
        qps_per_worker: qps.filter(|q| *q > 0.0).map(|q| q / workers as f64),
        workers,
        method: meta
            .get("method")
            .cloned()
            .unwrap_or_else(|| "GET".into())
            .to_uppercase(),
        headers,
        body: meta.get("body").cloned(),
        content_type: None,
        ..LoadSpec::default()
    })
}
