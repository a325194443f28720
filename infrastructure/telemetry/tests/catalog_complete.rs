//! The metric catalog is complete: every metric name the workspace's sources
//! record has an entry in `catalog::METRICS`, with the kind the sources record
//! it as, and every entry is still recorded somewhere.
//!
//! A metric name is a string literal `"ordermon_[a-z0-9_]+"` that is the first
//! argument of `counter!(`, `gauge!(` or `histogram!(` (with or without the
//! `metrics::` path), or the value of a `const NAME: &str` (or `static`). A
//! macro whose first argument is such a constant's name (`m::REQUESTS`) records
//! the constant's metric with the macro's kind.
//!
//! Test code is left out: `tests` and `benches` directories, files named
//! `tests.rs`, and items and modules under `#[cfg(test)]`; so are `target`,
//! `fuzz` and hidden directories. The sources are read with a small lexer that
//! knows comments, strings, raw strings, characters and lifetimes, so names in
//! comments or in other strings never count.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ordermon_telemetry::catalog::{METRICS, MetricKind};

/// Directory names never walked.
const SKIPPED_DIRS: &[&str] = &["target", "fuzz", "tests", "benches"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// A `"…"` literal's text as written (escapes left alone), or a raw
    /// string's text.
    Str(String),
    /// `::`
    PathSep,
    Punct(char),
    /// A lifetime, number, character or byte string: nothing we look at.
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Splits Rust source into tokens, dropping whitespace and comments.
fn lex(src: &str) -> Vec<Token> {
    let s: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let count_lines = |from: usize, to: usize| s[from..to].iter().filter(|&&c| c == '\n').count();
    while i < s.len() {
        let c = s[i];
        let start = i;
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments: `//…` and nested `/* … */`.
        if c == '/' && s.get(i + 1) == Some(&'/') {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && s.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < s.len() {
                if s[i] == '/' && s.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if s[i] == '*' && s.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += count_lines(start, i.min(s.len()));
            continue;
        }
        // Raw strings: r"…", r#"…"#, br#"…"#, cr"…".
        if let Some((text, end)) = raw_string(&s, i) {
            let byte = c != 'r';
            out.push(Token {
                tok: if byte { Tok::Other } else { Tok::Str(text) },
                line: start_line,
            });
            line += count_lines(start, end);
            i = end;
            continue;
        }
        // Byte and C strings: b"…", c"…".
        if (c == 'b' || c == 'c') && s.get(i + 1) == Some(&'"') {
            let end = quoted_end(&s, i + 1);
            line += count_lines(start, end);
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
            i = end;
            continue;
        }
        // Byte characters: b'x'.
        if c == 'b' && s.get(i + 1) == Some(&'\'') {
            i = char_end(&s, i + 1).unwrap_or(i + 2);
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                i += 1;
            }
            let mut word: String = s[start..i].iter().collect();
            // Raw identifiers: r#type.
            if word == "r" && s.get(i) == Some(&'#') {
                let from = i + 1;
                let mut j = from;
                while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                    j += 1;
                }
                word = s[from..j].iter().collect();
                i = j;
            }
            out.push(Token {
                tok: Tok::Ident(word),
                line: start_line,
            });
            continue;
        }
        if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_' || s[i] == '.') {
                // `0..n` is a range, not a number's point.
                if s[i] == '.' && s.get(i + 1) == Some(&'.') {
                    break;
                }
                i += 1;
            }
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
            continue;
        }
        if c == '"' {
            let end = quoted_end(&s, i);
            let text: String = s[i + 1..end.saturating_sub(1).max(i + 1)].iter().collect();
            line += count_lines(start, end);
            out.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
            i = end;
            continue;
        }
        if c == '\'' {
            // A character literal, or else a lifetime / label.
            if let Some(end) = char_end(&s, i) {
                i = end;
            } else {
                i += 1;
                while i < s.len() && (s[i].is_alphanumeric() || s[i] == '_') {
                    i += 1;
                }
            }
            out.push(Token {
                tok: Tok::Other,
                line: start_line,
            });
            continue;
        }
        if c == ':' && s.get(i + 1) == Some(&':') {
            out.push(Token {
                tok: Tok::PathSep,
                line: start_line,
            });
            i += 2;
            continue;
        }
        out.push(Token {
            tok: Tok::Punct(c),
            line: start_line,
        });
        i += 1;
    }
    out
}

