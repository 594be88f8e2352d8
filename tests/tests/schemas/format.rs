//! The stored format is readable with nothing but the `.proto` files and a
//! SQLite client: this test reads a database the way another language would,
//! with dynamic messages and no generated Rust types.

use pbpersist::Database;
use pbpersist_tests::demo::{Contact, Tower};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};

fn pool() -> DescriptorPool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    protox::compile(["demo.proto", "pbpersist/record.proto"], [dir])
        .map(|set| DescriptorPool::from_file_descriptor_set(set).unwrap())
        .unwrap()
}

fn read(conn: &rusqlite::Connection, pool: &DescriptorPool, oid: u64) -> (String, DynamicMessage, Vec<u64>) {
    let blob: Vec<u8> =
        conn.query_row("SELECT record FROM pb_object WHERE oid = ?1", [oid as i64], |r| r.get(0)).unwrap();
    let record =
        DynamicMessage::decode(pool.get_message_by_name("pbpersist.Record").unwrap(), blob.as_slice()).unwrap();
    let type_name = record.get_field_by_name("type").unwrap().as_str().unwrap().to_owned();
    let state = record.get_field_by_name("state").unwrap().as_bytes().unwrap().clone();
    let refs =
        record.get_field_by_name("refs").unwrap().as_list().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let message = DynamicMessage::decode(pool.get_message_by_name(&type_name).unwrap(), state).unwrap();
    (type_name, message, refs)
}

fn oid_of(value: &Value) -> u64 {
    value.as_message().unwrap().get_field_by_name("oid").unwrap().as_u64().unwrap()
}

#[test]
fn a_reader_with_only_the_proto_files_follows_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("format.db");
    {
        let db = Database::open(&path).unwrap();
        db.transact(|tx| {
            let mut r = Tower::new();
            r.set_name("Rapunzel's");
            r.set_width(1000.0);
            r.set_height(10.0);
            let r = tx.add(r)?;
            let mut p = Tower::new();
            p.set_name("Pisa");
            p.set_width(15.5);
            p.set_height(56.7);
            p.set_neighbor(r);
            let p = tx.add(p)?;
            let mut alice = Contact::new();
            alice.set_name("Alice");
            let alice = tx.add(alice)?;
            let mut bob = Contact::new();
            bob.set_name("Bob");
            bob.guardians_mut().push(alice);
            let bob = tx.add(bob)?;
            tx.root_mut()?.insert("pisa", p);
            tx.root_mut()?.insert("bob", bob);
            Ok(())
        })
        .unwrap();
    }

    let pool = pool();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let format: i64 = conn.query_row("SELECT value FROM pb_meta WHERE key = 'format'", [], |r| r.get(0)).unwrap();
    assert_eq!(format, pbpersist::storage::SqliteStorage::FORMAT_VERSION);

    let (root_type, root, root_refs) = read(&conn, &pool, 0);
    assert_eq!(root_type, "pbpersist.Root");
    let entries = root.get_field_by_name("entries").unwrap();
    let entries = entries.as_map().unwrap();
    let pisa_oid = oid_of(&entries[&prost_reflect::MapKey::String("pisa".into())]);
    let bob_oid = oid_of(&entries[&prost_reflect::MapKey::String("bob".into())]);
    let mut sorted = root_refs.clone();
    sorted.sort_unstable();
    let mut expected = vec![pisa_oid, bob_oid];
    expected.sort_unstable();
    assert_eq!(sorted, expected, "the record lists the root's references");

    let (t, pisa, refs) = read(&conn, &pool, pisa_oid);
    assert_eq!(t, "demo.Tower");
    assert_eq!(pisa.get_field_by_name("name").unwrap().as_str(), Some("Pisa"));
    assert_eq!(pisa.get_field_by_name("build_year").unwrap().as_i32(), Some(1900), "the schema default");
    let neighbor = oid_of(&pisa.get_field_by_name("neighbor").unwrap());
    assert_eq!(refs, vec![neighbor]);
    let (_, rapunzel, refs) = read(&conn, &pool, neighbor);
    assert_eq!(rapunzel.get_field_by_name("name").unwrap().as_str(), Some("Rapunzel's"));
    assert_eq!(rapunzel.get_field_by_name("width").unwrap().as_f32(), Some(1000.0));
    assert!(refs.is_empty());

    let (t, bob, refs) = read(&conn, &pool, bob_oid);
    assert_eq!(t, "demo.Contact");
    let guardians = bob.get_field_by_name("guardians").unwrap();
    let guardian = oid_of(&guardians.as_list().unwrap()[0]);
    assert_eq!(refs, vec![guardian]);
    let (_, alice, _) = read(&conn, &pool, guardian);
    assert_eq!(alice.get_field_by_name("name").unwrap().as_str(), Some("Alice"));

    let transactions: i64 = conn.query_row("SELECT count(*) FROM pb_transaction", [], |r| r.get(0)).unwrap();
    assert_eq!(transactions, 2, "one to create the root, one commit");
}

#[test]
fn the_record_type_matches_record_proto() {
    let pool = pool();
    let record = pool.get_message_by_name("pbpersist.Record").unwrap();
    let fields: Vec<(String, u32)> = record.fields().map(|f| (f.name().to_owned(), f.number())).collect();
    assert_eq!(fields, vec![("type".into(), 1), ("state".into(), 2), ("refs".into(), 3)]);
    let r = pbpersist::record::Record { r#type: "x.Y".into(), state: vec![8, 1].into(), refs: vec![1, 300] };
    let dynamic = DynamicMessage::decode(record, r.encode_to_vec().as_slice()).unwrap();
    assert_eq!(dynamic.encode_to_vec(), r.encode_to_vec());
}

/// Every version number docs/format.md states is the one the code writes.
#[test]
fn the_documented_format_versions_are_the_codes() {
    let doc = include_str!("../../../docs/format.md");
    let sqlite = pbpersist::storage::SqliteStorage::FORMAT_VERSION;
    let postgres = pbpersist::storage::PostgresStorage::FORMAT_VERSION;
    let top = format!("Format version: **{sqlite}** for SQLite, **{postgres}** for the\nPostgreSQL tables");
    assert!(doc.contains(&top), "the page's first paragraph says other versions");
    assert!(doc.contains(&format!("(the SQLite layout version, **{sqlite}**)")), "the SQLite section");
    assert!(doc.contains(&format!("the PostgreSQL layout version, **{postgres}**")), "the PostgreSQL section");
    // No other bold version number anywhere.
    let bold_numbers = doc.split("**").skip(1).step_by(2).filter(|s| s.chars().all(|c| c.is_ascii_digit())).count();
    assert_eq!(bold_numbers, 4, "two versions, each stated twice");
}
