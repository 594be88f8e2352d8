//! The commit contract at the storage's own level, through
//! [`Session::commit`]: the checks, their order, what a merge is offered,
//! and that a failed commit writes nothing. The storage is the one under a
//! [`Database`](pbpersist::Database) that the backend opens; the tests write
//! records of their own on oids they reserve.

use super::Backend;
use pbpersist::record::Record;
use pbpersist::storage::TransactionMeta;
use pbpersist::storage::{Loaded, Session, Storage, TransactionRange, Write};
use pbpersist::{ConflictError, Oid, StorageError, Tid};
use prost::Message;

/// A record of an object with no state and these references.
fn record(tag: &str, refs: &[u64]) -> Vec<u8> {
    let state = bytes::Bytes::copy_from_slice(tag.as_bytes());
    Record { r#type: "pbpersist.conformance.Opaque".into(), state, refs: refs.to_vec() }.encode_to_vec()
}

const NO_META: TransactionMeta =
    TransactionMeta { user: String::new(), description: String::new(), extension: std::collections::BTreeMap::new() };

fn no_merge(_: Oid, _: &Loaded) -> Option<Vec<u8>> {
    None
}

fn session(storage: &dyn Storage) -> Box<dyn Session> {
    let mut s = storage.open_session().unwrap();
    s.begin(None).unwrap();
    s
}

/// Commits `writes` on a fresh snapshot, with no merging.
fn commit(storage: &dyn Storage, writes: &[Write]) -> Result<Option<Tid>, StorageError> {
    session(storage).commit(writes, &[], &NO_META, &mut no_merge)
}

fn write(oid: Oid, base: Option<Tid>, record: Vec<u8>) -> Write {
    Write { oid, base, record }
}

fn conflict_on(result: Result<Option<Tid>, StorageError>, oid: Oid) {
    match result {
        Err(StorageError::Conflict(ConflictError { oid: found })) => assert_eq!(found, oid),
        other => panic!("expected a conflict on {oid}, got {other:?}"),
    }
}

/// Expects a commit refused for writing `oid`, with the typed error (a
/// remote storage hears it as a refusal naming the oid, from the server or
/// the storage behind it).
fn oid_refused(storage: &dyn Storage, result: Result<Option<Tid>, StorageError>, oid: Oid) {
    match result {
        Err(StorageError::OidOutOfRange { oid: found, .. }) => assert_eq!(found, oid),
        Err(StorageError::Refused { reason, .. }) if storage.name() == "remote" => {
            assert!(reason.contains(&format!("object {oid}")), "{reason}");
        }
        other => panic!("expected a refusal of oid {oid}, got {other:?}"),
    }
}

fn load(storage: &dyn Storage, oid: Oid) -> Option<Loaded> {
    session(storage).load(oid).unwrap()
}

fn last_tid(storage: &dyn Storage) -> Tid {
    session(storage).begin(None).unwrap().tid
}

/// Two fresh oids.
fn oids(storage: &dyn Storage) -> (Oid, Oid) {
    let range = storage.new_oids(2).unwrap();
    (Oid(range.start), Oid(range.start + 1))
}

pub fn a_base_that_is_not_the_stored_tid_conflicts_even_with_no_commit_in_between(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, _) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("one", &[]))]).unwrap().unwrap();
    // Nobody commits between this snapshot and its commit, yet the base is
    // not the stored tid: a client with a stale cache must not overwrite.
    let mut s = session(storage);
    conflict_on(s.commit(&[write(a, Some(Tid(t1.0 + 1000)), record("two", &[]))], &[], &NO_META, &mut no_merge), a);
    assert_eq!(load(storage, a).unwrap().record, record("one", &[]));
    let t2 = commit(storage, &[write(a, Some(t1), record("two", &[]))]).unwrap().unwrap();
    assert!(t2 > t1, "tids grow");
    assert_eq!(load(storage, a).unwrap(), Loaded { tid: t2, record: record("two", &[]) });
}

pub fn a_new_object_whose_row_exists_conflicts_and_nothing_is_written(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, b) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("a", &[]))]).unwrap().unwrap();
    let before = last_tid(storage);
    conflict_on(commit(storage, &[write(b, None, record("b", &[])), write(a, None, record("again", &[]))]), a);
    assert_eq!(load(storage, a).unwrap(), Loaded { tid: t1, record: record("a", &[]) });
    assert_eq!(load(storage, b), None, "the failed commit's other write is not stored");
    assert_eq!(last_tid(storage), before, "no transaction was recorded");
    let listed = storage.transactions(TransactionRange {
        after: before,
        until: None,
        limit: 10,
        newest_first: false,
        records: false,
    });
    assert!(listed.unwrap().is_empty());
}

