//! Front ends: what turns `.proto` files into descriptors.
//!
//! protox compiles by default (pure Rust, nothing to install). Where it
//! cannot parse a file (editions, the extension declarations of current
//! `descriptor.proto`), Google's protoc takes over: the one `PROTOC` names,
//! else the copy the `vendored-protoc` feature carries. With `PROTOC` set,
//! protoc compiles everything, as with prost-build. A descriptor set compiled
//! elsewhere (buf, protoc) enters through [`from_descriptor_set`].

use crate::editions;
use crate::error::{Error, SchemaError};
use crate::resolve;
use crate::source::Sources;
use prost_reflect::DescriptorPool;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Descriptors ready for conversion.
pub struct Compiled {
    /// Every file of the compile, editions files lowered to proto2.
    pub pool: DescriptorPool,
    /// The source text of each file, for rustdoc and spans.
    pub sources: Sources,
    /// The names of the files asked for, as opposed to their imports.
    pub requested: Vec<String>,
}

/// Compiles `protos` with `protoc` when given (`PROTOC` or the
/// configuration), else with protox and, where it fails, the vendored protoc.
pub fn compile(protos: &[&Path], includes: &[&Path], protoc: Option<&Path>) -> Result<Compiled, Error> {
    if let Some(protoc) = protoc {
        let include = std::env::var_os("PROTOC_INCLUDE").map(PathBuf::from).or_else(|| vendored().1);
        return with_protoc(protoc, include.as_deref(), protos, includes);
    }
    let protox_error = match with_protox(protos, includes) {
        Ok(compiled) => return Ok(compiled),
        Err(e) => e,
    };
    let (Some(protoc), include) = vendored() else { return Err(protox_error) };
    match with_protoc(&protoc, include.as_deref(), protos, includes) {
        Ok(compiled) => Ok(compiled),
        // protox's diagnostics are the richer ones, except in files that
        // protox cannot read at all.
        Err(protoc_error) if failed_in_editions_file(&protox_error, protos, includes) => Err(protoc_error),
        Err(_) => Err(protox_error),
    }
}

/// A descriptor set compiled elsewhere. Every file in it is requested but
/// protobuf's own (`google/protobuf/`), which such sets carry as imports:
/// their types are generated only where a field uses them.
pub fn from_descriptor_set(set: &[u8]) -> Result<Compiled, Error> {
    let lowered = editions::lower(set).map_err(|e| {
        Error::Schema(Box::new(SchemaError {
            message: e.to_string(),
            source_code: None,
            span: None,
            label: String::new(),
            help: Some(e.help().into()),
        }))
    })?;
    let pool = DescriptorPool::decode(lowered.as_slice()).map_err(|e| descriptor_error(&e))?;
    let requested =
        pool.files().map(|f| f.name().to_owned()).filter(|name| !name.starts_with("google/protobuf/")).collect();
    Ok(Compiled { pool, sources: Sources::default(), requested })
}

fn with_protox(protos: &[&Path], includes: &[&Path]) -> Result<Compiled, Error> {
    let mut compiler = protox::Compiler::with_file_resolver(resolve::resolver(includes));
    compiler.include_source_info(true).include_imports(true);
    for p in protos {
        compiler.open_file(p)?;
    }
    let requested = compiler.files().filter(|f| !f.is_import()).map(|f| f.name().to_owned()).collect();
    Ok(Compiled { pool: compiler.descriptor_pool(), sources: Sources::from_compiler(&compiler), requested })
}

/// The protoc of the `vendored-protoc` feature and its include directory.
fn vendored() -> (Option<PathBuf>, Option<PathBuf>) {
    #[cfg(feature = "vendored-protoc")]
    {
        (protoc_bin_vendored::protoc_bin_path().ok(), protoc_bin_vendored::include_path().ok())
    }
    #[cfg(not(feature = "vendored-protoc"))]
    {
        (None, None)
    }
}

fn with_protoc(protoc: &Path, wkt: Option<&Path>, protos: &[&Path], includes: &[&Path]) -> Result<Compiled, Error> {
    let scratch = tempfile::tempdir().map_err(|source| Error::Io { path: "a temporary directory".into(), source })?;
    for (name, text) in resolve::BUILTIN {
        let path = scratch.path().join(name);
        let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    }
    let set_path = scratch.path().join("set.pb");
    let mut search: Vec<PathBuf> = includes.iter().map(|p| p.to_path_buf()).collect();
    search.push(scratch.path().to_path_buf());
    search.extend(wkt.map(Path::to_path_buf));
    let mut command = Command::new(protoc);
    command.args(search.iter().map(|i| format!("-I{}", i.display())));
    command.arg("--include_imports").arg("--include_source_info");
    command.arg(format!("--descriptor_set_out={}", set_path.display()));
    command.args(protos);
    let output = command.output().map_err(|source| Error::Io { path: protoc.display().to_string(), source })?;
    if !output.status.success() {
        return Err(protoc_diagnostic(&String::from_utf8_lossy(&output.stderr), &search));
    }
    let set = std::fs::read(&set_path).map_err(|source| Error::Io { path: set_path.display().to_string(), source })?;
    let mut compiled = from_descriptor_set(&set)?;
    // Named as protoc found them: in the include directories, pbpersist's own
    // files or the well-known types.
    let searched: Vec<&Path> = search.iter().map(PathBuf::as_path).collect();
    compiled.requested = protos
        .iter()
        .map(|p| import_name(p, &searched).ok_or_else(|| Error::Unplaced { file: p.display().to_string() }))
        .collect::<Result<_, _>>()?;
    for file in compiled.pool.files() {
        let found = find(file.name(), &search);
        if let Some((path, text)) = found {
            compiled.sources.add(file.name(), path.display().to_string(), text);
        }
    }
    Ok(compiled)
}

