//! Stored `.proto` files to a descriptor pool, in memory: protox parses
//! and checks every file but those declaring an edition, which
//! [`super::protoc`] compiles; pbpersist's own files and protobuf's
//! well-known types are always at hand.

use super::error::SchemaError;
use super::protoc;
use prost_reflect::DescriptorPool;
use protox::file::{File, FileResolver, GoogleFileResolver};
use std::collections::BTreeMap;
use std::sync::Arc;

/// pbpersist's own files, by import name: in every pool, since roots,
/// references and trees are stored objects.
pub(super) const OWN: [(&str, &str); 3] = [
    ("pbpersist/options.proto", include_str!("../../../proto/pbpersist/options.proto")),
    ("pbpersist/record.proto", include_str!("../../../proto/pbpersist/record.proto")),
    ("pbpersist/tree.proto", include_str!("../../../proto/pbpersist/tree.proto")),
];

/// Whether `name` may name a stored `.proto` file: a relative path of
/// plain parts ending in `.proto`, outside the directories whose files
/// come with pbpersist and protobuf.
pub(super) fn check_name(name: &str) -> Result<(), SchemaError> {
    let plain = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let reason = if name.len() > 512 || !name.split('/').all(plain) {
        "a name is a relative path of letters, digits, '_', '-' and '.' without '.' or '..' parts"
    } else if !name.ends_with(".proto") {
        "a name ends in .proto"
    } else if name.starts_with("pbpersist/") || name.starts_with("google/protobuf/") {
        "files under pbpersist/ and google/protobuf/ come with pbpersist and cannot be replaced"
    } else {
        return Ok(());
    };
    Err(SchemaError::BadName { file: name.to_owned(), reason })
}

/// Whether a file's first statement is `edition = ...`, after blanks and
/// comments (a file's first statement names its syntax or edition).
pub(super) fn declares_edition(text: &str) -> bool {
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(line) = rest.strip_prefix("//") {
            rest = line.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    rest.strip_prefix("edition").is_some_and(|after| {
        !after.starts_with(|c: char| c.is_alphanumeric() || c == '_') && after.trim_start().starts_with('=')
    })
}

/// Compiles `files` (name, source) with pbpersist's own.
pub(super) fn compile(files: &[(String, String)]) -> Result<DescriptorPool, SchemaError> {
    let mut stored = BTreeMap::new();
    for (name, source) in files {
        check_name(name)?;
        if stored.insert(name.clone(), source.clone()).is_some() {
            return Err(SchemaError::Twice { file: name.clone() });
        }
    }
    let editions: Vec<&str> = stored.iter().filter(|(_, s)| declares_edition(s)).map(|(n, _)| n.as_str()).collect();
    let lowered = if editions.is_empty() {
        BTreeMap::new()
    } else {
        let all: BTreeMap<&str, &str> =
            stored.iter().map(|(n, s)| (n.as_str(), s.as_str())).chain(OWN.iter().copied()).collect();
        protoc::compile(&all, &editions)?
    };
    let stored = Arc::new(stored);
    let mut compiler = protox::Compiler::with_file_resolver(Stored { sources: stored.clone(), lowered });
    compiler.include_imports(true);
    let names = stored.keys().map(String::as_str).chain(OWN.iter().map(|(n, _)| *n));
    for name in names {
        compiler.open_file(name).map_err(|e| placed(&e, &stored))?;
    }
    Ok(compiler.descriptor_pool())
}

/// Where protox finds files: the lowered editions files, the stored
/// sources, pbpersist's own, then protobuf's.
struct Stored {
    sources: Arc<BTreeMap<String, String>>,
    lowered: BTreeMap<String, Vec<u8>>,
}

impl FileResolver for Stored {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if let Some(encoded) = self.lowered.get(name) {
            return File::decode_file_descriptor_proto(encoded.as_slice()).map_err(protox::Error::new);
        }
        if let Some(source) = self.sources.get(name) {
            return File::from_source(name, source);
        }
        if let Some((_, source)) = OWN.iter().find(|(n, _)| *n == name) {
            return File::from_source(name, source);
        }
        GoogleFileResolver::new().open_file(name)
    }
}

/// protox's error with its file and the line and column of its first label.
fn placed(error: &protox::Error, stored: &BTreeMap<String, String>) -> SchemaError {
    let file = error.file().map(str::to_owned);
    let text = file
        .as_deref()
        .and_then(|f| stored.get(f).map(String::as_str).or_else(|| OWN.iter().find(|(n, _)| *n == f).map(|(_, s)| *s)));
    let offset = miette::Diagnostic::labels(error).and_then(|mut labels| labels.next()).map(|l| l.offset());
    let (line, column) = match (text, offset) {
        (Some(text), Some(offset)) => line_and_column(text, offset).map_or((None, None), |(l, c)| (Some(l), Some(c))),
        _ => (None, None),
    };
    SchemaError::Compile { file, line, column, message: error.to_string() }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |n| n + 1);
    Some((line, before[start..].chars().count() + 1))
}
