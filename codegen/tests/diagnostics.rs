//! Bad schemas give diagnostics with file, line and column, and show the line.

fn diagnose(source: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.proto");
    std::fs::write(&path, source).unwrap();
    let err = pbpersist_build::Config::new()
        .cargo_directives(false)
        .generate(&[&path], &[dir.path()])
        .expect_err("the schema is invalid");
    format!("{err:?}").replace(&dir.path().display().to_string(), "[dir]")
}

#[test]
fn syntax_error() {
    insta::assert_snapshot!(diagnose("syntax = \"proto3\";\nmessage A {\n  int32 x = ;\n}\n"));
}

#[test]
fn unknown_type() {
    insta::assert_snapshot!(diagnose("syntax = \"proto3\";\nmessage A {\n  Missing x = 1;\n}\n"));
}

#[test]
fn reference_to_an_unknown_message() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\nmessage A {\n  pbpersist.Ref x = 1 [(pbpersist.target) = \"Nope\"];\n}\n"
    ));
}

#[test]
fn reference_to_an_enum() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\nenum E { E_ZERO = 0; }\nmessage A {\n  pbpersist.Ref x = 1 [(pbpersist.target) = \"E\"];\n}\n"
    ));
}

#[test]
fn target_option_on_a_plain_field() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\nmessage A {\n  int64 x = 1 [(pbpersist.target) = \"A\"];\n}\n"
    ));
}

#[test]
fn a_nested_index_path_through_a_list() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\nmessage A {\n  \
         option (pbpersist.composite_index) = {fields: [\"homes.city\"]};\n  repeated B homes = 1;\n}\n\
         message B {\n  string city = 1;\n}\n"
    ));
}

#[test]
fn relative_targets_resolve_in_scope() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.proto");
    std::fs::write(
        &path,
        "syntax = \"proto3\";\npackage p.q;\nimport \"pbpersist/options.proto\";\nmessage A {\n  pbpersist.Ref x = 1 [(pbpersist.target) = \"B\"];\n}\nmessage B {}\n",
    )
    .unwrap();
    let files = pbpersist_build::Config::new().cargo_directives(false).generate(&[&path], &[dir.path()]).unwrap();
    assert_eq!(files[0].name, "p.q.rs");
    assert!(files[0].content.contains("::pbpersist::Ref<B>"), "{}", files[0].content);
}

#[test]
fn duplicate_field_number() {
    insta::assert_snapshot!(diagnose("syntax = \"proto3\";\nmessage A {\n  int32 x = 1;\n  int32 y = 1;\n}\n"));
}

#[test]
fn bad_default() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto2\";\nmessage A {\n  optional int32 x = 1 [default = \"text\"];\n}\n"
    ));
}

#[test]
fn unknown_import() {
    insta::assert_snapshot!(diagnose("syntax = \"proto3\";\nimport \"missing/file.proto\";\nmessage A {}\n"));
}

#[test]
fn an_edition_pbpersist_does_not_know() {
    insta::assert_snapshot!(diagnose("edition = \"2099\";\npackage p;\nmessage A {\n  int32 x = 1;\n}\n"));
}

#[test]
fn a_malformed_feature() {
    insta::assert_snapshot!(diagnose(
        "edition = \"2023\";\npackage p;\nmessage A {\n  int32 x = 1 [features.field_presence = SOMETIMES];\n}\n"
    ));
}

#[test]
fn a_malformed_custom_option() {
    insta::assert_snapshot!(diagnose(
        "syntax = \"proto3\";\npackage p;\nimport \"google/protobuf/descriptor.proto\";\nextend google.protobuf.FieldOptions {\n  int32 weight = 50000;\n}\nmessage A {\n  int32 x = 1 [(weight) = \"heavy\"];\n}\n"
    ));
}
