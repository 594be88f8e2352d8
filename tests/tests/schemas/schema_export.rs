//! Schema out: every persistent type writes its `.proto` definition; the
//! exported files compile with pbpersist-build and with `pbpersist::reflect`
//! and read the types' bytes, and the database keeps them so tools need no
//! Rust types.

use pbpersist::Database;
use pbpersist::schema::ProtoSchema;
use pbpersist_tests::random::{Rng, editions_pool, messages, pool, random_message};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};

/// Compiles exported files as a user of another language would.
fn compile(files: &[(String, String)]) -> DescriptorPool {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source).unwrap();
    }
    let names: Vec<_> = files.iter().map(|(n, _)| dir.path().join(n)).collect();
    pbpersist_build::Config::new()
        .descriptor_pool(&names, &[dir.path()])
        .unwrap_or_else(|e| panic!("{e:?}\n{}", files.iter().map(|(n, s)| format!("==> {n}\n{s}")).collect::<String>()))
}

/// Compiles exported files as a program reading a database does.
fn reflect(files: &[(String, String)]) -> DescriptorPool {
    match pbpersist::reflect::Schemas::compile(files) {
        Ok(schemas) => schemas.pool().clone(),
        Err(e) => panic!("{}", pbpersist::report(&e)),
    }
}

#[test]
fn every_generated_type_exports_a_schema_that_reads_its_bytes() {
    exports_read_their_bytes(pool(), compile);
    exports_read_their_bytes(pool(), reflect);
}

/// Editions types export as proto2, proto3 or editions files, whichever says
/// everything: presence, delimited messages and closed enums survive.
#[test]
fn editions_types_export_a_schema_that_reads_their_bytes() {
    exports_read_their_bytes(editions_pool(), reflect);
    let files = exports_read_their_bytes(editions_pool(), compile);
    let text = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str()).unwrap_or_default();
    let mixed = text("editions.proto");
    assert!(mixed.contains("edition = \"2023\";"), "{mixed}");
    assert!(mixed.contains("int32 count = 1 [features.field_presence = IMPLICIT];"), "{mixed}");
    assert!(mixed.contains("string key = 8 [features.field_presence = LEGACY_REQUIRED];"), "{mixed}");
    assert!(mixed.contains(".editions.Leaf delimited = 14 [features.message_encoding = DELIMITED];"), "{mixed}");
    assert!(mixed.contains("option features.enum_type = CLOSED;"), "{mixed}");
    assert!(text("editions.defaults.proto").contains("syntax = \"proto3\";"), "proto3 says it all there");
}

fn exports_read_their_bytes(
    reference: DescriptorPool,
    compile: fn(&[(String, String)]) -> DescriptorPool,
) -> Vec<(String, String)> {
    let mut schema = ProtoSchema::new();
    for desc in messages(&reference) {
        let entry = pbpersist::object::lookup_type(desc.full_name()).unwrap();
        (entry.decode)(Default::default()).unwrap().describe_schema(&mut schema);
    }
    let files = schema.files();
    assert!(files.len() > 2, "{:?}", files.iter().map(|f| &f.0).collect::<Vec<_>>());
    let exported = compile(&files);
    let mut rng = Rng(77);
    for desc in messages(&reference) {
        if desc.parent_file().name().starts_with("google/") {
            // Well-known types are imported, not exported.
            continue;
        }
        let entry = pbpersist::object::lookup_type(desc.full_name()).unwrap();
        let bytes = (entry.decode)(random_message(&desc, &mut rng, 0).encode_to_vec().into()).unwrap().encode_state();
        let exported_desc =
            exported.get_message_by_name(desc.full_name()).unwrap_or_else(|| panic!("{} missing", desc.full_name()));
        let dynamic = DynamicMessage::decode(exported_desc, bytes.as_slice()).unwrap();
        // What the exported schema reads, pbpersist reads back to the same bytes.
        let again = (entry.decode)(dynamic.encode_to_vec().into()).unwrap().encode_state();
        assert_eq!(again, bytes, "{}", desc.full_name());
    }
    // The exported schema means what the original does: same presence,
    // encodings, enum openness and types.
    let changes = pbpersist_build::breaking_changes(&reference, &exported);
    assert!(changes.is_empty(), "{changes:#?}");
    files
}

#[test]
fn the_database_stores_the_schemas_of_what_it_holds() {
    let db = Database::in_memory().unwrap();
    let r = db
        .transact(|tx| {
            let mut c = pbpersist_tests::demo::Contact::new();
            c.set_name("Ann");
            c.address_mut().set_city("Oslo");
            tx.add(c)
        })
        .unwrap();
    let files = db.storage().schemas().unwrap();
    let demo = &files.iter().find(|(n, _)| n == "demo.proto").expect("demo.proto is stored").1;
    assert!(demo.contains("message Contact {"), "{demo}");
    assert!(demo.contains("(pbpersist.target) = \"demo.Contact\""), "{demo}");
    assert!(demo.contains("default = \"United States\""), "{demo}");
    let exported = compile(&files);
    db.transact(|tx| {
        let c = tx.get(r)?;
        let dynamic =
            DynamicMessage::decode(exported.get_message_by_name("demo.Contact").unwrap(), c.encode_to_vec().as_slice())
                .unwrap();
        assert_eq!(dynamic.get_field_by_name("name").unwrap().as_str(), Some("Ann"));
        Ok(())
    })
    .unwrap();
}
