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
