//! Editions files (`tests/editions/`): each wire feature, resolved at file,
//! field and enum level, gives the bytes protobuf specifies. The Python
//! interop test checks the same types byte for byte against Google's runtime.

use pbpersist::{Database, Persistent};
use pbpersist_tests::edition_files::editions::{self, Color, Leaf, Sample, Size, sample::Choice};
use pbpersist_tests::edition_files::editions::{defaults::Plain, legacy};
use prost::Message;

fn leaf(value: i32) -> Leaf {
    let mut l = Leaf::default();
    l.set_value(value);
    l
}

#[test]
fn implicit_presence_writes_no_zero_values_and_has_no_has() {
    let mut s = Sample::default();
    s.set_count(0);
    s.set_title("");
    s.set_color(Color::Unspecified);
    assert!(s.encode_to_vec().is_empty(), "zero values of implicit fields are not written");
    s.set_count(5);
    assert_eq!(s.encode_to_vec(), [0x08, 5]);
}

#[test]
fn explicit_presence_writes_zero_and_reads_defaults() {
    let mut s = Sample::default();
    assert!(!s.has_limit());
    assert_eq!(s.ratio(), 0.5, "the declared default");
    s.set_limit(0);
    assert!(s.has_limit());
    assert_eq!(s.encode_to_vec(), [0x28, 0], "a set zero is written");
    s.clear_limit();
    assert!(s.encode_to_vec().is_empty());
}

#[test]
fn legacy_required_is_checked_before_commit() {
    let db = Database::in_memory().unwrap();
    let err = db.transact(|tx| tx.add(Sample::default()).map(|_| ())).unwrap_err();
    assert!(pbpersist::report(&err).contains("key"), "{err}");
    let mut s = Sample::default();
    s.set_key("k");
    assert!(s.check_required().is_ok());
}

#[test]
fn expanded_and_packed_lists() {
    let mut s = Sample::default();
    s.expanded_mut().extend([1, 2]);
    assert_eq!(s.encode_to_vec(), [0x48, 1, 0x48, 2], "expanded at file level");
    let mut s = Sample::default();
    s.packed_mut().extend([1, -1]);
    assert_eq!(s.encode_to_vec(), [0x52, 2, 2, 1], "packed at field level (sint64 zigzag)");
    // Expanded input reads into a packed field and the other way round.
    let mut expanded = Sample::default();
    expanded.packed_mut().extend([1, -1]);
    assert_eq!(Sample::decode([0x50, 2, 0x50, 1].as_slice()).unwrap().packed(), expanded.packed());
    assert_eq!(Sample::decode([0x4a, 2, 1, 2].as_slice()).unwrap().expanded(), [1, 2]);
}

#[test]
fn delimited_messages_are_groups_on_the_wire() {
    let mut s = Sample::default();
    s.set_delimited(leaf(1));
    // Field 14: start group (14 << 3 | 3), the leaf, end group (14 << 3 | 4).
    assert_eq!(s.encode_to_vec(), [0x73, 0x08, 1, 0x74]);
    let mut s = Sample::default();
    s.set_prefixed(leaf(1));
    assert_eq!(s.encode_to_vec(), [0x6a, 2, 0x08, 1], "length-prefixed by default");
    let mut s = Sample::default();
    s.set_choice(Choice::ChoiceLeaf(leaf(1)));
    assert_eq!(s.encode_to_vec(), [0x93, 0x01, 0x08, 1, 0x94, 0x01], "a delimited oneof member");
    let mut s = Sample::default();
    s.leaves_mut().insert("a".into(), leaf(1));
    // Map values stay length-prefixed.
    assert_eq!(s.encode_to_vec(), [0x82, 0x01, 7, 0x0a, 1, b'a', 0x12, 2, 0x08, 1]);
    let decoded = Sample::decode([0x7b, 0x08, 2, 0x7c, 0x7b, 0x08, 3, 0x7c].as_slice()).unwrap();
    assert_eq!(decoded.delimited_list(), [leaf(2), leaf(3)]);
}