pub fn a_merge_is_offered_the_stored_state_and_its_result_is_written(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, b) = oids(storage);
    let t1 =
        commit(storage, &[write(a, None, record("base", &[])), write(b, None, record("b", &[]))]).unwrap().unwrap();
    let mut late = session(storage);
    let t2 = commit(storage, &[write(a, Some(t1), record("theirs", &[]))]).unwrap().unwrap();
    let mut offered = Vec::new();
    let mut merge = |oid: Oid, stored: &Loaded| {
        offered.push((oid, stored.clone()));
        Some(record("merged", &[]))
    };
    let writes = [write(a, Some(t1), record("mine", &[])), write(b, Some(t1), record("b2", &[]))];
    let t3 = late.commit(&writes, &[], &NO_META, &mut merge).unwrap().unwrap();
    assert_eq!(offered, [(a, Loaded { tid: t2, record: record("theirs", &[]) })], "only the stale write merges");
    assert_eq!(load(storage, a).unwrap(), Loaded { tid: t3, record: record("merged", &[]) });
    assert_eq!(load(storage, b).unwrap(), Loaded { tid: t3, record: record("b2", &[]) });
    // A merge that gives up is a conflict, and nothing is written.
    let mut late = session(storage);
    commit(storage, &[write(b, Some(t3), record("b3", &[]))]).unwrap();
    let result = late.commit(
        &[write(a, Some(t3), record("x", &[])), write(b, Some(t3), record("y", &[]))],
        &[],
        &NO_META,
        &mut no_merge,
    );
    conflict_on(result, b);
    assert_eq!(load(storage, a).unwrap().tid, t3);
}

pub fn a_stale_read_fails_the_commit_before_any_merge(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, b) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("a", &[])), write(b, None, record("b", &[]))]).unwrap().unwrap();
    let mut late = session(storage);
    commit(storage, &[write(a, Some(t1), record("a2", &[])), write(b, Some(t1), record("b2", &[]))]).unwrap();
    let mut merges = 0;
    let mut merge = |_: Oid, _: &Loaded| {
        merges += 1;
        Some(record("merged", &[]))
    };
    conflict_on(late.commit(&[write(b, Some(t1), record("b3", &[]))], &[(a, t1)], &NO_META, &mut merge), a);
    assert_eq!(merges, 0, "no merge is tried for a commit that fails anyway");
    assert_eq!(load(storage, b).unwrap().record, record("b2", &[]));
}

pub fn reads_alone_are_checked_and_record_no_transaction(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, b) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("a", &[]))]).unwrap().unwrap();
    assert_eq!(session(storage).commit(&[], &[(a, t1)], &NO_META, &mut no_merge).unwrap(), None);
    assert_eq!(last_tid(storage), t1);
    // A read of an object that does not exist is stale too.
    conflict_on(session(storage).commit(&[], &[(b, t1)], &NO_META, &mut no_merge), b);
    let mut late = session(storage);
    commit(storage, &[write(a, Some(t1), record("a2", &[]))]).unwrap();
    conflict_on(late.commit(&[], &[(a, t1)], &NO_META, &mut no_merge), a);
}

pub fn a_write_to_an_object_gc_removed_conflicts_without_a_merge(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, _) = oids(storage);
    let root = load(storage, Oid::ROOT);
    let root_write = match &root {
        Some(l) => write(Oid::ROOT, Some(l.tid), record("root", &[])),
        None => write(Oid::ROOT, None, record("root", &[])),
    };
    let t1 = commit(storage, &[root_write, write(a, None, record("orphan", &[]))]).unwrap().unwrap();
    let mut late = session(storage);
    assert!(storage.admin().unwrap().collect_garbage(false).unwrap().contains(&a));
    let mut merges = 0;
    let mut merge = |_: Oid, _: &Loaded| {
        merges += 1;
        Some(record("merged", &[]))
    };
    conflict_on(late.commit(&[write(a, Some(t1), record("again", &[]))], &[], &NO_META, &mut merge), a);
    assert_eq!(merges, 0);
    assert_eq!(load(storage, a), None);
}

pub fn creating_an_oid_never_handed_out_is_refused_and_writes_nothing(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, b) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("a", &[]))]).unwrap().unwrap();
    let before = last_tid(storage);
    // Far above any oid handed out (a call reserves at most MAX_NEW_OIDS),
    // beside writes that pass on their own: the whole commit is refused.
    let never = Oid(1 << 40);
    let writes =
        [write(a, Some(t1), record("a2", &[])), write(b, None, record("b", &[])), write(never, None, record("x", &[]))];
    oid_refused(storage, commit(storage, &writes), never);
    assert_eq!(load(storage, a).unwrap(), Loaded { tid: t1, record: record("a", &[]) });
    assert_eq!(load(storage, b), None, "the refused commit's other new object is not stored");
    assert_eq!(load(storage, never), None);
    assert_eq!(last_tid(storage), before, "no transaction was recorded");
    let range = TransactionRange { after: before, until: None, limit: 10, newest_first: false, records: false };
    assert!(storage.transactions(range).unwrap().is_empty());
    // The oids handed out next are free, and the same commit without the
    // stray oid goes through.
    for oid in storage.new_oids(3).unwrap() {
        assert_eq!(load(storage, Oid(oid)), None, "new_oids handed out oid {oid}, which exists");
    }
    commit(storage, &writes[..2]).unwrap().unwrap();
    assert_eq!(load(storage, b).unwrap().record, record("b", &[]));
}

