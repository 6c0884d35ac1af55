//! Parses `hey` command lines (`hey -z 1m -q 5 -c 2 http://podinfo.test`) into a load spec,
//! so the tutorial's `cmd` webhooks run natively, without a `hey` binary or a shell; `wrk`
//! command lines go to [`crate::wrk`].

use std::time::Duration;

use base64::Engine;

use crate::report::Style;

/// What to send, how fast, for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Target URL (`http://` or `https://`).
    pub url: String,
    /// Run for this long (`-z`); takes precedence over `requests`.
    pub duration: Option<Duration>,
    /// Total requests (`-n`, default 200 when no `-z`).
    pub requests: Option<u64>,
    /// Requests per second per worker (`-q`); `None` = as fast as possible.
    pub qps_per_worker: Option<f64>,
    /// Concurrent workers (`-c`, default 50).
    pub workers: usize,
    /// HTTP method (`-m`, default GET).
    pub method: String,
    /// Extra headers (`-H "K: V"`).
    pub headers: Vec<(String, String)>,
    /// Request body (`-d`).
    pub body: Option<String>,
    /// Content type (`-T`).
    pub content_type: Option<String>,
    /// Per-request timeout (`-t` seconds, default 20; 0 = none).
    pub timeout: Option<Duration>,
    /// Connect here (`host:port`) instead of the URL's host, keeping the URL's `Host` header
    /// (like curl's `--connect-to`); the sandbox uses it to reach `*.test` hosts.
    pub connect_to: Option<String>,
    /// Reuse connections (hey's default; `-disable-keepalive` turns it off).
    pub keep_alive: bool,
    /// An HTTP proxy's `host:port` (`-x`).
    pub proxy: Option<String>,
    /// Offer HTTP/2 over TLS (`-h2`).
    pub h2: bool,
    /// How the summary is printed: as hey or as wrk.
    pub style: Style,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            url: String::new(),
            duration: None,
            requests: Some(200),
            qps_per_worker: None,
            workers: 50,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            content_type: None,
            timeout: Some(Duration::from_secs(20)),
            connect_to: None,
            keep_alive: true,
            proxy: None,
            h2: false,
            style: Style::Hey,
        }
    }
}

/// Why a command is not a hey or wrk command line the native generator runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Quotes do not balance.
    #[error("cannot split the command line (unbalanced quotes)")]
    Quoting,
    /// The program is neither hey nor wrk.
    #[error("not a hey or wrk command: {0:?}")]
    NotNativeProgram(String),
    /// A flag needs a value.
    #[error("flag {0} needs a value")]
    MissingValue(String),
    /// A flag's value is wrong.
    #[error("flag {flag}: {problem}")]
    BadValue {
        /// The flag.
        flag: String,
        /// What is wrong.
        problem: String,
    },
    /// Unknown flag.
    #[error("unsupported flag {0}")]
    UnknownFlag(String),
    /// A flag the native generator does not run; the real tool can, under `--allow-shell`.
    #[error(
        "{flag} is not run natively ({why}); run the loadtester with --allow-shell (deploy/tester-tools) to run it"
    )]
    NotNative {
        /// The flag.
        flag: String,
        /// Why not.
        why: &'static str,
    },
    /// No URL, or more than one.
    #[error("expected exactly one URL, found {0}")]
    Url(usize),
}

fn bad(flag: &str, problem: impl Into<String>) -> CommandError {
    CommandError::BadValue {
        flag: flag.to_owned(),
        problem: problem.into(),
    }
}

/// hey's flags that only the real hey runs, and why.
const NOT_NATIVE: [(&str, &str); 2] = [
    ("D", "a webhook does not get to read the loadtester's files"),
    ("o", "the native generator prints hey's summary, not per-request CSV"),
];

/// Sets header `name`, replacing any earlier one of that name.
fn set_header(spec: &mut LoadSpec, name: &str, value: String) {
    spec.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    spec.headers.push((name.to_owned(), value));
}

