//! Transaction behaviour that is not per backend: type-level guarantees,
//! decoding of hostile bytes, and records damaged inside a SQLite file.
//! The backend-generic tests are the conformance suite (`pbpersist::conformance`), run from `backends.rs`.

use pbpersist::{Database, Error, Oid};
use pbpersist_tests::bank::{Counter, Node};
use pbpersist_tests::scratch_dir;

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn database_is_send_and_sync_and_connections_are_send() {
    assert_send_sync::<Database>();
    fn assert_send<T: Send>() {}
    assert_send::<pbpersist::Connection>();
}

#[test]
fn ten_thousand_levels_of_nesting_are_an_error_not_a_stack_overflow() {
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        let mut head = vec![0x12];
        prost::encoding::encode_varint(bytes.len() as u64, &mut head);
        head.extend_from_slice(&bytes);
        bytes = head;
    }
    assert!(<Node as prost::Message>::decode(bytes.as_slice()).is_err());
}

#[test]
fn unknown_types_truncated_records_and_bad_states_are_typed_errors_naming_the_oid() {
    use prost::Message;
    let dir = scratch_dir();
    let path = dir.path().join("bad.db");
    let db = Database::open(&path).unwrap();
    let (good, a, b, c) = db
        .transact(|tx| {
            Ok((tx.add(Counter::new())?, tx.add(Counter::new())?, tx.add(Counter::new())?, tx.add(Counter::new())?))
        })
        .unwrap();
    drop(db);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let set = |oid: Oid, record: Vec<u8>| {
        conn.execute("UPDATE pb_object SET record = ?1 WHERE oid = ?2", rusqlite::params![record, oid.0 as i64])
            .unwrap();
    };
    let unknown = pbpersist::record::Record { r#type: "elsewhere.Thing".into(), state: vec![].into(), refs: vec![] };
    set(a.oid(), unknown.encode_to_vec());
    let full = pbpersist::record::Record { r#type: "bank.Counter".into(), state: vec![8, 150, 1].into(), refs: vec![] };
    set(b.oid(), full.encode_to_vec()[..full.encode_to_vec().len() - 1].to_vec());
    let bad_state =
        pbpersist::record::Record { r#type: "bank.Counter".into(), state: vec![8, 0xff].into(), refs: vec![] };
    set(c.oid(), bad_state.encode_to_vec());

    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        match tx.get_object(a.oid()) {
            Err(Error::UnknownType { oid, type_name }) => {
                assert_eq!(oid, a.oid());
                assert_eq!(type_name, "elsewhere.Thing");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(tx.get(a), Err(Error::WrongType { oid, .. }) if oid == a.oid()));
        assert!(matches!(tx.get(b), Err(Error::Corrupt { oid, .. }) if oid == b.oid()));
        assert!(matches!(tx.get(c), Err(Error::Corrupt { oid, .. }) if oid == c.oid()));
        let message = tx.get(c).unwrap_err().to_string();
        assert!(message.contains(&format!("object {}", c.oid())), "{message}");
        assert_eq!(tx.get(good)?.value(), 0);
        Ok(())
    })
    .unwrap();
}

mod corrupt_state {
    use super::*;
    use pbpersist_tests::demo::Tower;

    fn tower(name: &str) -> Tower {
        let mut t = Tower::new();
        t.set_name(name);
        t.set_width(1.0);
        t.set_height(1.0);
        t
    }

    #[test]
    fn a_corrupt_record_is_a_typed_error_naming_the_oid_and_others_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.db");
        let db = Database::open(&path).unwrap();
        let (good, bad) = db.transact(|tx| Ok((tx.add(tower("good"))?, tx.add(tower("bad"))?))).unwrap();
        drop(db);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE pb_object SET record = x'0a05' WHERE oid = ?1", [bad.oid().0 as i64]).unwrap();
        drop(conn);

        let db = Database::open(&path).unwrap();
        db.transact(|tx| {
            match tx.get(bad) {
                Err(Error::Corrupt { oid, .. }) => assert_eq!(oid, bad.oid()),
                other => panic!("expected a corrupt-record error, got {other:?}"),
            }
            assert_eq!(tx.get(good)?.name(), "good");
            Ok(())
        })
        .unwrap();
    }
}