pub fn oids_at_or_above_2_63_are_refused_in_any_write(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let (a, _) = oids(storage);
    let t1 = commit(storage, &[write(a, None, record("a", &[]))]).unwrap().unwrap();
    for oid in [Oid(1 << 63), Oid(u64::MAX)] {
        oid_refused(storage, commit(storage, &[write(oid, None, record("big", &[]))]), oid);
        // With a base as well: no object can have that oid.
        let writes = [write(a, Some(t1), record("a2", &[])), write(oid, Some(t1), record("big", &[]))];
        oid_refused(storage, commit(storage, &writes), oid);
        assert_eq!(load(storage, oid), None);
    }
    assert_eq!(last_tid(storage), t1, "nothing was written");
    assert_eq!(load(storage, a).unwrap().record, record("a", &[]));
    let mut s = session(storage);
    let all = s.scan(None, 10_000).unwrap();
    assert!(all.iter().all(|(oid, _)| oid.0 < 1 << 63), "{:?}", all.iter().map(|o| o.0).collect::<Vec<_>>());
}

/// Schema files are stored, replaced by name, listed sorted, and deleted
/// by name, leaving the others.
pub fn schema_files_are_stored_replaced_and_deleted(backend: &Backend) {
    let db = backend.open();
    let storage = db.storage();
    let before = storage.schemas().unwrap();
    let file = |n: u32| format!("syntax = \"proto3\";\npackage conformance.s{n};\nmessage M{n} {{}}\n");
    storage.put_schemas(&[("zz/b.proto".into(), file(1)), ("zz/a.proto".into(), file(2))]).unwrap();
    // A replacement that keeps what the file defined (a server refuses one
    // that drops a stored type) and adds to it.
    let grown = format!("{}message More {{}}\n", file(1));
    storage.put_schemas(&[("zz/b.proto".into(), grown.clone())]).unwrap();
    let mine = |all: Vec<(String, String)>| all.into_iter().filter(|(n, _)| n.starts_with("zz/")).collect::<Vec<_>>();
    assert_eq!(
        mine(storage.schemas().unwrap()),
        [("zz/a.proto".to_owned(), file(2)), ("zz/b.proto".to_owned(), grown.clone())]
    );
    storage.delete_schemas(&["zz/a.proto".into()]).unwrap();
    assert_eq!(mine(storage.schemas().unwrap()), [("zz/b.proto".to_owned(), grown)]);
    storage.delete_schemas(&["zz/b.proto".into()]).unwrap();
    assert_eq!(storage.schemas().unwrap(), before, "the other files are as they were");
}

/// A schema swap stores only on the text it expects, and programs adding
/// their types to one package's file at the same moment, through two
/// handles on the database, all keep theirs.
pub fn schema_swaps_keep_every_writers_types(backend: &Backend) {
    let (one, two) = (backend.open(), backend.open());
    let storage = one.storage();
    let name = "zz/swap.proto";
    let file =
        |defs: &str| format!("{}syntax = \"proto3\";\n\npackage conformance.swap;\n{defs}", crate::schema::HEADER);
    let stored =
        |s: &dyn crate::storage::Storage| s.schemas().unwrap().into_iter().find(|(n, _)| n == name).map(|f| f.1);
    let first = file("\nmessage A {\n}\n");
    assert!(storage.swap_schema(name, None, &first).unwrap());
    assert!(!storage.swap_schema(name, None, "syntax = \"proto3\";\n").unwrap(), "the file exists");
    assert!(!storage.swap_schema(name, Some("not the stored text"), "syntax = \"proto3\";\n").unwrap());
    assert_eq!(stored(two.storage()).as_deref(), Some(first.as_str()), "nothing was stored");

    let (writers, each) = (4, backend.scaled(6));
    std::thread::scope(|scope| {
        for w in 0..writers {
            let db = if w % 2 == 0 { &one } else { &two };
            scope.spawn(move || {
                for i in 0..each {
                    let ours = file(&format!("\nmessage W{w}x{i} {{\n}}\n"));
                    crate::storage::schema_files::update_stored(db.storage(), name, |old| {
                        Some(old.map_or_else(|| ours.clone(), |old| crate::schema::merge_with_stored(&ours, old)))
                    })
                    .unwrap();
                }
            });
        }
    });
    let text = stored(storage).unwrap();
    for w in 0..writers {
        for i in 0..each {
            assert!(text.contains(&format!("message W{w}x{i} {{")), "W{w}x{i} was dropped:\n{text}");
        }
    }
    assert!(text.contains("message A {"), "{text}");
    storage.delete_schemas(&[name.to_owned()]).unwrap();
    assert_eq!(stored(storage), None);
    assert_eq!(stored(two.storage()), None);
    // A deleted file can be stored again.
    assert!(storage.swap_schema(name, None, &first).unwrap());
    storage.delete_schemas(&[name.to_owned()]).unwrap();
}
