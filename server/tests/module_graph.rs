#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The crate's modules import one another without circles: each concept can be read (and
//! changed) from the bottom up. A module's own children and parent are left out (a parent
//! re-exports its children's names; a child uses its parent's shared types).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module (`crate`, `crate::auth`, `crate::auth::token`, ...) and its source, tests cut off.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let relative = relative.to_str().unwrap().replace('/', "::");
            let name = match relative.as_str() {
                "lib" => "crate".to_owned(),
                // The binary is its own crate: its paths name the library, not `crate::`.
                "main" => continue,
                other => format!("crate::{other}"),
            };
            let source = std::fs::read_to_string(&path).unwrap();
            let source = match source.find("#[cfg(test)]\nmod tests") {
                Some(tests) => source[..tests].to_owned(),
                None => source,
            };
            modules.insert(name, source);
        }
    }
    modules
}

/// The modules `source` (module `name`) names through `crate::` or `super::` paths.
fn imports(name: &str, source: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let words: Vec<&str> = source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .collect();
    for word in words {
        let mut parts = word.split("::").filter(|part| !part.is_empty());
        let mut base: Vec<&str> = match parts.next() {
            Some("crate") => vec!["crate"],
            Some("super") => {
                let mut base: Vec<&str> = name.split("::").collect();
                base.pop();
                base
            }
            _ => continue,
        };
        let mut longest = None;
        for part in parts {
            if part == "super" {
                base.pop();
                continue;
            }
            base.push(part);
            let candidate = base.join("::");
            if known.contains_key(&candidate) {
                longest = Some(candidate);
            }
        }
        if let Some(module) = longest {
            let related = module == name
                || module.starts_with(&format!("{name}::"))
                || name.starts_with(&format!("{module}::"));
            if !related {
                found.insert(module);
            }
        }
    }
    found
}

#[test]
fn no_module_imports_itself_through_a_circle() {
    let modules = modules();
    let graph: BTreeMap<&str, BTreeSet<String>> = modules
        .iter()
        .map(|(name, source)| (name.as_str(), imports(name, source, &modules)))
        .collect();
    // A depth-first walk from every module; a module met again on the current path closes a
    // circle.
    fn walk<'a>(
        module: &'a str,
        graph: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
        circles: &mut Vec<String>,
    ) {
        if let Some(start) = path.iter().position(|on_path| *on_path == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module);
            circles.push(circle.join(" -> "));
            return;
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in &graph[module] {
            walk(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        walk(module, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}
