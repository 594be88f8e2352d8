//! The breaking-change check, one test per rule, and the changes it allows.

use pbpersist_build::{Config, Rule, breaking_changes};

fn pool(source: &str) -> prost_reflect::DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.proto"), source).unwrap();
    Config::new().descriptor_pool(&[dir.path().join("s.proto")], &[dir.path()]).unwrap()
}

fn rules(old: &str, new: &str) -> Vec<(Rule, String)> {
    let header = "syntax = \"proto2\";\npackage p;\nimport \"pbpersist/options.proto\";\n";
    breaking_changes(&pool(&format!("{header}{old}")), &pool(&format!("{header}{new}")))
        .into_iter()
        .map(|c| (c.rule, c.element))
        .collect()
}

#[test]
fn a_removed_message_breaks_unless_a_message_names_it_as_former() {
    assert_eq!(rules("message A {}", "message B {}"), vec![(Rule::MessageRemoved, "p.A".into())]);
    assert_eq!(rules("message A {}", "message B { option (pbpersist.former_names) = \"p.A\"; }"), vec![]);
}

#[test]
fn a_field_number_reused_with_another_type_breaks() {
    assert_eq!(
        rules("message A { optional string x = 1; }", "message A { optional int64 y = 1; }"),
        vec![(Rule::FieldTypeChanged, "p.A.y".into())]
    );
    assert_eq!(
        rules("message A { optional A x = 1; } message B {}", "message A { optional B x = 1; } message B {}"),
        vec![(Rule::FieldTypeChanged, "p.A.x".into())]
    );
}

#[test]
fn wire_compatible_type_changes_and_renamed_fields_pass() {
    assert_eq!(rules("message A { optional int32 x = 1; }", "message A { optional int64 x = 1; }"), vec![]);
    assert_eq!(rules("message A { optional sint32 x = 1; }", "message A { optional sint64 renamed = 1; }"), vec![]);
    assert_eq!(rules("message A { optional string x = 1; }", "message A { optional bytes x = 1; }"), vec![]);
    assert_eq!(
        rules("message A { optional int32 x = 1; }", "message A { optional int32 x = 1; optional int32 y = 2; }"),
        vec![]
    );
}

#[test]
fn a_removed_field_breaks_unless_its_number_is_reserved() {
    assert_eq!(
        rules("message A { optional int32 x = 1; }", "message A {}"),
        vec![(Rule::FieldRemovedNotReserved, "p.A.x".into())]
    );
    assert_eq!(rules("message A { optional int32 x = 1; }", "message A { reserved 1; }"), vec![]);
}

#[test]
fn adding_a_required_field_or_requiring_one_breaks() {
    assert_eq!(
        rules("message A {}", "message A { required int32 x = 1; }"),
        vec![(Rule::RequiredAdded, "p.A.x".into())]
    );
    assert_eq!(
        rules("message A { optional int32 x = 1; }", "message A { required int32 x = 1; }"),
        vec![(Rule::RequiredAdded, "p.A.x".into())]
    );
}

#[test]
fn changing_between_singular_and_repeated_breaks() {
    assert_eq!(
        rules("message A { optional string x = 1; }", "message A { repeated string x = 1; }"),
        vec![(Rule::CardinalityChanged, "p.A.x".into())]
    );
}

#[test]
fn moving_a_field_into_a_oneof_breaks() {
    assert_eq!(
        rules("message A { optional int32 x = 1; }", "message A { oneof o { int32 x = 1; } }"),
        vec![(Rule::OneofChanged, "p.A.x".into())]
    );
}

#[test]
fn removing_an_enum_value_breaks_unless_reserved() {
    assert_eq!(rules("enum E { A = 0; B = 1; }", "enum E { A = 0; }"), vec![(Rule::EnumValueRemoved, "p.B".into())]);
    assert_eq!(rules("enum E { A = 0; B = 1; }", "enum E { A = 0; reserved 1; }"), vec![]);
}

#[test]
fn retargeting_a_reference_breaks() {
    let old = "message A { optional pbpersist.Ref r = 1 [(pbpersist.target) = \"p.A\"]; } message B {}";
    let new = "message A { optional pbpersist.Ref r = 1 [(pbpersist.target) = \"p.B\"]; } message B {}";
    assert_eq!(rules(old, new), vec![(Rule::ReferenceTargetChanged, "p.A.r".into())]);
}

#[test]
fn the_example_schema_is_compatible_with_itself() {
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    let pool = Config::new().descriptor_pool(&[format!("{proto}/demo.proto")], &[proto]).unwrap();
    assert!(breaking_changes(&pool, &pool).is_empty());
}
