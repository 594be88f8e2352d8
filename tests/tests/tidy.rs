//! Conventions of the codebase, checked so that they hold without a reviewer:
//! every Rust file says what it is for, the emitter's code templates stay
//! within the width rustfmt cannot enforce inside `quote!`, and nothing in
//! the repository dates itself (history is the git log's).

use std::path::{Path, PathBuf};

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
    for dir in ["model", "macros", "codegen", "runtime", "tests/src", "tests/tests", "bench", "examples", "fuzz"] {
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
    for dir in ["model", "macros", "codegen", "runtime", "tests/src", "tests/tests", "bench", "examples", "fuzz"] {
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

#[test]
fn dates_are_recognised() {
    assert_eq!(date_in("measured 2026-11-24, after"), Some("2026-11-24"));
    assert_eq!(date_in("oid 12026-11-24"), None);
    assert_eq!(date_in("version 1.2.3"), None);
}
