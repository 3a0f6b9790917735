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

/// Which modules of the crate each module may import (ARCHITECTURE.md prints the same table).
/// Edges → services → policy/state → domain: nothing imports `startup`, `cli`, `admin`, and
/// the table has no cycle.
const ALLOWED_IMPORTS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("auth", &[]),
    ("telemetry", &[]),
    ("layout", &["domain"]),
    ("vfs", &["domain", "layout"]),
    ("access", &["domain", "layout", "vfs"]),
    ("registry", &["clock", "domain"]),
    ("storage", &["clock", "domain", "registry", "telemetry"]),
    ("audit", &["clock", "domain", "registry", "storage"]),
    ("notify", &["clock", "domain", "registry"]),
    ("retention", &["audit", "domain", "layout", "registry", "storage"]),
    ("publishing", &["domain", "registry", "storage"]),
    ("ingest", &["audit", "clock", "domain", "layout", "notify", "registry", "storage", "telemetry"]),
    ("access_requests", &["clock", "domain", "ingest", "registry"]),
    (
        "gateway",
        &[
            "access",
            "access_requests",
            "audit",
            "auth",
            "clock",
            "domain",
            "ingest",
            "layout",
            "notify",
            "publishing",
            "registry",
            "storage",
            "telemetry",
            "vfs",
        ],
    ),
    ("sftp", &["access", "audit", "auth", "domain", "gateway", "registry", "storage", "telemetry", "vfs"]),
    ("http", &["clock", "domain", "registry", "storage", "telemetry"]),
    (
        "config",
        &["auth", "domain", "gateway", "ingest", "layout", "notify", "retention", "sftp", "storage", "telemetry"],
    ),
    (
        "admin",
        &[
            "access_requests",
            "audit",
            "auth",
            "clock",
            "config",
            "domain",
            "ingest",
            "layout",
            "notify",
            "publishing",
            "registry",
            "storage",
            "vfs",
        ],
    ),
    (
        "startup",
        &[
            "admin",
            "audit",
            "clock",
            "config",
            "gateway",
            "http",
            "ingest",
            "layout",
            "notify",
            "registry",
            "retention",
            "sftp",
            "storage",
            "telemetry",
        ],
    ),
    ("demo", &["admin", "auth", "config", "domain", "ingest", "startup"]),
];

/// The modules of the crate that `text` imports (`crate::name`), comments and tests aside.
fn imports_of(text: &str) -> std::collections::BTreeSet<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = std::collections::BTreeSet::new();
    for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_what_the_table_allows() {
    assert_eq!(
        imports_of("use crate::gateway::{Gateway, crate::vfs};\n// crate::sftp\n"),
        ["gateway", "vfs"].map(String::from).into()
    );
    let mut problems = Vec::new();
    for (path, text) in sources() {
        let module = path.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_string();
        if ["lib", "main", "cli", "architecture_rules"].contains(&module.as_str()) {
            continue;
        }
        let Some((_, allowed)) = ALLOWED_IMPORTS.iter().find(|(name, _)| *name == module) else {
            problems.push(format!("{path}: module {module} is not in the table"));
            continue;
        };
        for imported in imports_of(&text) {
            if imported != module && !allowed.contains(&imported.as_str()) {
                problems.push(format!("{path}: {module} imports {imported}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_import_table_has_no_cycle() {
    fn reaches(from: &str, to: &str, seen: &mut Vec<String>) -> bool {
        let Some((_, next)) = ALLOWED_IMPORTS.iter().find(|(name, _)| *name == from) else {
            return false;
        };
        next.iter().any(|n| {
            if *n == to {
                return true;
            }
            if seen.iter().any(|s| s == n) {
                return false;
            }
            seen.push(n.to_string());
            reaches(n, to, seen)
        })
    }
    for (module, _) in ALLOWED_IMPORTS {
        assert!(!reaches(module, module, &mut Vec::new()), "{module} reaches itself");
    }
}

#[test]
fn the_files_of_a_folder_import_each_other_without_cycles() {
    use std::collections::{BTreeMap, BTreeSet};
    let files = sources();
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (path, text) in &files {
        let Some((folder, file)) = path.split_once('/') else {
            continue;
        };
        let name = file.trim_end_matches(".rs").to_string();
        let siblings: BTreeSet<String> = files
            .iter()
            .filter_map(|(p, _)| p.strip_prefix(&format!("{folder}/")))
            .map(|f| f.trim_end_matches(".rs").to_string())
            .collect();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut uses = BTreeSet::new();
        for prefix in ["super::".to_string(), format!("crate::{folder}::")] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix.as_str()) {
                rest = &rest[at + prefix.len()..];
                let used: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if used != name && siblings.contains(&used) {
                    uses.insert(used);
                }
            }
        }
        graphs.entry(folder.to_string()).or_default().insert(name, uses);
    }
    for (folder, graph) in &graphs {
        for start in graph.keys() {
            let mut stack: Vec<&String> = graph[start].iter().collect();
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                assert!(next != start, "{folder}/: {start}.rs imports itself through its siblings");
                if seen.insert(next.clone()) {
                    stack.extend(graph.get(next).into_iter().flatten());
                }
            }
        }
    }
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
