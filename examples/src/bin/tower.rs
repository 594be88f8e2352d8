//! The Tower example: store towers and contacts with references in a SQLite
//! file, close it, reopen it and follow the references.
//!
//! Run with `cargo run -p pbpersist-examples --bin tower [-- path/to/file.db]`,
//! or on PostgreSQL with `-- postgres://user@host/db` (its `public` schema
//! gets pbpersist's tables; the example's objects are added to what is there).

use pbpersist::storage::PostgresStorage;
use pbpersist::{Database, Persistent};
use pbpersist_examples::demo::{Address, Contact, Tower, contact::Kind};
use std::path::PathBuf;

fn describe(tower: &Tower) -> String {
    format!("{} {:.6}x{:.6} {}", tower.name(), tower.width(), tower.height(), tower.build_year())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args().nth(1);
    let db = match arg.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let storage = PostgresStorage::open(url)?;
            pbpersist_examples::tower::store_in(&Database::with_storage(storage.clone())?)?;
            println!("stored 2 towers and 2 contacts in {}", storage.target());
            // A new Database over the same tables: nothing is cached, everything loads.
            Database::with_storage(PostgresStorage::open(url)?)?
        }
        _ => {
            let path =
                arg.map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("pbpersist-tower-example.db"));
            // Start from a fresh file so every run shows the same thing.
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            pbpersist_examples::tower::store(&path)?;
            println!("stored 2 towers and 2 contacts in {}", path.display());
            // A new Database over the same file: nothing is cached, everything loads.
            Database::open(&path)?
        }
    };
    db.transact(|tx| {
        let root = tx.root()?;
        for name in ["rapunzel", "pisa"] {
            let tower = tx.get(root.require::<Tower>(name)?)?;
            println!("{}", describe(&tower));
            if let Some(next) = tower.neighbor() {
                let neighbor = tx.get(next)?;
                println!("  next to {}", describe(&neighbor));
            }
        }
        let bob = tx.get(root.require::<Contact>("bob")?)?;
        println!("{} (reach by phone {}, kind {:?})", bob.name(), bob.phone(), bob.kind());
        for guardian in bob.guardians() {
            let g = tx.get(*guardian)?;
            let address: &Address = g.address();
            println!("  guardian {} of {}, {}", g.name(), address.city(), address.country());
        }
        assert_eq!(bob.kind(), Kind::Person);
        assert!(!bob.is_changed());
        Ok(())
    })?;
    println!("objects loaded from disk: {}", db.stats().loads);
    Ok(())
}
