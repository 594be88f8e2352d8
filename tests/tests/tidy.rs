//! Conventions of the codebase, checked so that they hold without a reviewer:
//! every Rust file says what it is for, the emitter's code templates stay
//! within the width rustfmt cannot enforce inside `quote!`, nothing in
//! the repository dates itself (history is the git log's) or talks of the
//! project's progress, and no module imports a module that imports it.

use std::path::{Path, PathBuf};

/// The directories of Rust code, every crate's.
const SOURCES: [&str; 10] =
    ["model", "macros", "codegen", "runtime", "server", "tests/src", "tests/tests", "bench", "examples", "fuzz"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Files under `dir` (relative to the root) ending in one of `exts`, skipping
/// build output and trybuild's cases.
fn files(dir: &str, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(dir)];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | "ui" | "snapshots" | "corpus" | ".git") {
                    stack.push(p);
                }
            } else if exts.iter().any(|e| name.ends_with(e)) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_rust_file_has_a_module_doc() {
    let mut missing = Vec::new();
    for dir in SOURCES {
        for file in files(dir, &[".rs"]) {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.contains("@generated") {
                continue;
            }
            // The first line that is not an attribute or blank is the module doc.
            let first = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with("#!["));
            if !first.is_some_and(|l| l.starts_with("//!")) {
                missing.push(relative(&file));
            }
        }
    }
    assert!(missing.is_empty(), "files without a `//!` module doc: {missing:#?}");
}

/// rustfmt leaves `quote!` bodies alone, so the emitter's templates are
/// kept to the workspace width by this test instead.
#[test]
fn code_templates_fit_the_width() {
    let width = 120;
    let mut long = Vec::new();
    for file in files("model/src", &[".rs"]) {
        for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            if line.chars().count() > width {
                long.push(format!("{}:{}", relative(&file), i + 1));
            }
        }
    }
    assert!(long.is_empty(), "lines over {width} characters: {long:#?}");
}

/// A calendar date such as `2025-01-31` in `line`, if any.
fn date_in(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    (0..b.len().saturating_sub(9)).find_map(|i| {
        let s = &b[i..i + 10];
        let digits = |r: std::ops::Range<usize>| s[r].iter().all(u8::is_ascii_digit);
        let shape = digits(0..4) && s[4] == b'-' && digits(5..7) && s[7] == b'-' && digits(8..10);
        let bounded = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        (shape && bounded && s.starts_with(b"20")).then(|| &line[i..i + 10])
    })
}

#[test]
fn nothing_dates_itself() {
    // Phrases of a lab notebook; the words alone ("session") are technical terms here.
    let phrases = [
        "first session",
        "second session",
        "third session",
        "fourth session",
        "fifth session",
        "sitting",
        "that day",
        "earlier today",
        "yesterday",
        "in the last run",
    ];
    let mut found = Vec::new();
    let mut texts = files("docs", &[".md"]);
    texts.extend(["README.md", "ARCHITECTURE.md"].map(|f| root().join(f)));
    for dir in SOURCES {
        texts.extend(files(dir, &[".rs", ".md"]));
    }
    for file in texts {
        if file.ends_with("tests/tests/tidy.rs") {
            continue;
        }
        for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let lower = line.to_lowercase();
            // A toolchain's version string carries its release date.
            let date = date_in(line).filter(|_| !lower.contains("rustc "));
            if let Some(what) = date.or_else(|| phrases.into_iter().find(|p| lower.contains(p))) {
                found.push(format!("{}:{}: {what}", relative(&file), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "dated notes: {found:#?}");
}

/// The docs describe the software, not the project's progress: no goals
/// met or missed, nothing "available now" or impossible "here".
#[test]
fn docs_talk_of_the_software_not_of_its_progress() {
    let phrases = ["goal", "available now", "installed here", "for now", "so far"];
    let mut found = Vec::new();
    let mut texts = files("docs", &[".md"]);
    texts.extend(files("macros/doc", &[".md"]));
    texts.extend(["README.md", "ARCHITECTURE.md"].map(|f| root().join(f)));
    for file in texts {
        for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let lower = line.to_lowercase();
            let words = |p: &str| {
                lower.match_indices(p).any(|(at, _)| {
                    let before = lower[..at].chars().next_back();
                    let after = lower[at + p.len()..].chars().next();
                    !before.is_some_and(char::is_alphanumeric)
                        && !after.is_some_and(|c| c.is_alphanumeric() && c != 's')
                })
            };
            if let Some(p) = phrases.into_iter().find(|p| words(p)) {
                found.push(format!("{}:{}: {p}", relative(&file), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "progress talk in the docs: {found:#?}");
}

#[test]
fn dates_are_recognised() {
    assert_eq!(date_in("measured 2026-11-24, after"), Some("2026-11-24"));
    assert_eq!(date_in("oid 12026-11-24"), None);
    assert_eq!(date_in("version 1.2.3"), None);
}

/// Rust source with comments, string and character literals blanked, so
/// that paths are found only in code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i..].starts_with(b"r\"") || b[i..].starts_with(b"r#") {
            // A raw string: its closing quote is followed by as many `#`.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 1 + hashes + 1;
            i = text.get(start..).and_then(|t| t.find(&close)).map_or(b.len(), |e| start + e + close.len());
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') || b[i..].starts_with(b"'\\") {
            // A character literal; a lifetime has no closing quote.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// The module path of each Rust file of a crate whose root is `src/lib.rs`
/// or `src/main.rs`.
fn modules_of(src: &Path) -> Vec<(Vec<String>, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "bin") {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut path: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                path.pop();
            }
            out.push((path, p));
        }
    }
    out
}

/// The paths a file names through `crate::` or `super::`, resolved to
/// absolute module paths (the first segments after `crate`), including
/// each name of a braced `use` group.
fn named_paths(module: &[String], is_mod_file: bool, code: &str) -> Vec<Vec<String>> {
    let tokens: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '{' || c == '}' || c == ',' || c == '$'))
        .filter(|t| !t.is_empty())
        .collect();
    let text = tokens.join(" ");
    let mut out = Vec::new();
    // `super` from `a/b.rs` is `a`; from `a/b/mod.rs` it is also `a`.
    let parent = |m: &[String]| m[..m.len().saturating_sub(1)].to_vec();
    let _ = is_mod_file;
    let mut rest = text.as_str();
    while let Some(at) = rest.find("crate::").into_iter().chain(rest.find("super::")).min() {
        let before = &rest[..at];
        let head_is_crate = rest[at..].starts_with("crate::");
        let after = &rest[at + 7..];
        rest = after;
        // `$crate` belongs to a macro's caller, and `pub(crate)` is no path.
        if before.ends_with('$') || before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut base = if head_is_crate { Vec::new() } else { parent(module) };
        let mut tail = after;
        while let Some(t) = tail.strip_prefix("super::") {
            base = parent(&base);
            tail = t;
        }
        if let Some(group) = tail.strip_prefix('{') {
            // A braced group: each first segment at depth 0.
            let mut depth = 0;
            let mut name = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if depth == 0 && at_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if !name.is_empty() => {
                        let mut p = base.clone();
                        p.push(std::mem::take(&mut name));
                        out.push(p);
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                base.push(name);
                out.push(base);
            }
        } else {
            let first: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let mut p = base;
            if !first.is_empty() {
                p.push(first);
            }
            out.push(p);
        }
    }
    out
}

/// The names a crate root re-exports (`pub use a::b::{C, D};`), each with
/// the module it comes from.
fn root_exports(files: &[(Vec<String>, PathBuf)]) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Some((_, root)) = files.iter().find(|(m, _)| m.is_empty()) else { return out };
    let code = code_only(&std::fs::read_to_string(root).unwrap());
    for statement in code.split(';') {
        let Some(at) = statement.find("pub use ") else { continue };
        let path = statement[at + 8..].trim();
        let (module, names) = match path.split_once("::{") {
            Some((module, names)) => (module, names.trim_end_matches('}').split(',').collect::<Vec<_>>()),
            None => match path.rsplit_once("::") {
                Some((module, name)) => (module, vec![name]),
                None => continue,
            },
        };
        let module: Vec<String> =
            module.trim_start_matches("crate::").split("::").map(|s| s.trim().to_string()).collect();
        for name in names {
            let name = name.split(" as ").last().unwrap_or(name).trim();
            if !name.is_empty() && name != "self" {
                out.insert(name.to_string(), module.clone());
            }
        }
    }
    out
}