/// The end (one past the closing quote) of the `"…"` starting at `open`.
fn quoted_end(s: &[char], open: usize) -> usize {
    let mut i = open + 1;
    while i < s.len() {
        match s[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    s.len()
}

/// The end of a character literal starting at the quote `open`, or `None`
/// when it is a lifetime or label.
fn char_end(s: &[char], open: usize) -> Option<usize> {
    match (s.get(open + 1), s.get(open + 2)) {
        (Some('\\'), _) => {
            // Past the backslash and the escaped character (`'\''`, `'\\'`),
            // then to the closing quote (`'\u{..}'`, `'\x7f'`).
            let mut i = open + 3;
            while i < s.len() && s[i] != '\'' {
                i += 1;
            }
            Some((i + 1).min(s.len()))
        }
        (Some(_), Some('\'')) => Some(open + 3),
        _ => None,
    }
}

/// A raw string (`r"…"`, `r#"…"#`, `br"…"`, `cr"…"`) at `i`: its text and end.
fn raw_string(s: &[char], i: usize) -> Option<(String, usize)> {
    // A raw string must not continue an identifier (`bar"` is not one).
    if i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if matches!(s.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while s.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if s.get(j) != Some(&'"') {
        return None;
    }
    let body = j + 1;
    let mut k = body;
    while k < s.len() {
        if s[k] == '"' && (0..hashes).all(|h| s.get(k + 1 + h) == Some(&'#')) {
            return Some((s[body..k].iter().collect(), k + 1 + hashes));
        }
        k += 1;
    }
    Some((s[body..].iter().collect(), s.len()))
}

/// Whether a string literal's text is a metric name.
fn is_metric_name(text: &str) -> bool {
    text.strip_prefix("ordermon_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn macro_kind(ident: &str) -> Option<MetricKind> {
    match ident {
        "counter" => Some(MetricKind::Counter),
        "gauge" => Some(MetricKind::Gauge),
        "histogram" => Some(MetricKind::Histogram),
        _ => None,
    }
}

/// Where something was seen.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Site {
    file: PathBuf,
    line: usize,
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What one file records.
#[derive(Debug, Default)]
struct FileScan {
    /// Macro calls with a literal name: name, kind, where.
    literal_uses: Vec<(String, MetricKind, Site)>,
    /// Macro calls whose first argument is a path: its last segment, kind, where.
    const_uses: Vec<(String, MetricKind, Site)>,
    /// `const IDENT: &str = "ordermon_…"`: ident, name, where.
    consts: Vec<(String, String, Site)>,
    /// `#[cfg(test)] mod name;`: the module names, whose files are test code.
    test_modules: Vec<String>,
}

/// Index just past the item starting at `i`: its `;` at depth 0, or the `}`
/// closing its outermost block.
fn item_end(toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0_i32;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']') => depth -= 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth <= 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    toks.len()
}

/// Whether `toks[i..]` starts with the attribute `#[cfg(test)]`; its length.
fn cfg_test_at(toks: &[Token], i: usize) -> Option<usize> {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".to_owned()),
        Tok::Punct('('),
        Tok::Ident("test".to_owned()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let got = toks.get(i..i + want.len())?;
    got.iter()
        .zip(&want)
        .all(|(t, w)| &t.tok == w)
        .then_some(want.len())
}

/// Skips any outer attributes at `i` (`#[…]`); the index after them.
fn skip_attributes(toks: &[Token], mut i: usize) -> usize {
    while matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Punct('#')))
        && matches!(toks.get(i + 1).map(|t| &t.tok), Some(Tok::Punct('[')))
    {
        let mut depth = 0;
        let mut j = i + 1;
        while j < toks.len() {
            match toks[j].tok {
                Tok::Punct('[') => depth += 1,
                Tok::Punct(']') => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        i = j + 1;
    }
    i
}

/// The index of a metric macro's name argument, its arguments starting at
/// `j`: after any `target: …,` and `level: …,`.
fn macro_name_arg(toks: &[Token], mut j: usize) -> usize {
    let at = |i: usize| toks.get(i).map(|t| &t.tok);
    while let (Some(Tok::Ident(k)), Some(Tok::Punct(':'))) = (at(j), at(j + 1)) {
        if k != "target" && k != "level" {
            break;
        }
        while j < toks.len() && at(j) != Some(&Tok::Punct(',')) {
            j += 1;
        }
        j += 1;
    }
    j
}

/// The last segment of a path argument `a::b::NAME` at `j`, when the argument
/// is just that path (followed by `,` or `)`).
fn path_arg(toks: &[Token], mut j: usize) -> Option<String> {
    let at = |i: usize| toks.get(i).map(|t| &t.tok);
    if at(j) == Some(&Tok::PathSep) {
        j += 1;
    }
    loop {
        let Some(Tok::Ident(id)) = at(j) else {
            return None;
        };
        j += 1;
        match at(j) {
            Some(Tok::PathSep) => j += 1,
            Some(Tok::Punct(',' | ')')) => return Some(id.clone()),
            _ => return None,
        }
    }
}

fn scan(file: &Path, src: &str) -> FileScan {
    let toks = lex(src);
    let mut out = FileScan::default();
    let at = |i: usize| toks.get(i).map(|t| &t.tok);
    let site = |i: usize| Site {
        file: file.to_owned(),
        line: toks[i].line,
    };
    let mut i = 0;
    while i < toks.len() {
        // Test-only items: skipped whole; out-of-line test modules noted.
        if let Some(n) = cfg_test_at(&toks, i) {
            let item = skip_attributes(&toks, i + n);
            let mut k = item;
            // `pub`, `pub(crate)`, `pub(in path)`.
            if matches!(at(k), Some(Tok::Ident(v)) if v == "pub") {
                k += 1;
                if at(k) == Some(&Tok::Punct('(')) {
                    while k < toks.len() && at(k) != Some(&Tok::Punct(')')) {
                        k += 1;
                    }
                    k += 1;
                }
            }
            if let (Some(Tok::Ident(m)), Some(Tok::Ident(name)), Some(Tok::Punct(';'))) =
                (at(k), at(k + 1), at(k + 2))
                && m == "mod"
            {
                out.test_modules.push(name.clone());
            }
            i = item_end(&toks, item);
            continue;
        }
        if let Tok::Ident(word) = &toks[i].tok
            && let Some(kind) = macro_kind(word)
            && at(i + 1) == Some(&Tok::Punct('!'))
            && at(i + 2) == Some(&Tok::Punct('('))
        {
            let j = macro_name_arg(&toks, i + 3);
            if let Some(Tok::Str(text)) = at(j) {
                if is_metric_name(text) {
                    out.literal_uses.push((text.clone(), kind, site(j)));
                }
            } else if let Some(id) = path_arg(&toks, j) {
                out.const_uses.push((id, kind, site(j)));
            }
            i = j;
            continue;
        }
        match &toks[i].tok {
            Tok::Ident(word) if word == "const" || word == "static" => {
                // `const NAME: &'static str = "…";` (`static` alike).
                let mut j = i + 1;
                if matches!(at(j), Some(Tok::Ident(w)) if w == "mut") {
                    j += 1;
                }
                if let (Some(Tok::Ident(id)), Some(Tok::Punct(':'))) = (at(j), at(j + 1)) {
                    let mut k = j + 2;
                    // The type: up to `=` (or `;`/`{` for anything else).
                    let mut ty = Vec::new();
                    while let Some(t) = at(k) {
                        if matches!(t, Tok::Punct('=' | ';' | '{')) {
                            break;
                        }
                        ty.push(t.clone());
                        k += 1;
                    }
                    let is_str = matches!(ty.first(), Some(Tok::Punct('&')))
                        && matches!(ty.last(), Some(Tok::Ident(s)) if s == "str")
                        && ty.len() <= 3;
                    if is_str
                        && at(k) == Some(&Tok::Punct('='))
                        && let Some(Tok::Str(text)) = at(k + 1)
                        && is_metric_name(text)
                    {
                        out.consts.push((id.clone(), text.clone(), site(k + 1)));
                    }
                    i = k;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every `.rs` file under `dir` worth scanning.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let ty = entry
            .file_type()
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", path.display()));
        if ty.is_dir() {
            if !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_str()) {
                rust_files(&path, out);
            }
        } else if ty.is_file() && path.extension().is_some_and(|e| e == "rs") && name != "tests.rs"
        {
            out.push(path);
        }
    }
}

/// The directory holding the submodules of the module in `file`.
fn submodule_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("")).to_owned();
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("mod" | "lib" | "main") | None => parent,
        Some(stem) => parent.join(stem),
    }
}

/// What the workspace records.
#[derive(Debug, Default)]
struct Found {
    /// Metric name → the kinds it is recorded as, each with where.
    uses: BTreeMap<String, BTreeMap<&'static str, Vec<Site>>>,
    /// Metric names defined as constants, with where (kind unknown until used).
    consts: BTreeMap<String, Vec<Site>>,
    files: usize,
}

fn scan_workspace() -> Found {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root
        .canonicalize()
        .unwrap_or_else(|e| panic!("workspace root {}: {e}", root.display()));
    assert!(
        root.join("Cargo.toml").is_file(),
        "no workspace at {}",
        root.display()
    );
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    let mut scans = Vec::new();
    let mut test_only: Vec<PathBuf> = Vec::new();
    for file in &files {
        let src = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let shown = file.strip_prefix(&root).unwrap_or(file).to_owned();
        let scan = scan(&shown, &src);
        let dir = submodule_dir(file);
        for m in &scan.test_modules {
            test_only.push(dir.join(format!("{m}.rs")));
            test_only.push(dir.join(m));
        }
        scans.push((file, scan));
    }
    let mut found = Found::default();
    let mut const_names: HashMap<String, HashSet<String>> = HashMap::new();
    let mut pending_const_uses = Vec::new();
    for (file, scan) in scans {
        if test_only.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        found.files += 1;
        for (name, kind, site) in scan.literal_uses {
            found
                .uses
                .entry(name)
                .or_default()
                .entry(kind.as_str())
                .or_default()
                .push(site);
        }
        for (ident, name, site) in scan.consts {
            const_names.entry(ident).or_default().insert(name.clone());
            found.consts.entry(name).or_default().push(site);
        }
        pending_const_uses.extend(scan.const_uses);
    }
    // A constant's kind is the kind of the macros naming it (when its
    // identifier is unambiguous across the workspace).
    for (ident, kind, site) in pending_const_uses {
        if let Some(names) = const_names.get(&ident)
            && names.len() == 1
        {
            for name in names {
                found
                    .uses
                    .entry(name.clone())
                    .or_default()
                    .entry(kind.as_str())
                    .or_default()
                    .push(site.clone());
            }
        }
    }
    found
}

#[test]
fn every_recorded_metric_is_in_the_catalog_and_every_entry_is_recorded() {
    let found = scan_workspace();
    assert!(found.files > 50, "only {} source files found", found.files);
    let catalog: BTreeMap<&str, MetricKind> = METRICS.iter().map(|m| (m.name, m.kind)).collect();
    let recorded: BTreeSet<&str> = found
        .uses
        .keys()
        .chain(found.consts.keys())
        .map(String::as_str)
        .collect();
    let mut problems = String::new();
    for name in &recorded {
        if !catalog.contains_key(name) {
            let site = found
                .uses
                .get(*name)
                .and_then(|k| k.values().flatten().next())
                .or_else(|| found.consts.get(*name).and_then(|s| s.first()));
            let kinds: Vec<&str> = found
                .uses
                .get(*name)
                .map(|k| k.keys().copied().collect())
                .unwrap_or_default();
            let _ = writeln!(
                problems,
                "missing from catalog::METRICS: {name} ({}) at {}",
                if kinds.is_empty() {
                    "kind unknown".to_owned()
                } else {
                    kinds.join("/")
                },
                site.map_or_else(String::new, ToString::to_string),
            );
        }
    }
    for (name, kind) in &catalog {
        if !recorded.contains(name) {
            let _ = writeln!(
                problems,
                "stale in catalog::METRICS: {name} ({}) is recorded nowhere",
                kind.as_str()
            );
        }
    }
    for (name, kinds) in &found.uses {
        if kinds.len() > 1 {
            let detail: Vec<String> = kinds
                .iter()
                .map(|(k, sites)| format!("{k} at {}", sites[0]))
                .collect();
            let _ = writeln!(
                problems,
                "recorded as different kinds: {name}: {}",
                detail.join(", ")
            );
        }
        if let Some(want) = catalog.get(name.as_str()) {
            for (kind, sites) in kinds {
                if *kind != want.as_str() {
                    let _ = writeln!(
                        problems,
                        "kind differs: {name} is a {} in the catalog, recorded as a {kind} at {}",
                        want.as_str(),
                        sites[0]
                    );
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the metric catalog (infrastructure/telemetry/src/catalog.rs) is out of date:\n{problems}"
    );
}

#[test]
fn the_scanner_finds_what_it_should_and_nothing_else() {
    let src = r####"
        // counter!("ordermon_in_a_comment_total")
        /* histogram!("ordermon_in_a /* nested */ block_seconds") */
        pub const NAME: &str = "ordermon_from_a_const_total";
        const OTHER: &'static str = "ordermon_static_lifetime";
        const NOT_A_NAME: &str = "ordermon-dashes";
        const NUMBER: u32 = 3;
        fn f(x: &str) {
            let _ = 'a';
            let _ = '"';
            let _ = '\'';
            let _ = b"counter!(\"ordermon_in_bytes_total\")";
            let _ = r#"counter!("ordermon_in_a_raw_string_total")"#;
            let _ = "gauge!(\"ordermon_in_a_string\")";
            metrics::counter!(
                "ordermon_next_line_total",
                "label" => "ordermon_label_value"
            )
            .increment(1);
            gauge!("ordermon_plain_gauge").set(1.0);
            metrics::histogram!(m::NAME, &labels).record(1.0);
            metrics::counter!(OTHER).increment(1);
            metrics::counter!(x).increment(1);
            metrics::describe_counter!("ordermon_described_only_total", "help");
            tracing::info!("ordermon_not_a_metric_total");
        }
        #[cfg(test)]
        mod tests {
            fn g() { metrics::counter!("ordermon_in_a_test_total").increment(1); }
        }
        #[cfg(test)]
        #[path = "elsewhere.rs"]
        mod helpers;
        #[cfg(test)]
        fn h() { metrics::gauge!("ordermon_in_a_test_fn").set(1.0); }
        fn after<'a>(x: &'a str) { metrics::gauge!("ordermon_after_tests").set(1.0); }
    "####;
    let scan = scan(Path::new("x.rs"), src);
    let literal: Vec<(&str, &str, usize)> = scan
        .literal_uses
        .iter()
        .map(|(n, k, s)| (n.as_str(), k.as_str(), s.line))
        .collect();
    assert_eq!(
        literal,
        [
            ("ordermon_next_line_total", "counter", 16),
            ("ordermon_plain_gauge", "gauge", 20),
            ("ordermon_after_tests", "gauge", 36),
        ]
    );
    let consts: Vec<(&str, &str)> = scan
        .consts
        .iter()
        .map(|(i, n, _)| (i.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        consts,
        [
            ("NAME", "ordermon_from_a_const_total"),
            ("OTHER", "ordermon_static_lifetime")
        ]
    );
    let uses: Vec<(&str, &str)> = scan
        .const_uses
        .iter()
        .map(|(i, k, _)| (i.as_str(), k.as_str()))
        .collect();
    assert_eq!(
        uses,
        [
            ("NAME", "histogram"),
            ("OTHER", "counter"),
            ("x", "counter")
        ]
    );
    assert_eq!(scan.test_modules, ["helpers"]);
}
