//! A database opened read-only reads what was committed, sees later commits
//! of writers, and refuses every write with a typed error, writing nothing.
//! Run by the SQL backends, which can open the same data both ways.

use super::types::Tower;
use super::{Backend, tower};
use pbpersist::{Database, Error, Persistent, StorageError};

fn refused<T: std::fmt::Debug>(result: pbpersist::Result<T>) {
    match result {
        Err(Error::Storage(StorageError::ReadOnly { .. })) => {}
        other => panic!("expected a read-only error, got {other:?}"),
    }
}

pub fn reads_and_refuses_writes(backend: &Backend, read_only: &dyn Fn() -> Database) {
    let db = backend.open();
    let pisa = db
        .transact(|tx| {
            let r = tx.add(tower("Pisa", 15.5, 56.7))?;
            tx.root_mut()?.insert("pisa", r);
            Ok(r)
        })
        .unwrap();

    let ro = read_only();
    assert!(ro.is_read_only() && !db.is_read_only());
    let height = |db: &Database| {
        db.transact(|tx| {
            let r = tx.root()?.require::<Tower>("pisa")?;
            Ok(tx.get(r)?.height())
        })
    };
    assert_eq!(height(&ro).unwrap(), 56.7);

    // Each kind of write is refused, and nothing reaches the database.
    refused(ro.transact(|tx| tx.add(tower("Eiffel", 125.0, 330.0))));
    refused(ro.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(1.0))));
    refused(ro.transact(|tx| Ok(tx.root_mut()?.remove("pisa"))));
    refused(ro.gc(false));
    assert!(ro.gc(true).unwrap().unreachable.is_empty(), "a dry run only reads");
    assert_eq!(height(&ro).unwrap(), 56.7, "the refused change was discarded");
    assert_eq!(height(&db).unwrap(), 56.7);

    // A writer's later commit is seen by the reader's next transaction.
    db.transact(|tx| Ok(tx.get_mut(pisa)?.set_height(57.0))).unwrap();
    assert_eq!(height(&ro).unwrap(), 57.0);
    assert!(ro.transact(|tx| Ok(tx.get(pisa)?.is_changed())).is_ok_and(|changed| !changed));
}
