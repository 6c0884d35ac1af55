//! Parses `wrk` command lines (`wrk -t2 -c10 -d30s -H 'K: V' --timeout 2s --latency URL`) into a
//! load spec, so hooks written for wrk run natively. A `-s` Lua script is refused: it needs the
//! real wrk, under `--allow-shell`.

use std::time::Duration;

use crate::{
    hey::{CommandError, LoadSpec},
    report::{Style, WrkView},
};

fn bad(flag: &str, problem: impl Into<String>) -> CommandError {
    CommandError::BadValue {
        flag: flag.to_owned(),
        problem: problem.into(),
    }
}

/// wrk's `scan_metric`: a number with an optional `k`, `M`, `G` suffix.
fn metric(flag: &str, text: &str) -> Result<u64, CommandError> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let base: u64 = digits
        .parse()
        .map_err(|_| bad(flag, format!("{text:?} is not a number")))?;
    let scale: u64 = match &text[digits.len()..].to_ascii_lowercase()[..] {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        unit => return Err(bad(flag, format!("unknown unit {unit:?}"))),
    };
    Ok(base.saturating_mul(scale))
}

/// wrk's `scan_time`: seconds, or a number with `s`, `m`, `h`.
fn seconds(flag: &str, text: &str) -> Result<u64, CommandError> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let base: u64 = digits
        .parse()
        .map_err(|_| bad(flag, format!("{text:?} is not a duration")))?;
    let scale = match &text[digits.len()..].to_ascii_lowercase()[..] {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        unit => return Err(bad(flag, format!("unknown unit {unit:?}"))),
    };
    Ok(base.saturating_mul(scale))
}

/// Parses wrk's arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<LoadSpec, CommandError> {
    let (mut threads, mut connections, mut duration, mut timeout) = (2u64, 10u64, 10u64, 2u64);
    let mut latency = false;
    let mut headers = Vec::new();
    let mut urls = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            // getopt: `-t2` is `-t 2`.
            let (flag, rest) = short.split_at(1);
            (flag.to_owned(), (!rest.is_empty()).then(|| rest.to_owned()))
        } else {
            urls.push(arg.clone());
            continue;
        };
        let flag = format!("{}{name}", if name.len() == 1 { "-" } else { "--" });
        let mut value = || {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| CommandError::MissingValue(flag.clone()))
        };
        match name.as_str() {
            "t" | "threads" => threads = metric(&flag, &value()?)?,
            "c" | "connections" => connections = metric(&flag, &value()?)?,
            "d" | "duration" => duration = seconds(&flag, &value()?)?,
            "T" | "timeout" => timeout = seconds(&flag, &value()?)?,
            "H" | "header" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| bad(&flag, format!("{v:?} is not \"Key: Value\"")))?;
                headers.push((k.trim().to_owned(), val.trim().to_owned()));
            }
            "L" | "latency" => latency = true,
            "s" | "script" => {
                return Err(CommandError::NotNative {
                    flag: "wrk -s".into(),
                    why: "Lua scripts need the real wrk",
                });
            }
            _ => return Err(CommandError::UnknownFlag(format!("wrk {flag}"))),
        }
    }
    if urls.len() != 1 {
        return Err(CommandError::Url(urls.len()));
    }
    let url = urls.remove(0);
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(bad("URL", format!("{url:?}: not an http:// or https:// URL")));
    }
    if threads == 0 || duration == 0 {
        return Err(bad("-t/-d", "threads and duration must be positive"));
    }
    if connections < threads {
        return Err(bad("-c", "number of connections must be >= threads"));
    }
    if connections > 10_000 {
        return Err(bad("-c", "must be at most 10000"));
    }
    let workers = usize::try_from(connections).unwrap_or(10_000);
    Ok(LoadSpec {
        url: url.clone(),
        duration: Some(Duration::from_secs(duration)),
        requests: None,
        workers,
        headers,
        timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
        style: Style::Wrk(WrkView {
            url,
            threads: usize::try_from(threads).unwrap_or(1),
            connections: workers,
            duration_secs: duration,
            latency,
        }),
        ..LoadSpec::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn short_long_and_attached_forms_parse() {
        let spec = parse_args(&args(
            "-t2 -c 50 --duration=1m --timeout 5s --latency -H X-A:b http://x.test/",
        ))
        .expect("valid");
        assert_eq!(spec.workers, 50);
        assert_eq!(spec.duration, Some(Duration::from_secs(60)));
        assert_eq!(spec.timeout, Some(Duration::from_secs(5)));
        assert_eq!(spec.headers, vec![("X-A".into(), "b".into())]);
        let Style::Wrk(view) = spec.style else {
            panic!("wrk style expected")
        };
        assert!(view.latency);
        assert_eq!(view.threads, 2);
    }

    #[test]
    fn defaults_are_wrks() {
        let spec = parse_args(&args("http://x.test/")).expect("valid");
        assert_eq!(spec.workers, 10);
        assert_eq!(spec.duration, Some(Duration::from_secs(10)));
        assert_eq!(spec.timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn refusals_say_why() {
        let cases = [
            (
                "-s post.lua http://x",
                "wrk -s is not run natively (Lua scripts need the real wrk)",
            ),
            ("-t 4 -c 2 http://x", "number of connections must be >= threads"),
            ("-d 1y http://x", "unknown unit \"y\""),
            ("-z 1 http://x", "unsupported flag wrk -z"),
            ("-c 10", "expected exactly one URL, found 0"),
        ];
        for (line, expected) in cases {
            let err = parse_args(&args(line)).expect_err(line).to_string();
            assert!(err.contains(expected), "{line}: {err}");
        }
    }
}
