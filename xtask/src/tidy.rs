//! Repository rules checked by `cargo test -p xtask`: every file's `//!` doc, the engine's
//! purity, the product crates' independence from the sandbox, file sizes, and documents that
//! name only files that exist.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.ends_with("target") {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    fn dependencies_section(manifest: &str) -> Vec<String> {
        let mut in_deps = false;
        let mut deps = Vec::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
                continue;
            }
            if in_deps && let Some((name, _)) = line.split_once('=') {
                deps.push(name.trim().split('.').next().unwrap_or_default().to_owned());
            }
        }
        deps
    }

    #[test]
    fn serin_core_depends_on_serde_only() {
        let manifest = std::fs::read_to_string(root().join("crates/serin-core/Cargo.toml")).expect("manifest");
        assert_eq!(dependencies_section(&manifest), ["serde"]);
    }

    #[test]
    fn serin_core_never_reads_a_clock_or_randomness() {
        let mut files = Vec::new();
        rust_files(&root().join("crates/serin-core/src"), &mut files);
        assert!(!files.is_empty());
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            for banned in [
                "SystemTime",
                "Instant::now",
                "thread_rng",
                "rand::",
                "std::fs",
                "std::net",
                "std::env",
            ] {
                assert!(!text.contains(banned), "{} uses {banned}", file.display());
            }
        }
    }

    #[test]
    fn every_crate_root_starts_with_a_module_doc() {
        let mut files = Vec::new();
        for dir in ["crates", "bins", "xtask", "examples"] {
            rust_files(&root().join(dir), &mut files);
        }
        let roots = files
            .iter()
            .filter(|f| f.ends_with("src/lib.rs") || f.ends_with("src/main.rs"));
        let mut count = 0;
        for file in roots {
            count += 1;
            let text = std::fs::read_to_string(file).expect("source");
            assert!(
                text.starts_with("//!"),
                "{} must start with a //! crate doc",
                file.display()
            );
        }
        assert!(count >= 4, "found only {count} crate roots");
    }

    #[test]
    fn source_files_stay_readable_in_one_sitting() {
        let mut files = Vec::new();
        for dir in ["crates", "bins", "xtask", "examples"] {
            rust_files(&root().join(dir), &mut files);
        }
        for file in files {
            let lines = std::fs::read_to_string(&file).expect("source").lines().count();
            assert!(
                lines <= 600,
                "{} has {lines} lines; split it by concept",
                file.display()
            );
        }
    }

    #[test]
    fn every_rust_file_starts_with_a_line_saying_what_it_is() {
        let mut files = Vec::new();
        for dir in ["crates", "bins", "xtask", "examples"] {
            rust_files(&root().join(dir), &mut files);
        }
        assert!(files.len() > 50, "found only {} files", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            assert!(text.starts_with("//!"), "{} must start with a //! line", file.display());
        }
    }

    #[test]
    fn no_product_crate_depends_on_the_sandbox() {
        let products = [
            "crates/serin-core",
            "crates/serin-api",
            "crates/serin-knative",
            "crates/serin-metrics",
            "crates/serin-webhook",
            "crates/serin-reconciler",
            "bins/serin-controller",
            "bins/serin-loadtester",
            "bins/serin",
        ];
        for krate in products {
            let manifest = std::fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("manifest");
            let deps = dependencies_section(&manifest);
            assert!(
                !deps.is_empty() || krate == "crates/serin-core",
                "{krate} has no [dependencies]?"
            );
            assert!(
                !deps.iter().any(|d| d == "serin-sandbox"),
                "{krate} depends on serin-sandbox (only dev-dependencies may)"
            );
        }
    }

    /// Backticked repository paths (`crates/…`, `docs/…`, …) in the documents and sources.
    fn named_paths(text: &str) -> Vec<String> {
        let prefixes = [
            "crates/",
            "bins/",
            "docs/",
            "testdata/",
            "deploy/",
            "xtask/",
            "examples/",
        ];
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| prefixes.iter().any(|p| t.starts_with(p)))
            .filter(|t| !t.contains(char::is_whitespace) && !t.contains(['*', '{', '…', 'N']))
            .map(|t| t.trim_end_matches([':', ',', '.']).to_owned())
            .collect()
    }

    #[test]
    fn documents_name_only_files_that_exist_and_no_outside_notes() {
        let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "testdata/README.md"]
            .iter()
            .map(|f| root().join(f))
            .collect();
        if let Ok(entries) = std::fs::read_dir(root().join("docs")) {
            files.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "md")),
            );
        }
        for dir in ["crates", "bins", "xtask", "examples"] {
            rust_files(&root().join(dir), &mut files);
        }
        let mut checked = 0;
        for file in files.into_iter().filter(|f| !f.ends_with("xtask/src/tidy.rs")) {
            let text = std::fs::read_to_string(&file).expect("document");
            for path in named_paths(&text) {
                // `crates/serin-core/tests/it/` style directories and files alike.
                assert!(
                    root().join(&path).exists(),
                    "{} names {path}, which does not exist",
                    file.display()
                );
                checked += 1;
            }
            for outside in ["reference §", "DEVELOPERS.md", "toolchain notes"] {
                assert!(
                    !text.contains(outside),
                    "{} points to {outside:?}, which is not in the repository",
                    file.display()
                );
            }
        }
        assert!(checked > 20, "only {checked} paths named");
    }

    #[test]
    fn every_dependency_version_is_in_the_workspace() {
        let mut manifests = Vec::new();
        for dir in ["crates", "bins"] {
            for entry in std::fs::read_dir(root().join(dir)).expect("dir").flatten() {
                manifests.push(entry.path().join("Cargo.toml"));
            }
        }
        manifests.push(root().join("xtask/Cargo.toml"));
        manifests.push(root().join("examples/Cargo.toml"));
        for manifest in manifests {
            let text = std::fs::read_to_string(&manifest).expect("manifest");
            for line in text.lines().map(str::trim) {
                let pinned = line.split_once('=').is_some_and(|(_, v)| {
                    let v = v.trim();
                    v.starts_with('"') || v.contains("version =")
                });
                let package_key = ["name", "description", "harness", "path", "version"]
                    .iter()
                    .any(|k| line.starts_with(&format!("{k} ")) || line.starts_with(&format!("{k}=")));
                let feature_list = line.contains("= [");
                assert!(
                    !pinned || package_key || feature_list,
                    "{}: {line}: put the version in [workspace.dependencies]",
                    manifest.display()
                );
            }
        }
    }
}
