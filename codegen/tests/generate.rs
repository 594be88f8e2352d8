//! Snapshot tests of generated code.

use std::path::Path;

fn proto_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../proto"))
}

fn generate(file: &str) -> String {
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[proto_dir().join(file)], &[proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    files.into_iter().map(|f| format!("==> {}\n{}", f.name, f.content)).collect()
}

#[test]
fn seed_tower_schema() {
    insta::assert_snapshot!(generate("seed/tower.proto"));
}

#[test]
fn demo_schema() {
    insta::assert_snapshot!(generate("demo.proto"));
}

/// `pbpersist::wkt` is code this generator wrote; it must match what the
/// generator writes now. `PBPERSIST_BLESS=1` rewrites it.
#[test]
fn the_runtime_well_known_types_are_current() {
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate_well_known_types()
        .generate(pbpersist_build::WELL_KNOWN_FILES, &[] as &[&str])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].name, "google.protobuf.rs");
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/src/wkt/generated.rs"));
    if std::env::var_os("PBPERSIST_BLESS").is_some() {
        std::fs::write(path, &files[0].content).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(on_disk == files[0].content, "runtime/src/wkt/generated.rs is stale: run with PBPERSIST_BLESS=1");
}

fn generate_corpus(file: &str) -> String {
    let corpus = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/corpus"));
    let files = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[corpus.join(file)], &[corpus, proto_dir()])
        .unwrap_or_else(|e| panic!("{e:?}"));
    files.into_iter().map(|f| format!("==> {}\n{}", f.name, f.content)).collect()
}

#[test]
fn rust_name_hazards() {
    insta::assert_snapshot!(generate_corpus("hazards.proto"));
}

#[test]
fn comments_deprecation_and_deep_packages() {
    insta::assert_snapshot!(generate_corpus("deep_package.proto"));
}

#[test]
fn aliases_and_closed_enums() {
    insta::assert_snapshot!(generate_corpus("enums.proto"));
}
