//! No data loss across schema versions: an object written by a newer program
#![allow(clippy::unit_arg)] // `Ok(setter(..))` keeps one-line transactions readable.
//! (v2), changed and saved by an older one (v1), still carries every v2 field,
//! and what its unknown fields refer to stays alive through gc.

use pbpersist::{Database, Persistent, Ref};
use pbpersist_tests::{v1, v2};

fn full_v2(author: Ref<v2::Note>, reviewer: Ref<v2::Note>, link: Ref<v2::Note>) -> v2::Note {
    let mut n = v2::Note::new();
    n.set_title("written by v2");
    n.set_color(v2::Color::Blue);
    n.set_author(author);
    n.set_count(-40);
    n.set_delta(-3);
    n.set_checksum(0xdead_beef);
    n.set_big(u64::MAX);
    n.set_ratio(0.5);
    n.set_weight(1.25);
    n.set_flag(true);
    n.set_blob(vec![0, 1, 2]);
    n.tags_mut().extend(["a".to_owned(), "b".to_owned()]);
    n.packed_numbers_mut().extend([1, -2, 300]);
    n.plain_numbers_mut().extend([4, 5]);
    n.inner_mut().set_label("inner");
    let mut named = v2::Inner::new();
    named.set_label("named");
    named.set_link(link);
    n.by_name_mut().insert("k".into(), named);
    n.set_reviewer(reviewer);
    n.palette_mut().extend([v2::Color::Red, v2::Color::Blue].map(pbpersist::EnumValue::from));
    n.extra_mut().set_note("in a group");
    let mut detail = v2::Inner::new();
    detail.set_label("a new oneof member");
    n.set_detail(detail);
    n
}

#[test]
fn an_older_program_changing_a_newer_object_keeps_every_field_and_reference() {
    let dir = pbpersist_tests::scratch_dir();
    let path = dir.path().join("evolve.db");
    let (note, expected) = {
        let db = Database::open(&path).unwrap();
        db.transact(|tx| {
            let author = tx.add(v2::Note::new())?;
            let reviewer = tx.add(v2::Note::new())?;
            let link = tx.add(v2::Note::new())?;
            let note = tx.add(full_v2(author, reviewer, link))?;
            tx.root_mut()?.insert("note", note);
            Ok((note, full_v2(author, reviewer, link)))
        })
        .unwrap()
    };

    // The older program: it knows title, color (without BLUE), text and author.
    {
        let db = Database::open(&path).unwrap();
        db.transact(|tx| {
            let old = tx.get_mut(note.cast::<v1::Note>())?;
            assert_eq!(old.title(), "written by v2");
            assert_eq!(old.color(), v1::Color::None, "BLUE is unknown to v1, a closed enum");
            assert!(!old.has_text(), "the v2 oneof member is unknown to v1");
            old.set_title("changed by v1");
            Ok(())
        })
        .unwrap();
        // Everything the v2 fields refer to is still reachable.
        assert!(db.gc(false).unwrap().unreachable.is_empty());
    }

    let db = Database::open(&path).unwrap();
    db.transact(|tx| {
        let back = tx.get(note)?;
        let mut want = expected.clone();
        want.set_title("changed by v1");
        assert_eq!(*back, want);
        assert_eq!(back.color(), v2::Color::Blue);
        assert_eq!(back.detail().label(), "a new oneof member");
        assert_eq!(back.extra().note(), "in a group");
        // The three references are followed and load.
        tx.get(back.reviewer().unwrap())?;
        tx.get(back.by_name()["k"].link().unwrap())?;
        tx.get(back.author().unwrap())?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_older_program_removing_a_reference_it_knows_lets_gc_collect_it() {
    let storage = pbpersist::storage::MemoryStorage::new();
    let db = Database::with_storage(storage.clone()).unwrap();
    let (note, author) = db
        .transact(|tx| {
            let author = tx.add(v2::Note::new())?;
            let reviewer = tx.add(v2::Note::new())?;
            let mut n = v2::Note::new();
            n.set_author(author);
            n.set_reviewer(reviewer);
            let n = tx.add(n)?;
            tx.root_mut()?.insert("n", n);
            Ok((n, author))
        })
        .unwrap();
    // The older program is another process: another database handle.
    let older = Database::with_storage(storage).unwrap();
    older.transact(|tx| Ok(tx.get_mut(note.cast::<v1::Note>())?.clear_author())).unwrap();
    let report = db.gc(false).unwrap();
    assert_eq!(report.unreachable, vec![author.oid()], "only the reference v1 removed is garbage");
    let _ = <v1::Note as Persistent>::TYPE_NAME;
}

#[test]
fn a_renamed_message_loads_its_records_under_the_former_name() {
    let storage = pbpersist::storage::MemoryStorage::new();
    let old = Database::with_storage(storage.clone()).unwrap();
    let memo = old
        .transact(|tx| {
            let mut m = v1::Memo::new();
            m.set_text("call back");
            tx.add(m)
        })
        .unwrap();
    let new = Database::with_storage(storage.clone()).unwrap();
    let reminder = memo.cast::<v2::Reminder>();
    new.transact(|tx| {
        let r = tx.get_mut(reminder)?;
        assert_eq!(r.text(), "call back");
        r.set_priority(2);
        Ok(())
    })
    .unwrap();
    // Saved under its new name now.
    let again = Database::with_storage(storage).unwrap();
    again.transact(|tx| Ok(assert_eq!(tx.get_object(reminder.oid())?.type_name(), "evolve.Reminder"))).unwrap();
}
