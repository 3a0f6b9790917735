//! The rules of ARCHITECTURE.md ("Rules the code keeps") that a reading of the sources can
//! check: which module may name which dependency or read the time.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as its path relative to `src/` and its text.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut pending: Vec<PathBuf> = vec![root.clone()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().display().to_string();
                files.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    files
}

/// The files outside `allowed` (path prefixes) whose code, comments aside, names any of `names`.
fn offenders(names: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if allowed.iter().any(|prefix| path.starts_with(prefix)) || path == "architecture_rules.rs" {
            continue;
        }
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            if let Some(name) = names.iter().find(|name| line.contains(**name)) {
                found.push(format!("{path}: {name}: {line}"));
            }
        }
    }
    found
}

#[test]
fn the_clock_module_is_the_only_time_source() {
    let found = offenders(&["SystemTime::now", "now_utc()", "Utc::now", "Local::now"], &["clock.rs"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn only_the_sftp_edge_touches_russh() {
    let found = offenders(&["russh"], &["sftp/"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn only_the_registry_speaks_sql() {
    let found = offenders(&["sqlx::"], &["registry/"]);
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_domain_imports_nothing_else_of_the_crate() {
    let found: Vec<String> = offenders(&["crate::"], &[])
        .into_iter()
        .filter(|line| line.starts_with("domain/") && !line.contains("crate::domain"))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}