/// Parses a command line starting with `hey` or `wrk`.
pub fn parse_command(cmd: &str) -> Result<LoadSpec, CommandError> {
    let words = shlex::split(cmd).ok_or(CommandError::Quoting)?;
    let Some((program, args)) = words.split_first() else {
        return Err(CommandError::NotNativeProgram(String::new()));
    };
    match program.rsplit('/').next().unwrap_or_default() {
        "hey" => parse_args(args),
        "wrk" => crate::wrk::parse_args(args),
        _ => Err(CommandError::NotNativeProgram(program.clone())),
    }
}

/// Parses hey's arguments (without the program name).
pub fn parse_args(args: &[String]) -> Result<LoadSpec, CommandError> {
    let mut spec = LoadSpec::default();
    let mut urls = Vec::new();
    let mut n_given = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if !arg.starts_with('-') || arg == "-" {
            urls.push(arg.clone());
            continue;
        }
        let flag = arg.trim_start_matches('-');
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| iter.next().cloned())
                .ok_or_else(|| CommandError::MissingValue(format!("-{flag}")))
        };
        match flag {
            "z" => {
                let v = value()?;
                let d = humantime::parse_duration(&v).map_err(|e| bad("-z", format!("{v:?}: {e}")))?;
                if d.is_zero() {
                    return Err(bad("-z", "must be longer than zero"));
                }
                spec.duration = Some(d);
            }
            "n" => {
                let v = value()?;
                let n: u64 = v.parse().map_err(|_| bad("-n", format!("{v:?} is not a number")))?;
                if n == 0 {
                    return Err(bad("-n", "must be positive"));
                }
                spec.requests = Some(n);
                n_given = true;
            }
            "q" => {
                let v = value()?;
                let q: f64 = v.parse().map_err(|_| bad("-q", format!("{v:?} is not a number")))?;
                if !(q >= 0.0 && q.is_finite()) {
                    return Err(bad("-q", "must be a non-negative number"));
                }
                spec.qps_per_worker = (q > 0.0).then_some(q);
            }
            "c" => {
                let v = value()?;
                let c: usize = v.parse().map_err(|_| bad("-c", format!("{v:?} is not a number")))?;
                if c == 0 || c > 10_000 {
                    return Err(bad("-c", "must be between 1 and 10000"));
                }
                spec.workers = c;
            }
            "m" => spec.method = value()?.to_uppercase(),
            "H" => {
                let v = value()?;
                let (k, val) = v
                    .split_once(':')
                    .ok_or_else(|| bad("-H", format!("{v:?} is not \"Key: Value\"")))?;
                spec.headers.push((k.trim().to_owned(), val.trim().to_owned()));
            }
            "d" => spec.body = Some(value()?),
            "T" => spec.content_type = Some(value()?),
            "t" => {
                let v = value()?;
                let t: u64 = v
                    .parse()
                    .map_err(|_| bad("-t", format!("{v:?} is not a number of seconds")))?;
                spec.timeout = (t > 0).then(|| Duration::from_secs(t));
            }
            // `-host` is the Host header, as in hey.
            "host" => set_header(&mut spec, "Host", value()?),
            "A" => set_header(&mut spec, "Accept", value()?),
            "a" => {
                let v = value()?;
                if !v.contains(':') {
                    return Err(bad("-a", format!("{v:?} is not \"user:password\"")));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
                set_header(&mut spec, "Authorization", format!("Basic {encoded}"));
            }
            // The native generator never asks for compression and never follows redirects:
            // these two ask for what it does anyway. `-cpus` tunes Go's scheduler.
            "disable-compression" | "disable-redirects" => {}
            "cpus" => {
                value()?;
            }
            "disable-keepalive" => spec.keep_alive = false,
            "h2" => spec.h2 = true,
            "x" => {
                let v = value()?;
                let address = v.strip_prefix("http://").unwrap_or(&v).trim_end_matches('/');
                if address.contains('/') || !address.contains(':') {
                    return Err(bad("-x", format!("{v:?} is not host:port")));
                }
                spec.proxy = Some(address.to_owned());
            }
            other => {
                if let Some((_, why)) = NOT_NATIVE.iter().find(|(flag, _)| *flag == other) {
                    return Err(CommandError::NotNative {
                        flag: format!("hey -{other}"),
                        why,
                    });
                }
                return Err(CommandError::UnknownFlag(format!("hey -{other}")));
            }
        }
    }
    if urls.len() != 1 {
        return Err(CommandError::Url(urls.len()));
    }
    spec.url = urls.remove(0);
    if !spec.url.starts_with("http://") && !spec.url.starts_with("https://") {
        return Err(bad("URL", format!("{:?}: not an http:// or https:// URL", spec.url)));
    }
    if spec.duration.is_some() {
        spec.requests = None;
    } else if let Some(n) = spec.requests
        && n < spec.workers as u64
    {
        if n_given {
            return Err(bad("-n", "cannot be less than -c (the number of workers)"));
        }
        spec.workers = usize::try_from(n).unwrap_or(1);
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_command_parses() {
        let spec = parse_command("hey -z 1m -q 5 -c 2 http://podinfo.test").expect("valid");
        assert_eq!(spec.url, "http://podinfo.test");
        assert_eq!(spec.duration, Some(Duration::from_secs(60)));
        assert_eq!(spec.requests, None);
        assert_eq!(spec.qps_per_worker, Some(5.0));
        assert_eq!(spec.workers, 2);
    }

    #[test]
    fn headers_body_and_method_parse_with_quotes() {
        let spec = parse_command(r#"hey -n 10 -c 1 -m post -H "X-Canary: insider" -H 'A: b' -d '{"k": 1}' -T application/json -t 3 http://x.test/api"#)
            .expect("valid");
        assert_eq!(spec.method, "POST");
        assert_eq!(
            spec.headers,
            vec![("X-Canary".into(), "insider".into()), ("A".into(), "b".into())]
        );
        assert_eq!(spec.body.as_deref(), Some(r#"{"k": 1}"#));
        assert_eq!(spec.content_type.as_deref(), Some("application/json"));
        assert_eq!(spec.timeout, Some(Duration::from_secs(3)));
        assert_eq!(spec.requests, Some(10));
    }

    #[test]
    fn host_accept_and_basic_auth_become_headers_as_in_hey() {
        let spec = parse_command(
            "hey -z 1m -q 10 -c 2 -host app.example.com -A application/json -a user:secret -disable-compression -cpus 2 http://gateway.istio-system",
        )
        .expect("valid");
        assert_eq!(
            spec.headers,
            vec![
                ("Host".into(), "app.example.com".into()),
                ("Accept".into(), "application/json".into()),
                ("Authorization".into(), "Basic dXNlcjpzZWNyZXQ=".into()),
            ]
        );
        assert_eq!(spec.url, "http://gateway.istio-system");
    }

    #[test]
    fn connection_flags_parse() {
        let spec =
            parse_command("hey -n 10 -c 1 -disable-keepalive -h2 -x http://proxy:3128 https://x.test/").expect("valid");
        assert!(!spec.keep_alive);
        assert!(spec.h2);
        assert_eq!(spec.proxy.as_deref(), Some("proxy:3128"));
        assert_eq!(spec.url, "https://x.test/");
    }

    #[test]
    fn invalid_forms_say_what_is_wrong() {
        let cases = [
            ("curl http://x", "not a hey or wrk command: \"curl\""),
            ("hey -z http://x", "flag -z: \"http://x\": "),
            ("hey -z 1m", "expected exactly one URL, found 0"),
            ("hey -c 0 http://x", "flag -c: must be between 1 and 10000"),
            ("hey -n 1 -c 2 http://x", "flag -n: cannot be less than -c"),
            ("hey -D /etc/passwd http://x", "hey -D is not run natively"),
            ("hey -x proxy http://x", "flag -x: \"proxy\" is not host:port"),
            ("hey -bogus http://x", "unsupported flag hey -bogus"),
            ("hey -H nocolon http://x", "flag -H: \"nocolon\" is not \"Key: Value\""),
            ("hey 'unbalanced http://x", "cannot split the command line"),
            ("hey -n 5 ftp://x", "not an http:// or https:// URL"),
            ("hey -q", "flag -q needs a value"),
        ];
        for (cmd, expected) in cases {
            let err = parse_command(cmd).expect_err(cmd).to_string();
            assert!(err.contains(expected), "{cmd}: {err}");
        }
    }
}