/// The name protoc (and protox) gives a file on the command line: a path
/// that exists is named by its place inside the include directory that
/// holds it; one that does not is an import name, found inside one.
fn import_name(path: &Path, includes: &[&Path]) -> Option<String> {
    let joined = |p: &Path| p.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
    let placed = std::fs::canonicalize(path).ok().and_then(|absolute| {
        includes.iter().find_map(|dir| Some(joined(absolute.strip_prefix(std::fs::canonicalize(dir).ok()?).ok()?)))
    });
    placed.or_else(|| (path.is_relative() && includes.iter().any(|dir| dir.join(path).is_file())).then(|| joined(path)))
}

/// A file by import name (or by its path as written) and its text.
fn find(name: &str, search: &[PathBuf]) -> Option<(PathBuf, String)> {
    std::iter::once(PathBuf::from(name))
        .chain(search.iter().map(|dir| dir.join(name)))
        .find_map(|p| std::fs::read_to_string(&p).ok().map(|text| (p, text)))
}

/// protoc's first `file:line:column: message` as a diagnostic with its
/// span; the other lines follow in the help text.
fn protoc_diagnostic(stderr: &str, search: &[PathBuf]) -> Error {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let first = lines.first().copied().unwrap_or("protoc failed without a message");
    let rest = (lines.len() > 1).then(|| lines[1..].join("\n"));
    let located = parse_location(first).and_then(|(file, line, column, message)| {
        let (path, text) = find(file, search)?;
        let start = offset(&text, line, column)?;
        let end = start + token_len(&text[start..]);
        Some((miette::NamedSource::new(path.display().to_string(), text), start..end, message))
    });
    let (source_code, span, message) = match located {
        Some((source, span, message)) => (Some(source), Some(span.into()), message.to_owned()),
        None => (None, None, first.to_owned()),
    };
    let help = match rest {
        Some(rest) => Some(rest),
        None if message.contains("dition") => Some("pbpersist reads proto2, proto3 and editions 2023 and 2024".into()),
        None => None,
    };
    Error::Schema(Box::new(SchemaError { message, source_code, span, label: "here".into(), help }))
}

/// The length of the token at the start of `text`: a quoted string, a
/// (dotted) name, or one character.
fn token_len(text: &str) -> usize {
    if let Some(quoted) = text.strip_prefix('"') {
        return quoted.find('"').map_or(text.len(), |n| n + 2);
    }
    let name = text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(text.len());
    name.max(text.chars().next().map_or(0, char::len_utf8))
}

/// `file:line:column: message`, with 1-based line and column.
fn parse_location(line: &str) -> Option<(&str, usize, usize, &str)> {
    let mut parts = line.splitn(4, ':');
    let file = parts.next()?;
    let row: usize = parts.next()?.trim().parse().ok()?;
    let column: usize = parts.next()?.trim().parse().ok()?;
    Some((file, row, column, parts.next()?.trim()))
}

/// The byte offset of a 1-based line and column (in characters).
fn offset(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let within: usize = l.chars().take(column.saturating_sub(1)).map(char::len_utf8).sum();
            return Some(start + within);
        }
        start += l.len();
    }
    None
}

/// Whether protox failed in a file that declares an edition.
fn failed_in_editions_file(error: &Error, protos: &[&Path], includes: &[&Path]) -> bool {
    let Error::Compile(e) = error else { return false };
    let search: Vec<PathBuf> = includes.iter().map(|p| p.to_path_buf()).collect();
    let text = match e.file() {
        Some(file) => find(file, &search).map(|(_, t)| t),
        None => None,
    };
    let texts: Vec<String> = match text {
        Some(t) => vec![t],
        None => protos.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect(),
    };
    texts.iter().any(|t| declares_edition(t))
}

/// Whether a file begins with `edition = "..."` (after comments).
pub fn declares_edition(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .any(|l| l.strip_prefix("edition").is_some_and(|r| r.trim_start().starts_with('=')))
}

fn descriptor_error(e: &prost_reflect::DescriptorError) -> Error {
    Error::Schema(Box::new(SchemaError {
        message: format!("the file descriptor set is not valid: {e}"),
        source_code: None,
        span: None,
        label: String::new(),
        help: None,
    }))
}
