//! Flagger's loadtester command line (Go `flag` syntax: `-port=8080`, `-timeout 1h`,
//! `-log-level=info`, `-namespace-regexp=…`, `-zap-…`), rewritten into this binary's flags, so a
//! Flagger tester manifest needs only its image swapped.
//!
//! `-namespace-regexp` keeps Go's meaning (a match anywhere in the namespace; `--namespace-regexp`
//! matches the whole namespace), `-log-level=warning` becomes `warn`, and the `-zap-…` logger
//! flags are accepted and ignored (logs are tracing's).

/// Flagger's flags that take a value.
const VALUED: [&str; 5] = ["port", "timeout", "log-level", "namespace-regexp", "zap-encoding"];
/// Flagger's boolean flags.
const BOOLEAN: [&str; 1] = ["zap-replace-globals"];

/// One Flagger flag's translation.
fn translate(name: &str, value: &str) -> Option<String> {
    Some(match name {
        "port" | "timeout" => format!("--{name}={value}"),
        "log-level" => format!("--log-level={}", if value == "warning" { "warn" } else { value }),
        // Go's MatchString finds a match anywhere; this binary's flag matches the whole string.
        "namespace-regexp" => format!("--namespace-regexp=.*(?:{value}).*"),
        _ => return None,
    })
}

/// Rewrites Flagger's Go-style flags in `args` (without the program name); anything else is kept
/// as it is, so this binary's own flags still work.
pub fn rewrite(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--zap-…` (Go accepts two dashes too) is dropped; other `--flags` are this binary's.
        let single = arg.strip_prefix('-').filter(|f| !f.starts_with('-') && f.len() > 1);
        let double = arg.strip_prefix("--");
        let flag = match (single, double) {
            (Some(f), _) => f,
            (None, Some(f)) if f.starts_with("zap-") => f,
            _ => {
                out.push(arg);
                continue;
            }
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        };
        if BOOLEAN.contains(&name.as_str()) {
            continue;
        }
        if !VALUED.contains(&name.as_str()) {
            out.push(arg);
            continue;
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            out.push(arg);
            continue;
        };
        out.extend(translate(&name, &value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[&str]) -> Vec<String> {
        rewrite(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn flaggers_tester_manifest_arguments_translate() {
        assert_eq!(
            words(&["-port=8080", "-log-level=info", "-timeout=1h"]),
            ["--port=8080", "--log-level=info", "--timeout=1h"]
        );
        assert_eq!(
            words(&["-port", "8080", "-timeout", "30m", "-log-level", "warning"]),
            ["--port=8080", "--timeout=30m", "--log-level=warn"]
        );
        assert_eq!(
            words(&["-namespace-regexp=^prod-"]),
            ["--namespace-regexp=.*(?:^prod-).*"]
        );
        assert_eq!(
            words(&["-zap-replace-globals", "-zap-encoding=console", "-port=9090"]),
            ["--port=9090"]
        );
    }

    #[test]
    fn this_binarys_own_flags_pass_through() {
        assert_eq!(
            words(&[
                "--port",
                "9090",
                "--allow-shell",
                "run",
                "-z",
                "10s",
                "-c",
                "2",
                "http://x/"
            ]),
            [
                "--port",
                "9090",
                "--allow-shell",
                "run",
                "-z",
                "10s",
                "-c",
                "2",
                "http://x/"
            ]
        );
        assert_eq!(words(&["--timeout=2h"]), ["--timeout=2h"]);
        assert_eq!(words(&["--namespace-regexp=^a$"]), ["--namespace-regexp=^a$"]);
        assert_eq!(words(&["--zap-encoding", "json", "--port=1"]), ["--port=1"]);
    }
}
