//! The schema verbs: generate code from `.proto` files, and check them,
//! alone or against a database's stored schemas or a descriptor set.

use crate::Failure;
use crate::open::{Source, is_url, shown};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Compile errors as full diagnostics (file, line, column and the line).
pub fn diagnostic(e: pbpersist_build::Error) -> Failure {
    Failure(format!("{e:?}"))
}

pub fn config() -> pbpersist_build::Config {
    let mut c = pbpersist_build::Config::new();
    c.cargo_directives(false);
    c
}

pub fn generate(
    includes: &[PathBuf],
    out: &Path,
    check: bool,
    include_file: Option<String>,
    files: &[PathBuf],
) -> Result<ExitCode, Failure> {
    let mut config = config();
    if let Some(name) = include_file {
        config.include_file(name);
    }
    let generated = config.generate(files, includes).map_err(diagnostic)?;
    let mut stale = Vec::new();
    for file in &generated {
        let path = out.join(&file.name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(file.content.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(out).map_err(|e| Failure(format!("cannot create {}: {e}", out.display())))?;
            std::fs::write(&path, &file.content)
                .map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
            say!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        return Err(Failure(format!(
            "generated code is stale; run `cargo pbpersist generate` without --check:\n  {}",
            stale.join("\n  ")
        )));
    }
    if check {
        say!("{} file(s) up to date", generated.len());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn check(includes: &[PathBuf], against: Option<&str>, files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let new = config().descriptor_pool(files, includes).map_err(diagnostic)?;
    // Generating also runs pbpersist's own checks (options, unsupported features).
    config().generate(files, includes).map_err(diagnostic)?;
    let Some(against) = against else {
        say!("{} file(s) compile", files.len());
        return Ok(ExitCode::SUCCESS);
    };
    let old = old_schema(against)?;
    // Index changes break nothing; they say what the next build does.
    for c in pbpersist_build::index_changes(&old, &new) {
        say!("{c}");
    }
    let changes = pbpersist_build::breaking_changes(&old, &new);
    if changes.is_empty() {
        say!("no breaking changes against {}", shown(against));
        return Ok(ExitCode::SUCCESS);
    }
    for c in &changes {
        say!("{c}");
    }
    Err(Failure(format!("{} breaking change(s) against {}", changes.len(), shown(against))))
}

/// The schemas a database stores, compiled.
fn stored_schemas(database: &str) -> Result<prost_reflect::DescriptorPool, Failure> {
    let files = Source::open(database)?.schemas()?;
    Ok(pbpersist::reflect::Schemas::compile(&files)?.pool().clone())
}

/// The schema to compare with: a database's stored schemas, or a descriptor set.
fn old_schema(database: &str) -> Result<prost_reflect::DescriptorPool, Failure> {
    if is_url(database) {
        return stored_schemas(database);
    }
    let path = Path::new(database);
    let bytes = std::fs::read(path).map_err(|e| Failure(format!("cannot read {}: {e}", path.display())))?;
    if bytes.starts_with(b"SQLite format 3\0") {
        return stored_schemas(database);
    }
    config()
        .descriptor_pool_from_set(&bytes)
        .map_err(|e| Failure(format!("{} is neither a database nor a descriptor set: {e}", path.display())))
}
