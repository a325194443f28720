//! The structure of the workspace, checked from its sources (no service
//! needed):
//!
//! - crate dependencies point inward: the domain depends on no crate of ours,
//!   the application only on the domain, adapters and infrastructure only on
//!   those two, and nothing but the composition root (`ordermon`), the test
//!   harness and the examples on an adapter;
//! - no import cycle between the modules of a crate, at any level: among the
//!   children of one module (the crate root's top-level modules, or `owner`'s
//!   files), when `a` names `b` (`crate::…::b`, `super::b`, `self::b`, or an
//!   item its parent re-exports from `b`; `super::` and `self::` on every line
//!   of a file, or only its unindented ones when the file has an inline
//!   module of its own), `b` must not name `a` back,
//!   directly or through its siblings. A module's own children are part of
//!   it; test code (`tests.rs`, `tests/` folders and inline
//!   `#[cfg(test)] mod … { … }` blocks) is not counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The workspace's member folders, from its manifest.
fn members() -> Vec<String> {
    let manifest: toml::Table = fs::read_to_string(workspace_root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

/// A member's package name and the crates of ours it depends on (normal
/// dependencies only).
fn internal_dependencies(member: &str) -> (String, BTreeSet<String>) {
    let manifest: toml::Table =
        fs::read_to_string(workspace_root().join(member).join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let name = manifest["package"]["name"].as_str().unwrap().to_owned();
    let deps = manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.keys()
                .filter(|k| *k == "ordermon" || k.starts_with("ordermon-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    (name, deps)
}

/// How far out a crate sits: it may depend only on crates further in.
fn ring(name: &str) -> u8 {
    match name {
        "ordermon-domain" => 0,
        "ordermon-application" => 1,
        // the composition root
        "ordermon" => 3,
        // what only uses the system from outside
        "ordermon-tests" | "ordermon-example-embedded" => 4,
        // adapters: the HTTP API, the paper venue and the simulated feed
        "ordermon-http" | "ordermon-sim" => 2,
        // infrastructure
        "ordermon-memory"
        | "ordermon-sql"
        | "ordermon-redis"
        | "ordermon-rabbitmq"
        | "ordermon-kafka"
        | "ordermon-notify"
        | "ordermon-marketdata"
        | "ordermon-telemetry" => 2,
        other => panic!("{other} has no ring: place it in `ring`"),
    }
}

#[test]
fn crate_dependencies_point_inward() {
    let mut wrong = Vec::new();
    let mut seen = 0;
    for member in members() {
        let (name, deps) = internal_dependencies(&member);
        seen += 1;
        for dep in deps {
            if ring(&dep) >= ring(&name) {
                wrong.push(format!(
                    "{name} (ring {}) -> {dep} (ring {})",
                    ring(&name),
                    ring(&dep)
                ));
            }
        }
    }
    assert!(seen >= 10, "only {seen} members found");
    assert!(
        wrong.is_empty(),
        "dependencies pointing outward or sideways:\n{}",
        wrong.join("\n")
    );
}

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the start of `s`, after spaces.
fn leading_ident(s: &str) -> &str {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    &s[..end]
}

/// The path after each `prefix` (`crate::`, `super::`, `self::`) in
/// `line`, as segments: `crate::a::b::C` gives `[a, b, C]`; a group
/// (`crate::a::{b, c::d}`) gives each entry's path (`[a, b]`, `[a, c, d]`),
/// an entry's own group cut at its brace.
fn paths_after(line: &str, prefix: &str) -> Vec<Vec<String>> {
    fn path(s: &str) -> (Vec<String>, &str) {
        let mut segments = Vec::new();
        let mut rest = s.trim_start();
        loop {
            let ident = leading_ident(rest);
            if ident.is_empty() {
                break;
            }
            segments.push(ident.to_owned());
            rest = &rest.trim_start()[ident.len()..];
            match rest.strip_prefix("::") {
                Some(after) => rest = after,
                None => break,
            }
        }
        (segments, rest)
    }
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(prefix) {
        let before_ok = rest[..at].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = &rest[at + prefix.len()..];
        if before_ok {
            let (head, tail) = path(after);
            if let Some(group) = tail.trim_start().strip_prefix('{') {
                // Only the group's top level: `{a, b::{c, d}, e}` gives a, b, e.
                let mut depth = 0usize;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && depth == 0 && is_ident(c) => {
                            let mut entry = head.clone();
                            entry.extend(path(&group[i..]).0);
                            found.push(entry);
                            start = false;
                        }
                        _ => {}
                    }
                }
            } else if !head.is_empty() {
                found.push(head);
            }
        }
        rest = after;
    }
    found
}

/// The lines of `text` that are not test code: everything before an inline
/// `#[cfg(test)]` module (`mod tests;` declarations are skipped, not cut).
fn non_test_lines(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with("#[cfg(test)]") {
            let mut j = i + 1;
            while j < lines.len() && lines[j].starts_with("#[") {
                j += 1;
            }
            if lines.get(j).is_some_and(|l| l.trim_end().ends_with('{')) {
                break; // an inline test module, to the end of the file
            }
            i = j + 1; // `mod tests;`: its file is skipped by name
            continue;
        }
        kept.push(lines[i]);
        i += 1;
    }
    kept
}

/// The module a file of the crate at `src` defines (`a/b.rs` and
/// `a/b/mod.rs`: `[a, b]`; the root: `[]`), or `None` for test code and
/// binaries.
fn module_of(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.iter().any(|p| p == "tests") || parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.last()?.as_str();
    if last == "mod" || (parts.len() == 1 && (last == "lib" || last == "main")) {
        parts.pop();
    }
    Some(parts)
}

/// `(from, to) -> files` between sibling modules of the crate at `src`
/// (named by their paths, `owner::lanes`): a file of module `m` naming
/// module `t` is an edge between the children of their deepest common
/// ancestor that hold them.
fn module_graph(src: &Path) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut modules: BTreeMap<Vec<String>, PathBuf> = BTreeMap::new();
    for file in files {
        if let Some(m) = module_of(file.strip_prefix(src).unwrap()) {
            modules.insert(m, file);
        }
    }
    // What each module re-exports from a child, by name: `crate::owner::Command`
    // names `owner::command` when `owner` says `pub(crate) use command::Command`.
    let mut reexports: BTreeMap<(Vec<String>, String), String> = BTreeMap::new();
    for (module, file) in &modules {
        let text = fs::read_to_string(file).unwrap();
        for line in non_test_lines(&text) {
            if !line.starts_with("pub") {
                continue;
            }
            let Some(rest) = line.split_once("use ").map(|(_, r)| r) else {
                continue;
            };
            let rest = rest.trim_start().trim_start_matches("self::");
            let child = leading_ident(rest);
            let mut path = module.clone();
            path.push(child.to_owned());
            if child.is_empty() || !modules.contains_key(&path) {
                continue;
            }
            for name in rest[child.len()..]
                .split(|c: char| !is_ident(c))
                .filter(|n| !n.is_empty() && *n != "self")
            {
                reexports
                    .entry((module.clone(), name.to_owned()))
                    .or_insert_with(|| child.to_owned());
            }
        }
    }
    // The module a path names: its longest prefix that is a module, through
    // re-exports.
    let resolve = |path: &[String]| -> Vec<String> {
        let mut module: Vec<String> = Vec::new();
        for segment in path {
            let mut next = module.clone();
            next.push(segment.clone());
            if modules.contains_key(&next) {
                module = next;
            } else if let Some(child) = reexports.get(&(module.clone(), segment.clone())) {
                module.push(child.clone());
            } else {
                break;
            }
        }
        module
    };
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (from, file) in &modules {
        if from.is_empty() {
            continue;
        }
        let rel = file.strip_prefix(src).unwrap().display().to_string();
        let text = fs::read_to_string(file).unwrap();
        let lines = non_test_lines(&text);
        // Inside an inline module `super::` means the file's own module; in a
        // file with one, only its unindented lines are read for `super::`.
        let inline_module = lines.iter().any(|l| {
            let item = l
                .trim_start()
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("pub ");
            item.starts_with("mod ") && l.trim_end().ends_with('{')
        });
        for line in lines {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut named: Vec<Vec<String>> = paths_after(line, "crate::")
                .iter()
                .map(|p| resolve(p))
                .collect();
            if !inline_module || !line.starts_with([' ', '\t']) {
                for mut path in paths_after(line, "super::") {
                    let mut up = 1;
                    while path.first().is_some_and(|s| s == "super") {
                        path.remove(0);
                        up += 1;
                    }
                    if let Some(keep) = from.len().checked_sub(up) {
                        let mut full = from[..keep].to_vec();
                        full.extend(path);
                        named.push(resolve(&full));
                    }
                }
                for path in paths_after(line, "self::") {
                    let mut full = from.clone();
                    full.extend(path);
                    named.push(resolve(&full));
                }
            }
            for to in named {
                let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common >= from.len() || common >= to.len() {
                    continue; // the module itself, an ancestor or a descendant
                }
                edges
                    .entry((from[..=common].join("::"), to[..=common].join("::")))
                    .or_default()
                    .insert(rel.clone());
            }
        }
    }
    edges
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(edges: &BTreeMap<(String, String), BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        next: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.next.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        next: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for (from, to) in edges.keys() {
        walk.next
            .entry(from.as_str())
            .or_default()
            .push(to.as_str());
    }
    let nodes: Vec<&str> = walk.next.keys().copied().collect();
    for v in nodes {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_import_cycle_between_the_modules_of_a_crate() {
    let root = workspace_root();
    let mut report = Vec::new();
    let mut crates = 0;
    let mut edge_count = 0;
    for member in members() {
        let src = root.join(&member).join("src");
        if !src.join("lib.rs").exists() {
            continue;
        }
        crates += 1;
        let edges = module_graph(&src);
        edge_count += edges.len();
        for component in cycles(&edges) {
            report.push(format!("{member}: {}", component.join(", ")));
            for ((from, to), files) in &edges {
                if component.contains(from) && component.contains(to) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    report.push(format!("    {from} -> {to} ({})", files.join(", ")));
                }
            }
        }
    }
    // The walk found the crates and their imports (a parser that sees nothing
    // would pass anything).
    assert!(crates >= 10, "only {crates} crates with a lib.rs found");
    assert!(edge_count >= 100, "only {edge_count} module imports found");
    assert!(
        report.is_empty(),
        "modules importing each other:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_the_parser_reads_groups() {
    let edge = |a: &str, b: &str| ((a.to_owned(), b.to_owned()), BTreeSet::new());
    let edges: BTreeMap<_, _> = [
        edge("a", "b"),
        edge("b", "c"),
        edge("c", "a"),
        edge("c", "d"),
    ]
    .into_iter()
    .collect();
    assert_eq!(cycles(&edges), vec![vec!["a", "b", "c"]]);
    let edges: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c")].into_iter().collect();
    assert!(cycles(&edges).is_empty());
    assert_eq!(
        paths_after("use crate::{a, b::{c, d}, e::F};", "crate::"),
        vec![vec!["a"], vec!["b"], vec!["e", "F"]]
    );
    assert_eq!(
        paths_after("x: Arc<crate::lag::Lag>, y: mycrate::z", "crate::"),
        vec![vec!["lag", "Lag"]]
    );
    assert_eq!(
        paths_after("use super::{Command, lanes::Slot};", "super::"),
        vec![vec!["Command"], vec!["lanes", "Slot"]]
    );
    assert_eq!(
        module_of(Path::new("owner/lanes.rs")),
        Some(vec!["owner".to_owned(), "lanes".to_owned()])
    );
    assert_eq!(
        module_of(Path::new("owner/mod.rs")),
        Some(vec!["owner".to_owned()])
    );
    assert_eq!(module_of(Path::new("lib.rs")), Some(vec![]));
    assert_eq!(module_of(Path::new("owner/monitor/tests.rs")), None);
    assert_eq!(
        non_test_lines("a\n#[cfg(test)]\nmod tests;\nb\n#[cfg(test)]\nmod tests {\nc\n}"),
        vec!["a", "b"]
    );
}