/// At every level of every crate, the child modules of a module depend on
/// each other (what a module's descendants name counts as the module's) in
/// one direction only: no module reaches, through its siblings, back to
/// itself. A circle means two modules that cannot be read, tested or moved
/// apart.
#[test]
fn no_module_imports_a_module_that_imports_it() {
    let crates = ["model", "codegen", "cli", "macros", "runtime", "server", "tests"];
    let mut circles = Vec::new();
    for krate in crates {
        let src = root().join(krate).join("src");
        let files = modules_of(&src);
        let known: std::collections::BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
        let exports = root_exports(&files);
        // Edges between siblings: from `a::x...` to `a::y...`, as (a, x, y).
        let mut edges: std::collections::BTreeMap<Vec<String>, std::collections::BTreeSet<(String, String)>> =
            Default::default();
        for (module, file) in &files {
            let is_mod = file.file_name().is_some_and(|n| n == "mod.rs");
            let code = code_only(&std::fs::read_to_string(file).unwrap());
            for mut target in named_paths(module, is_mod, &code) {
                // A name the crate root re-exports stands for its module.
                if let [name] = target.as_slice()
                    && let Some(home) = exports.get(name)
                {
                    target = home.clone();
                }
                // The longest known module that is a prefix of the target.
                let target: Vec<String> = (0..=target.len())
                    .rev()
                    .map(|n| target[..n].to_vec())
                    .find(|p| known.contains(p))
                    .unwrap_or_default();
                let common = module.iter().zip(&target).take_while(|(a, b)| a == b).count();
                if common < module.len() && common < target.len() {
                    edges
                        .entry(module[..common].to_vec())
                        .or_default()
                        .insert((module[common].clone(), target[common].clone()));
                }
            }
        }
        for (parent, pairs) in &edges {
            for (from, to) in pairs {
                // A path back from `to` to `from` closes a circle.
                let mut seen = std::collections::BTreeSet::new();
                let mut stack = vec![(to.clone(), vec![from.clone(), to.clone()])];
                while let Some((at, path)) = stack.pop() {
                    if !seen.insert(at.clone()) {
                        continue;
                    }
                    for (a, b) in pairs.iter().filter(|(a, _)| *a == at) {
                        let mut next = path.clone();
                        next.push(b.clone());
                        if b == from {
                            let _ = a;
                            let place = if parent.is_empty() {
                                krate.to_string()
                            } else {
                                format!("{krate}::{}", parent.join("::"))
                            };
                            circles.push(format!("{place}: {}", next.join(" -> ")));
                            stack.clear();
                            break;
                        }
                        stack.push((b.clone(), next));
                    }
                }
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(circles.is_empty(), "modules in a circle: {circles:#?}");
}
