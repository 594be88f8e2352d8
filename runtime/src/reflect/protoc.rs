//! Files that declare an edition, compiled by Google's protoc, since
//! protox parses proto2 and proto3 only. protoc is the one `PROTOC` names,
//! else the copy the `vendored-protoc` feature carries; it reads the files
//! from a scratch directory and writes a descriptor set, whose editions
//! files [`super::editions`] lowers for prost-reflect.

use super::editions;
use super::error::SchemaError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles the files `editions` names, among `files` (every file by
/// name, pbpersist's own included), and gives each editions file of the
/// result as an encoded proto2 `FileDescriptorProto`.
pub(super) fn compile(
    files: &BTreeMap<&str, &str>,
    editions: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, SchemaError> {
    let Some((protoc, include)) = find() else {
        return Err(SchemaError::NoProtoc { file: editions.first().copied().unwrap_or_default().to_owned() });
    };
    let io = |what: &Path| {
        let what = what.display().to_string();
        move |source| SchemaError::Protoc { what, source }
    };
    let scratch = tempfile::tempdir().map_err(io(Path::new("a temporary directory")))?;
    for (name, text) in files {
        // Names are plain relative paths (checked before), so every file
        // lands inside the scratch directory.
        let path = scratch.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    // Stored names end in `.proto`, so this one is nobody's.
    let set = scratch.path().join("descriptors.pb");
    let mut command = Command::new(&protoc);
    command.current_dir(scratch.path()).arg("-I.");
    if let Some(include) = &include {
        command.arg(format!("-I{}", include.display()));
    }
    command.arg("--include_imports").arg(format!("--descriptor_set_out={}", set.display())).args(editions);
    let output = command.output().map_err(io(&protoc))?;
    if !output.status.success() {
        return Err(diagnostic(&String::from_utf8_lossy(&output.stderr)));
    }
    let bytes = std::fs::read(&set).map_err(io(&set))?;
    editions::lower(&bytes)
}

/// The protoc to run and the include directory of its well-known types.
fn find() -> Option<(PathBuf, Option<PathBuf>)> {
    let include = std::env::var_os("PROTOC_INCLUDE").filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(protoc) = std::env::var_os("PROTOC").filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(protoc), include.or_else(vendored_include)));
    }
    vendored().map(|protoc| (protoc, include.or_else(vendored_include)))
}

#[cfg(feature = "vendored-protoc")]
fn vendored() -> Option<PathBuf> {
    protoc_bin_vendored::protoc_bin_path().ok()
}

#[cfg(not(feature = "vendored-protoc"))]
fn vendored() -> Option<PathBuf> {
    None
}

#[cfg(feature = "vendored-protoc")]
fn vendored_include() -> Option<PathBuf> {
    protoc_bin_vendored::include_path().ok()
}

#[cfg(not(feature = "vendored-protoc"))]
fn vendored_include() -> Option<PathBuf> {
    None
}

/// protoc's first `file:line:column: message` line as a placed error; the
/// lines after it join the message.
fn diagnostic(stderr: &str) -> SchemaError {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let first = lines.first().copied().unwrap_or("protoc failed without a message");
    let rest = lines.get(1..).unwrap_or_default();
    let mut parts = first.splitn(4, ':');
    let file = parts.next().filter(|f| f.ends_with(".proto")).map(str::to_owned);
    let line: Option<usize> = parts.next().and_then(|l| l.trim().parse().ok());
    let column: Option<usize> = parts.next().and_then(|c| c.trim().parse().ok());
    let (line, column, message) = match (&file, line, column) {
        (Some(_), Some(l), Some(c)) => (Some(l), Some(c), parts.next().unwrap_or_default().trim()),
        (Some(f), _, _) => (None, None, first[f.len()..].trim_start_matches(':').trim()),
        _ => (None, None, first),
    };
    let message = std::iter::once(message).chain(rest.iter().copied()).collect::<Vec<_>>().join("; ");
    SchemaError::Compile { file, line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protoc_messages_are_placed() {
        let placed = diagnostic("shop.proto:4:3: \"Strin\" is not defined.\n");
        assert_eq!(placed.to_string(), "shop.proto:4:3: \"Strin\" is not defined.");
        let unplaced = diagnostic("shop.proto: File not found.\nother.proto:2:1: Import failed\n");
        assert_eq!(unplaced.to_string(), "shop.proto: File not found.; other.proto:2:1: Import failed");
        assert_eq!(diagnostic("").to_string(), "protoc failed without a message");
    }
}
