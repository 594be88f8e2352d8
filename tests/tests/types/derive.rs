//! Hand-written types with #[derive(Persistent)]: the Rust types say the
#![allow(clippy::unit_arg)] // `Ok(assert_eq!(..))` keeps one-line transactions readable.
//! protobuf types, public fields are tracked per object, and the result is the
//! same code as the type generated from the equivalent .proto
//! (`tests/proto/notes.proto`): identical bytes, one database.

use pbpersist::{Database, EnumValue, Enumeration, Meta, Persistent, Ref};
use pbpersist_tests::notes as generated;
use prost::Message;
use std::collections::BTreeMap;

/// A note, written by hand.
#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(message = "notes.Note")]
pub struct Note {
    #[pbpersist(tag = 1)]
    pub title: String,
    #[pbpersist(tag = 2, default = 3)]
    pub priority: Option<i32>,
    #[pbpersist(tag = 3)]
    pub tags: Vec<String>,
    #[pbpersist(tag = 4, message)]
    pub author: Option<Person>,
    #[pbpersist(tag = 5)]
    pub links: Vec<Ref<Note>>,
    #[pbpersist(tag = 6)]
    pub scores: BTreeMap<String, i64>,
    #[pbpersist(tag = 7)]
    pub mood: EnumValue<Mood>,
    #[pbpersist(tag = 8)]
    pub parent: Option<Ref<Note>>,
    #[pbpersist(tag = 9)]
    pub blob: Vec<u8>,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A person, written by hand.
#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(message = "notes.Person")]
pub struct Person {
    #[pbpersist(tag = 1)]
    pub name: String,
    #[pbpersist(meta)]
    meta: Meta,
}

/// A mood, written by hand.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Enumeration)]
#[pbpersist(enumeration = "notes.Mood")]
pub enum Mood {
    #[pbpersist(name = "MOOD_CALM")]
    Calm = 0,
    #[pbpersist(name = "MOOD_BUSY")]
    Busy = 1,
}

fn sample(link: Ref<Note>) -> Note {
    Note {
        title: "hand-written".into(),
        priority: Some(7),
        tags: vec!["x".into(), "y".into()],
        author: Some(Person { name: "Ann".into(), ..Default::default() }),
        links: vec![link],
        scores: [("k".to_owned(), -4)].into(),
        mood: Mood::Busy.into(),
        parent: Some(link),
        blob: vec![1, 2, 3],
        ..Default::default()
    }
}

#[test]
fn hand_written_and_generated_types_write_identical_bytes() {
    let link = Ref::new(pbpersist::Oid(9));
    let hand = sample(link);
    let bytes = hand.encode_to_vec();
    let gen_ = generated::Note::decode(bytes.as_slice()).unwrap();
    assert_eq!(gen_.title(), "hand-written");
    assert_eq!(gen_.priority(), 7);
    assert_eq!(gen_.author().name(), "Ann");
    assert_eq!(gen_.mood(), generated::Mood::Busy);
    assert_eq!(gen_.links(), &[link.cast()]);
    assert_eq!(gen_.encode_to_vec(), bytes, "the generated type writes the same bytes");
    assert_eq!(Note::decode(bytes.as_slice()).unwrap(), hand);
    assert_eq!(hand.refs(), gen_.refs());
    assert_eq!(Note::new().priority(), 3, "the hand-written default");
    assert_eq!(<Note as Persistent>::FIELDS, <generated::Note as Persistent>::FIELDS);
}

#[test]
fn hand_written_and_generated_types_share_one_database() {
    let db = Database::in_memory().unwrap();
    let r = db
        .transact(|tx| {
            let target = tx.add(Note::default())?;
            tx.add(sample(target))
        })
        .unwrap();
    // A second program built with the generated type.
    db.transact(|tx| {
        let n = tx.get_mut(r.cast::<generated::Note>())?;
        assert_eq!(n.title(), "hand-written");
        n.set_title("changed by the generated type");
        Ok(())
    })
    .unwrap();
    db.transact(|tx| {
        let n = tx.get(r)?;
        assert_eq!(n.title, "changed by the generated type");
        assert_eq!(n.author.as_ref().unwrap().name, "Ann");
        Ok(())
    })
    .unwrap();
}

#[test]
fn public_fields_are_tracked_per_object() {
    const { assert!(!<Note as Persistent>::TRACKS_FIELDS) };
    const { assert!(<generated::Note as Persistent>::TRACKS_FIELDS) };
    let db = Database::in_memory().unwrap();
    let r = db.transact(|tx| tx.add(Note::default())).unwrap();
    let written = db.stats().objects_written;
    db.transact(|tx| {
        let n = tx.get_mut(r)?;
        n.title = "set through a public field".into();
        assert!(n.is_changed());
        assert_eq!(n.changed_fields().len(), Note::FIELDS.len(), "any field may have changed");
        Ok(())
    })
    .unwrap();
    assert_eq!(db.stats().objects_written, written + 1);
    db.transact(|tx| Ok(assert_eq!(tx.get(r)?.title, "set through a public field"))).unwrap();
    // Accessors are there too, and reads through them mark nothing.
    let n = Note::new();
    assert_eq!(n.mood(), Mood::Calm);
    assert!(!n.is_changed());
}

#[test]
fn required_checks_and_unknown_fields_work_for_hand_written_types() {
    #[derive(Clone, PartialEq, Persistent)]
    #[pbpersist(message = "notes.Strict")]
    struct Strict {
        #[pbpersist(tag = 1, required)]
        name: Option<String>,
        #[pbpersist(meta)]
        meta: Meta,
    }
    let err = Strict::new().check_required().unwrap_err();
    assert_eq!(err.to_string(), "notes.Strict.name is required but not set");
    // Fields it does not know are kept.
    let bytes = sample(Ref::new(pbpersist::Oid(1))).encode_to_vec();
    let mut p = Person::decode(bytes.as_slice()).unwrap();
    p.set_name("rewritten");
    let back = generated::Note::decode(p.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.title(), "rewritten", "field 1 is `name` to Person and `title` to Note");
    assert_eq!(back.blob(), &[1, 2, 3]);
}

#[test]
fn a_hand_written_type_exports_a_proto_file_that_reads_its_bytes() {
    let files = Note::proto_files();
    assert_eq!(files.len(), 1);
    let (name, source) = &files[0];
    assert_eq!(name, "notes.proto");
    assert!(source.contains("message Person {") && source.contains("enum Mood {"), "{source}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), source).unwrap();
    let pool = pbpersist_build::Config::new().descriptor_pool(&[dir.path().join(name)], &[dir.path()]).unwrap();
    let bytes = sample(Ref::new(pbpersist::Oid(5))).encode_to_vec();
    let dynamic =
        prost_reflect::DynamicMessage::decode(pool.get_message_by_name("notes.Note").unwrap(), bytes.as_slice())
            .unwrap();
    assert_eq!(dynamic.get_field_by_name("title").unwrap().as_str(), Some("hand-written"));
    assert_eq!(dynamic.encode_to_vec(), bytes);
}

/// A framework that re-exports pbpersist; its users name the runtime through it.
mod framework {
    pub use pbpersist as db;
}

/// A type whose derive names the runtime by the framework's path.
#[derive(Clone, PartialEq, framework::db::Persistent)]
#[pbpersist(message = "notes.Tag", crate = "self::framework::db")]
pub struct Tag {
    #[pbpersist(tag = 1)]
    label: String,
    #[pbpersist(meta)]
    meta: framework::db::Meta,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, framework::db::Enumeration)]
#[pbpersist(enumeration = "notes.Shade", crate = "self::framework::db")]
pub enum Shade {
    Light = 0,
    Dark = 1,
}

#[test]
fn the_runtime_can_be_named_through_a_re_export() {
    let db = Database::in_memory().unwrap();
    let r = db
        .transact(|tx| {
            let mut tag = Tag::new();
            tag.set_label("red");
            tx.add(tag)
        })
        .unwrap();
    db.transact(|tx| Ok(assert_eq!(tx.get(r)?.label(), "red"))).unwrap();
    assert_eq!(Shade::from_i32(1), Some(Shade::Dark));
}
