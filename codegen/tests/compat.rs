//! The breaking-change check, one test per rule, and the changes it allows.

use pbpersist_build::{Config, IndexChange, Rule, breaking_changes, index_changes};

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

fn editions_rules(old: &str, new: &str) -> Vec<(Rule, String)> {
    let header = "edition = \"2023\";\npackage p;\n";
    breaking_changes(&pool(&format!("{header}{old}")), &pool(&format!("{header}{new}")))
        .into_iter()
        .map(|c| (c.rule, c.element))
        .collect()
}

#[test]
fn changing_presence_breaks() {
    let implicit = "message A { int32 x = 1 [features.field_presence = IMPLICIT]; }";
    let explicit = "message A { int32 x = 1; }";
    assert_eq!(editions_rules(implicit, explicit), vec![(Rule::PresenceChanged, "p.A.x".into())]);
    assert_eq!(editions_rules(explicit, implicit), vec![(Rule::PresenceChanged, "p.A.x".into())]);
    // The same change, set at file level.
    let file_implicit = "option features.field_presence = IMPLICIT;\nmessage A { int32 x = 1; }";
    assert_eq!(editions_rules(explicit, file_implicit), vec![(Rule::PresenceChanged, "p.A.x".into())]);
    // And across syntaxes: proto3 without `optional` is implicit.
    let proto3 = "syntax = \"proto3\";\npackage p;\nmessage A { int32 x = 1; }";
    let edition = "edition = \"2023\";\npackage p;\nmessage A { int32 x = 1; }";
    let changes: Vec<Rule> = breaking_changes(&pool(proto3), &pool(edition)).into_iter().map(|c| c.rule).collect();
    assert_eq!(changes, vec![Rule::PresenceChanged]);
    let same = "edition = \"2023\";\npackage p;\nmessage A { int32 x = 1 [features.field_presence = IMPLICIT]; }";
    assert!(breaking_changes(&pool(proto3), &pool(same)).is_empty(), "proto3 and implicit presence are the same");
}

#[test]
fn changing_message_encoding_breaks_and_list_encoding_does_not() {
    let prefixed = "message A { A a = 1; repeated int32 n = 2; }";
    let delimited = "message A { A a = 1 [features.message_encoding = DELIMITED]; repeated int32 n = 2; }";
    assert_eq!(editions_rules(prefixed, delimited), vec![(Rule::EncodingChanged, "p.A.a".into())]);
    let expanded = "message A { A a = 1; repeated int32 n = 2 [features.repeated_field_encoding = EXPANDED]; }";
    assert_eq!(editions_rules(prefixed, expanded), vec![], "readers accept packed and expanded lists alike");
}

#[test]
fn closing_an_enum_breaks_and_opening_it_does_not() {
    let open = "enum E { E_ZERO = 0; E_ONE = 1; }";
    let closed = "enum E { option features.enum_type = CLOSED; E_ZERO = 0; E_ONE = 1; }";
    assert_eq!(editions_rules(open, closed), vec![(Rule::EnumClosed, "p.E".into())]);
    assert_eq!(editions_rules(closed, open), vec![]);
}

#[test]
fn legacy_required_counts_as_required() {
    let explicit = "message A { int32 x = 1; }";
    let required = "message A { int32 x = 1 [features.field_presence = LEGACY_REQUIRED]; }";
    assert_eq!(editions_rules(explicit, required), vec![(Rule::RequiredAdded, "p.A.x".into())]);
}

#[test]
fn an_extension_number_keeps_its_type() {
    let base = "message A { extensions 100 to 199; }\n";
    let old = format!("{base}extend A {{ optional string nick = 100; repeated int32 badges = 101; }}");
    let retyped = format!("{base}extend A {{ optional A nick = 100; optional int32 badges = 101; }}");
    assert_eq!(
        rules(&old, &retyped),
        vec![(Rule::FieldTypeChanged, "p.nick".into()), (Rule::CardinalityChanged, "p.badges".into())]
    );
    // Compatible changes, a move into the message, and a removal pass.
    let moved =
        "message A { extensions 101 to 199; optional bytes nick = 100; }\nextend A { repeated int64 badges = 101; }";
    assert_eq!(rules(&old, moved), vec![]);
    assert_eq!(rules(&old, base), vec![]);
}

#[test]
fn index_changes_are_listed_and_break_nothing() {
    let header = "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\n";
    let old = pool(&format!(
        "{header}message A {{ string a = 1 [(pbpersist.index) = {{}}]; int64 b = 2 [(pbpersist.index) = {{}}]; \
         int64 c = 3 [(pbpersist.index) = {{}}]; string d = 4; string gone = 5 [(pbpersist.index) = {{}}]; }}"
    ));
    let new = pool(&format!(
        "{header}message A {{ string a = 1 [(pbpersist.index) = {{unique: true}}]; int64 b = 2 [(pbpersist.index) = {{}}]; \
         string c = 3 [(pbpersist.index) = {{}}]; string d = 4 [(pbpersist.index) = {{}}]; reserved 5; }}"
    ));
    let changes = index_changes(&old, &new);
    assert_eq!(
        changes,
        vec![
            IndexChange::Added { index: "p.A.d".into(), unique: false },
            IndexChange::Removed { index: "p.A.gone".into() },
            IndexChange::UniqueChanged { index: "p.A.a".into(), unique: true },
            IndexChange::KeyTypeChanged { index: "p.A.c".into(), from: "int64".into(), to: "string".into() },
        ]
    );
    assert_eq!(changes[3].to_string(), "index p.A.c: key type int64 -> string; built anew");
    assert_eq!(index_changes(&new, &new), vec![]);
    // The type change is breaking for the field itself, not for the index.
    assert_eq!(
        breaking_changes(&old, &new).into_iter().map(|c| c.rule).collect::<Vec<_>>(),
        vec![Rule::FieldTypeChanged]
    );
}

#[test]
fn composite_indexes_and_extents_are_listed_as_changes_too() {
    let header = "syntax = \"proto3\";\npackage p;\nimport \"pbpersist/options.proto\";\n";
    let fields = "string a = 1; int64 b = 2; int64 c = 3; Inner inner = 4; }\nmessage Inner { string city = 1; }";
    let old = pool(&format!(
        "{header}message A {{ option (pbpersist.composite_index) = {{fields: [\"a\", \"b\"]}}; \
         option (pbpersist.composite_index) = {{fields: [\"a\", \"c\"]}}; option (pbpersist.extent) = true; {fields}"
    ));
    let new = pool(&format!(
        "{header}message A {{ option (pbpersist.composite_index) = {{fields: [\"a\", \"b\"], unique: true}}; \
         option (pbpersist.composite_index) = {{fields: [\"a\", \"c\"]}}; \
         option (pbpersist.composite_index) = {{fields: [\"inner.city\"]}}; {}",
        fields.replace("int64 c", "string c")
    ));
    assert_eq!(
        index_changes(&old, &new),
        vec![
            IndexChange::Added { index: "p.A.inner.city".into(), unique: false },
            IndexChange::Removed { index: "p.A.extent".into() },
            IndexChange::UniqueChanged { index: "p.A.a+b".into(), unique: true },
            IndexChange::KeyTypeChanged {
                index: "p.A.a+c".into(),
                from: "(string,int64)".into(),
                to: "(string,string)".into()
            },
        ]
    );
}
