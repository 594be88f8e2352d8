//! Stored schemas compiled and records decoded: every syntax pbpersist
//! stores, JSON, and each way a schema or record can be wrong.

use super::*;
use prost::Message as _;
use prost_reflect::{ReflectMessage as _, Value};

const SHOP: &str = "syntax = \"proto3\";
package shop;

import \"pbpersist/options.proto\";

message Item {
  string name = 1;
  int64 price = 2;
  repeated string tags = 3;
  pbpersist.Ref maker = 4 [(pbpersist.target) = \"shop.Maker\"];
}

message Maker {
  string name = 1;
}
";

/// A package mixing proto2 and proto3 features, in the syntax
/// `pbpersist::schema` writes for it.
const MIXED: &str = "// Written by hand, as pbpersist writes mixed packages.
edition = \"2023\";

package mixed;

import \"pbpersist/options.proto\";

enum Color {
  option features.enum_type = CLOSED;
  RED = 0;
  GREEN = 1;
}

message Part {
  int32 size = 1 [features.field_presence = LEGACY_REQUIRED];
  int32 count = 2 [features.field_presence = IMPLICIT];
  Inner inner = 3 [features.message_encoding = DELIMITED];
  repeated int32 marks = 4;
  Color color = 5;
  pbpersist.Ref owner = 6 [(pbpersist.target) = \"mixed.Part\"];
  map<string, Inner> named = 7;
  message Inner {
    int32 n = 1;
  }
}
";

/// A proto3 file using a type of the editions file.
const USER: &str =
    "syntax = \"proto3\";\npackage user;\nimport \"mixed.proto\";\nmessage Bin { mixed.Part part = 1; }\n";

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())).collect()
}

