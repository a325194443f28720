//! `docs/architecture.md` lists every port the domain defines, so a new port
//! cannot land undocumented. (The order state table is checked by the order
//! module's own tests.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

#[test]
fn every_port_is_in_the_architecture_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("../docs/architecture.md")).unwrap();
    let mut ports = Vec::new();
    for entry in fs::read_dir(root.join("src/ports")).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub trait ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                ports.push(name);
            }
        }
    }
    assert!(ports.len() >= 20, "found only {ports:?}");
    let missing: Vec<&String> = ports
        .iter()
        .filter(|p| !doc.contains(&format!("| `{p}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md has no row for {missing:?}"
    );
}
