//! Running a program for a task (only with `--allow-shell`): in its own process group, killed
//! with the whole group when it outlives the timeout or when its caller goes away, its output
//! bounded.

use std::{process::Stdio, time::Duration};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::{
    io::{AsyncRead, AsyncReadExt},
    process::Command,
};

/// Output kept from each of stdout and stderr; the rest is read and dropped.
pub const OUTPUT_LIMIT: u64 = 1024 * 1024;

/// How a program failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessError {
    /// It could not start (not installed, say).
    #[error("cannot start {program}: {reason}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// It ran longer than the timeout; its process group was killed.
    #[error("timed out after {0}; its process group was killed")]
    TimedOut(String),
    /// It exited unsuccessfully.
    #[error("{output}: {status}")]
    Failed {
        /// stdout then stderr.
        output: String,
        /// The exit status.
        status: String,
    },
}

/// Kills a process group when dropped, unless disarmed.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // The group may be gone already: nothing to do then.
            let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

async fn read_bounded(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let _ = (&mut pipe).take(OUTPUT_LIMIT).read_to_end(&mut kept).await;
    let _ = tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await;
    kept
}

/// Runs `program` with `args`; returns stdout followed by stderr (as Go's `CombinedOutput`
/// returns both), or why it failed.
pub async fn run(program: &str, args: &[String], timeout: Duration) -> Result<String, ProcessError> {
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ProcessError::Start {
            program: program.to_owned(),
            reason: e.to_string(),
        })?;
    let mut guard = GroupGuard(child.id().and_then(|id| i32::try_from(id).ok()));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (out, err, status) = tokio::join!(
            async {
                match stdout {
                    Some(pipe) => read_bounded(pipe).await,
                    None => Vec::new(),
                }
            },
            async {
                match stderr {
                    Some(pipe) => read_bounded(pipe).await,
                    None => Vec::new(),
                }
            },
            child.wait()
        );
        (out, err, status)
    };
    let (out, err, status) = tokio::time::timeout(timeout, finished)
        .await
        .map_err(|_| ProcessError::TimedOut(humantime::format_duration(timeout).to_string()))?;
    // Exited: background children it left behind are its own business, as under Flagger.
    guard.0 = None;
    let output = format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    match status {
        Ok(s) if s.success() => Ok(output),
        Ok(s) => Err(ProcessError::Failed {
            output: output.trim().to_owned(),
            status: s.to_string(),
        }),
        Err(e) => Err(ProcessError::Failed {
            output: output.trim().to_owned(),
            status: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_and_failures_are_reported() {
        let ok = run(
            "sh",
            &["-c".into(), "echo out; echo err >&2".into()],
            Duration::from_secs(10),
        )
        .await
        .expect("runs");
        assert_eq!(ok, "out\nerr\n");
        let failed = run(
            "sh",
            &["-c".into(), "echo nope; exit 3".into()],
            Duration::from_secs(10),
        )
        .await
        .expect_err("exit 3");
        assert_eq!(failed.to_string(), "nope: exit status: 3");
        let missing = run("no-such-program-here", &[], Duration::from_secs(10))
            .await
            .expect_err("missing");
        assert!(matches!(missing, ProcessError::Start { .. }), "{missing}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("serin-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let marker = dir.join("grandchild-pid");
        // The grandchild outlives its shell unless its group is killed.
        let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let err = run("sh", &["-c".into(), script], Duration::from_millis(500))
            .await
            .expect_err("times out");
        assert!(matches!(err, ProcessError::TimedOut(_)), "{err}");
        let pid: i32 = std::fs::read_to_string(&marker)
            .expect("the grandchild started")
            .trim()
            .parse()
            .expect("a pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        // Signal 0 probes for existence; a killed, reaped process answers ESRCH. A zombie still
        // answers, so look at its state too.
        let alive = || {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !state.is_empty() && !state.contains(") Z")
        };
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the grandchild {pid} survived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