fn record(type_name: &str, state: Vec<u8>, refs: Vec<u64>) -> Vec<u8> {
    Record { r#type: type_name.to_owned(), state: state.into(), refs }.encode_to_vec()
}

fn item(schemas: &Schemas) -> Vec<u8> {
    let mut item = DynamicMessage::new(schemas.message("shop.Item").unwrap());
    item.set_field_by_name("name", Value::String("lamp".into()));
    item.set_field_by_name("price", Value::I64(1200));
    item.set_field_by_name("tags", Value::List(vec![Value::String("light".into())]));
    let mut maker = DynamicMessage::new(schemas.message("pbpersist.Ref").unwrap());
    maker.set_field_by_name("oid", Value::U64(9));
    item.set_field_by_name("maker", Value::Message(maker));
    item.encode_to_vec()
}

/// Whether protoc is at hand, for the editions file.
fn protoc_at_hand() -> bool {
    cfg!(feature = "vendored-protoc") || std::env::var_os("PROTOC").is_some_and(|p| !p.is_empty())
}

#[test]
fn a_record_of_a_stored_type_decodes_with_its_references() {
    let schemas = Schemas::compile(&files(&[("shop.proto", SHOP)])).unwrap();
    let decoded = schemas.decode(5, &record("shop.Item", item(&schemas), vec![9])).unwrap();
    assert_eq!((decoded.oid, decoded.type_name.as_str(), decoded.refs.as_slice()), (5, "shop.Item", &[9][..]));
    assert_eq!(decoded.state.get_field_by_name("name").unwrap().as_str(), Some("lamp"));
    // pbpersist's own types are always there: the root, trees, references.
    for own in ["pbpersist.Root", "pbpersist.Tree", "pbpersist.Ref"] {
        assert!(schemas.message(own).is_some(), "{own}");
    }
    assert!(Schemas::compile(&[]).unwrap().message("pbpersist.Root").is_some());
    // The pool names the stored files as the database does.
    assert!(schemas.pool().get_file_by_name("shop.proto").is_some());
}

#[test]
fn a_state_shows_as_protobuf_json() {
    let schemas = Schemas::compile(&files(&[("shop.proto", SHOP)])).unwrap();
    let decoded = schemas.decode(5, &record("shop.Item", item(&schemas), vec![9])).unwrap();
    assert_eq!(
        decoded.to_json().unwrap(),
        serde_json::json!({ "name": "lamp", "price": "1200", "tags": ["light"], "maker": { "oid": "9" } })
    );
}

#[test]
fn an_editions_package_decodes_as_its_features_say() {
    let stored = files(&[("mixed.proto", MIXED), ("user.proto", USER)]);
    if !protoc_at_hand() {
        let error = Schemas::compile(&stored).unwrap_err();
        assert!(matches!(&error, SchemaError::NoProtoc { file } if file == "mixed.proto"), "{error}");
        return;
    }
    let schemas = Schemas::compile(&stored).unwrap();
    let part = schemas.message("mixed.Part").unwrap();
    let field = |name: &str| part.get_field_by_name(name).unwrap();
    assert_eq!(field("size").cardinality(), prost_reflect::Cardinality::Required);
    assert!(field("inner").is_group());
    assert!(field("marks").is_packed());
    assert!(field("named").is_map());
    // What proto2 cannot say stays in the field's features, resolved.
    let presence = |name: &str| {
        let options = field(name).options().encode_to_vec();
        let options = DynamicMessage::decode(prost_types::FieldOptions::default().descriptor(), options.as_slice());
        let features = options.unwrap().get_field_by_name("features").unwrap().as_message().cloned().unwrap();
        features.get_field_by_name("field_presence").unwrap().as_enum_number()
    };
    assert_eq!((presence("count"), presence("size"), presence("color")), (Some(2), Some(3), Some(1)));
    // Custom options keep their bytes.
    let target = schemas.pool().get_extension_by_name("pbpersist.target").unwrap();
    assert_eq!(field("owner").options().get_extension(&target).as_str(), Some("mixed.Part"));
    // size = 3, inner as a group { n = 5 }, marks packed [1, 2], owner 4.
    let state = vec![0x08, 0x03, 0x1b, 0x08, 0x05, 0x1c, 0x22, 0x02, 0x01, 0x02, 0x32, 0x02, 0x08, 0x04];
    let decoded = schemas.decode(1, &record("mixed.Part", state, vec![4])).unwrap();
    assert_eq!(
        decoded.to_json().unwrap(),
        serde_json::json!({ "size": 3, "inner": { "n": 5 }, "marks": [1, 2], "owner": { "oid": "4" } })
    );
    // A proto3 file of the database uses the editions file's types.
    let bin = [0x0a, 0x02, 0x08, 0x07];
    let decoded = schemas.decode(2, &record("user.Bin", bin.to_vec(), vec![])).unwrap();
    assert_eq!(decoded.to_json().unwrap(), serde_json::json!({ "part": { "size": 7 } }));
}

#[test]
fn a_schema_that_does_not_compile_is_named_with_its_line() {
    let typo = "syntax = \"proto3\";\npackage bad;\n\nmessage M {\n  strin name = 1;\n}\n";
    let error = Schemas::compile(&files(&[("shop.proto", SHOP), ("bad.proto", typo)])).unwrap_err();
    let SchemaError::Compile { file, line, column, .. } = &error else { panic!("{error:?}") };
    assert_eq!((file.as_deref(), *line, *column), (Some("bad.proto"), Some(5), Some(3)), "{error}");
    assert!(error.to_string().starts_with("bad.proto:5:3: "), "{error}");
    // A parse error, and a type defined twice (pbpersist's own included).
    let unparsed = "syntax = \"proto3\";\nmessage M {\n  string name = 1\n}\n";
    let error = Schemas::compile(&files(&[("bad.proto", unparsed)])).unwrap_err();
    assert!(matches!(&error, SchemaError::Compile { line: Some(4), .. }), "{error}");
    let evil = "syntax = \"proto3\";\npackage pbpersist;\nmessage Ref { string oid = 1; }\n";
    let error = Schemas::compile(&files(&[("evil.proto", evil)])).unwrap_err();
    assert!(error.to_string().contains("evil.proto"), "{error}");
    // A missing import names the file that imports it.
    let orphan = "syntax = \"proto3\";\nimport \"gone.proto\";\n";
    let error = Schemas::compile(&files(&[("orphan.proto", orphan)])).unwrap_err();
    assert!(
        matches!(&error, SchemaError::Compile { file: Some(f), line: Some(2), .. } if f == "orphan.proto"),
        "{error}"
    );
}

#[test]
fn an_editions_file_that_does_not_compile_is_named_with_its_line() {
    if !protoc_at_hand() {
        return;
    }
    let typo = MIXED.replace("int32 count", "int33 count");
    let error = Schemas::compile(&files(&[("mixed.proto", &typo)])).unwrap_err();
    let SchemaError::Compile { file, line, .. } = &error else { panic!("{error:?}") };
    assert_eq!((file.as_deref(), *line), (Some("mixed.proto"), Some(16)), "{error}");
    let future = MIXED.replace("\"2023\"", "\"2099\"");
    assert!(Schemas::compile(&files(&[("mixed.proto", &future)])).is_err());
}

#[test]
fn names_outside_the_rules_are_refused() {
    for name in ["../x.proto", "/x.proto", "a//b.proto", "x.txt", "pbpersist/record.proto", "google/protobuf/any.proto"]
    {
        let error = Schemas::compile(&files(&[(name, "syntax = \"proto3\";\n")])).unwrap_err();
        assert!(matches!(&error, SchemaError::BadName { file, .. } if file == name), "{name}: {error}");
        assert!(check_file_name(name).is_err());
    }
    check_file_name("shop/v1/items.proto").unwrap();
    let twice = Schemas::compile(&files(&[("a.proto", SHOP), ("a.proto", SHOP)])).unwrap_err();
    assert!(matches!(twice, SchemaError::Twice { .. }));
}

#[test]
fn a_record_of_an_unknown_type_names_the_oid_and_the_type() {
    let schemas = Schemas::compile(&files(&[("shop.proto", SHOP)])).unwrap();
    let error = schemas.decode(17, &record("shop.Gone", vec![], vec![])).unwrap_err();
    assert!(matches!(&error, DecodeError::UnknownType { oid: 17, type_name } if type_name == "shop.Gone"));
    assert_eq!(error.to_string(), "object 17 is of type shop.Gone, which the stored schemas do not describe");
}

#[test]
fn a_malformed_state_or_record_is_an_error_naming_the_oid() {
    let schemas = Schemas::compile(&files(&[("shop.proto", SHOP)])).unwrap();
    let error = schemas.decode(3, &record("shop.Item", vec![0xff, 0xff, 0xff], vec![])).unwrap_err();
    assert!(matches!(&error, DecodeError::State { oid: 3, type_name, .. } if type_name == "shop.Item"));
    let report = crate::report(&error);
    assert!(report.starts_with("the state of object 3 does not decode as shop.Item: "), "{report}");
    let error = schemas.decode(4, &[0x0a, 0x05, b'x']).unwrap_err();
    assert!(matches!(error, DecodeError::Record { oid: 4, .. }), "{error}");
}

#[test]
fn editions_are_told_by_the_first_statement() {
    assert!(compile::declares_edition(MIXED));
    assert!(compile::declares_edition("/* a\n b */ edition=\"2024\";"));
    assert!(!compile::declares_edition(SHOP));
    assert!(!compile::declares_edition("syntax = \"proto2\";\nmessage M { optional int32 edition = 1; }\n"));
    assert!(!compile::declares_edition("editions = 1;"));
}