#[test]
fn closed_enums_keep_unknown_numbers_with_the_unknown_fields() {
    // size = 7 (closed, unknown) and color = 7 (open, unknown).
    let bytes = [0x30, 7, 0x18, 7];
    let s = Sample::decode(bytes.as_slice()).unwrap();
    assert!(!s.has_size(), "a closed enum's unknown number does not set the field");
    assert_eq!(s.color_raw().value(), 7, "an open enum keeps it in the field");
    assert_eq!(s.color(), Color::Unspecified);
    // Known fields first, then the unknown ones in the order read.
    assert_eq!(s.encode_to_vec(), [0x18, 7, 0x30, 7]);
    let mut s = Sample::default();
    s.set_size(Size::Large);
    assert_eq!(s.encode_to_vec(), [0x30, 2]);
    // A list of a closed enum: unknown numbers go to the unknown fields too.
    let s = Sample::decode([0x58, 1, 0x58, 9].as_slice()).unwrap();
    assert_eq!(s.sizes().len(), 1);
    assert_eq!(s.encode_to_vec(), [0x58, 1, 0x58, 9]);
}

#[test]
fn edition_2024_defaults_and_file_level_legacy_choices() {
    let mut p = Plain::default();
    p.set_count(0);
    p.numbers_mut().extend([1, 2]);
    assert_eq!(p.encode_to_vec(), [0x08, 0, 0x12, 2, 1, 2], "explicit presence and packed lists by default");
    assert!(p.has_count());

    let mut item = legacy::Item::default();
    item.set_child(legacy::Item::default());
    item.set_prefixed_child(legacy::Item::default());
    item.set_implicit(0);
    item.levels_mut().extend([legacy::Level::Low, legacy::Level::High].map(pbpersist::EnumValue::from));
    item.packed_levels_mut().push(legacy::Level::High.into());
    assert_eq!(
        item.encode_to_vec(),
        [0x18, 1, 0x18, 2, 0x22, 1, 2, 0x2b, 0x2c, 0x32, 0],
        "expanded and delimited from the file, packed and length-prefixed by field, implicit zero not written"
    );
    let open = legacy::Item::decode([0x48, 5].as_slice()).unwrap();
    assert_eq!(open.open_raw().value(), 5, "an open enum in a file of closed ones");
}

#[test]
fn edition_objects_commit_and_load() {
    let db = Database::in_memory().unwrap();
    let oid = db
        .transact(|tx| {
            let mut s = Sample::default();
            s.set_key("first");
            s.set_delimited(leaf(3));
            s.sizes_mut().push(Size::Small.into());
            let first = tx.add(s)?;
            let mut s = Sample::default();
            s.set_key("second");
            s.set_next(first);
            Ok(tx.add(s)?.oid())
        })
        .unwrap();
    db.transact(|tx| {
        let second = tx.get(pbpersist::Ref::<Sample>::new(oid))?;
        let first = tx.get(second.next().expect("the reference"))?;
        assert_eq!(first.key(), "first");
        assert_eq!(first.delimited().value(), 3);
        assert_eq!(<editions::Sample as Persistent>::TYPE_NAME, "editions.Sample");
        Ok(())
    })
    .unwrap();
}

/// A database holding editions objects stores their schema as an editions
/// file; a program without the Rust types reads the records with it.
#[test]
fn edition_objects_read_with_the_stored_schemas() {
    let db = Database::in_memory().unwrap();
    let (first, second) = db
        .transact(|tx| {
            let mut s = Sample::default();
            s.set_key("first");
            s.set_count(4);
            s.set_delimited(leaf(3));
            let first = tx.add(s)?;
            let mut s = Sample::default();
            s.set_key("second");
            s.set_next(first);
            Ok((first.oid(), tx.add(s)?.oid()))
        })
        .unwrap();
    let stored = db.storage().schemas().unwrap();
    let file = &stored.iter().find(|(n, _)| n == "editions.proto").expect("editions.proto is stored").1;
    assert!(file.contains("edition = \"2023\";"), "{file}");
    let schemas = pbpersist::reflect::Schemas::from_storage(db.storage()).unwrap();
    let mut session = db.storage().open_session().unwrap();
    session.begin(None).unwrap();
    let mut record = |oid: pbpersist::Oid| session.load(oid).unwrap().expect("stored").record;
    let decoded = schemas.decode(first.0, &record(first)).unwrap();
    assert_eq!(decoded.type_name, "editions.Sample");
    assert_eq!(
        decoded.to_json().unwrap(),
        serde_json::json!({ "count": 4, "key": "first", "delimited": { "value": 3 } })
    );
    let decoded = schemas.decode(second.0, &record(second)).unwrap();
    assert_eq!(decoded.refs, vec![first.0]);
    assert_eq!(decoded.to_json().unwrap()["next"], serde_json::json!({ "oid": first.0.to_string() }));
}
