//! The layers of `src/`: every module imports only from its own layer or the
//! layers below it. The layer of each top-level module is read from the table
//! in `src/lib.rs` (written there once); every `crate::…` path and every
//! `super::` that climbs out of a top-level module is checked against it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level module name → layer number, from the `| L<n> | `a`, `b` | … |`
/// rows of the crate docs.
fn layers() -> HashMap<String, u32> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let mut layers = HashMap::new();
    for line in lib.lines() {
        let Some(row) = line.trim().strip_prefix("//! | L") else {
            continue;
        };
        let mut cells = row.split('|');
        let layer: u32 = cells
            .next()
            .and_then(|n| n.trim().parse().ok())
            .expect("a layer row starts with L<number>");
        let modules = cells.next().expect("a layer row names its modules");
        for name in modules.split(',') {
            let name = name.trim().trim_matches('`');
            assert!(!name.is_empty(), "empty module name in layer L{layer}");
            assert!(
                layers.insert(name.to_owned(), layer).is_none(),
                "module `{name}` is in two layers"
            );
        }
    }
    assert!(
        layers.len() >= 5,
        "the layer table of src/lib.rs was not found"
    );
    layers
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src/` (`backend/sqlite/mod.rs` →
/// `["backend", "sqlite"]`).
fn module_path(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src()).expect("below src/");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_owned());
    }
    parts
}

/// Every `crate::<name>` target on a line of code (also in `crate::{a, b}`).
fn crate_targets(code: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `silmari_store::…` or `$crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            let inside = group.split('}').next().unwrap_or("");
            for item in inside.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    targets.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            targets.push(name);
        }
    }
    targets
}

/// `mod name {`, `pub(crate) mod name {`, …: a module written inline.
fn is_inline_mod(code: &str) -> bool {
    let code = code
        .strip_prefix("pub(crate) ")
        .or_else(|| code.strip_prefix("pub(super) "))
        .or_else(|| code.strip_prefix("pub "))
        .unwrap_or(code);
    code.strip_prefix("mod ")
        .and_then(|rest| rest.strip_suffix(" {"))
        .is_some_and(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// Lists every import that points upward (or cannot be checked), naming the
/// file and the line.
fn violations(layers: &HashMap<String, u32>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let module = module_path(&file);
        if module == ["lib"] {
            continue; // the root declares the modules
        }
        let Some(top) = module.first() else {
            continue;
        };
        let shown = file
            .strip_prefix(src().parent().unwrap())
            .unwrap()
            .display();
        let Some(&own) = layers.get(top) else {
            found.push(format!(
                "{shown}: module `{top}` has no layer in the table of src/lib.rs"
            ));
            continue;
        };
        let text = fs::read_to_string(&file).expect("read a source file");
        // Indentations of the inline `mod name {` blocks the line is in.
        let mut inline: Vec<usize> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let code = line.trim_start();
            let indent = line.len() - code.len();
            if code.starts_with("//") {
                continue;
            }
            if code == "}" && inline.last() == Some(&indent) {
                inline.pop();
            }
            if is_inline_mod(code) {
                inline.push(indent);
            }
            let at = format!("{shown}:{}", index + 1);
            for target in crate_targets(code) {
                match layers.get(&target) {
                    Some(&layer) if layer > own => found.push(format!(
                        "{at}: `{top}` (L{own}) imports `{target}` (L{layer}), a higher layer: {}",
                        code.trim()
                    )),
                    Some(_) => {}
                    None => found.push(format!(
                        "{at}: `crate::{target}` is not a module of the layer table; \
                         import items by their module path: {}",
                        code.trim()
                    )),
                }
            }
            // `super::` climbing to the crate root reaches any module unchecked.
            let climbs = code.matches("super::").count();
            if code.contains("super::") && climbs >= module.len() + inline.len() {
                found.push(format!(
                    "{at}: `super::` climbs out of `{top}` to the crate root; use `crate::…`: {}",
                    code.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn imports_only_point_down_the_layers() {
    let layers = layers();
    let found = violations(&layers);
    assert!(
        found.is_empty(),
        "imports against the layers of src/lib.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let layers = layers();
    let lib = fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    for line in lib.lines() {
        let line = line.trim();
        let Some(name) = line
            .strip_prefix("mod ")
            .or_else(|| line.strip_prefix("pub mod "))
            .and_then(|rest| rest.strip_suffix(';'))
        else {
            continue;
        };
        assert!(
            layers.contains_key(name),
            "module `{name}` is declared in src/lib.rs but has no layer in its table"
        );
    }
}

#[test]
fn the_check_sees_crate_paths_in_every_form() {
    assert_eq!(crate_targets("use crate::model::{A, B};"), ["model"]);
    assert_eq!(
        crate_targets("use crate::{error::Error, store::Store};"),
        ["error", "store"]
    );
    assert_eq!(
        crate_targets("let x = crate::validate::page_limit(n)?;"),
        ["validate"]
    );
    assert!(crate_targets("use silmari_store::crate_like::X;").is_empty());
    assert_eq!(
        module_path(&src().join("backend/sqlite/mod.rs")),
        ["backend", "sqlite"]
    );
    assert_eq!(module_path(&src().join("health.rs")), ["health"]);
}
