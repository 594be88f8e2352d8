//! Types generated from `proto/demo.proto`, shared by the examples.

/// The `demo` protobuf package.
pub mod demo {
    pbpersist::include_proto!("demo");
}

/// The Tower example's data, shared by the example program and the tools' tests.
pub mod tower {
    use crate::demo::{Contact, Tower};
    use pbpersist::Database;
    use std::path::Path;

    /// Stores two towers (Pisa next to Rapunzel's) and two contacts (Bob,
    /// whose guardian is Alice) in the database file at `path`, named in the
    /// root as "rapunzel", "pisa" and "bob", in one transaction by the user
    /// "example" noted "two towers and two contacts".
    pub fn store(path: &Path) -> pbpersist::Result<()> {
        store_in(&Database::open(path)?)
    }

    /// Stores the same objects as [`store`] in any database.
    pub fn store_in(db: &Database) -> pbpersist::Result<()> {
        db.transact(|tx| {
            tx.set_user("example");
            tx.note("two towers and two contacts");
            let mut rapunzel = Tower::new();
            rapunzel.set_name("Rapunzel's");
            rapunzel.set_width(1000.0);
            rapunzel.set_height(10.0);
            let rapunzel = tx.add(rapunzel)?;

            let mut pisa = Tower::new();
            pisa.set_name("Pisa");
            pisa.set_width(15.5);
            pisa.set_height(56.7);
            pisa.set_build_year(1372);
            pisa.set_neighbor(rapunzel);
            let pisa = tx.add(pisa)?;

            let mut alice = Contact::new();
            alice.set_name("Alice");
            alice.address_mut().set_city("Springfield");
            let alice = tx.add(alice)?;

            let mut bob = Contact::new();
            bob.set_name("Bob");
            bob.guardians_mut().push(alice);
            bob.set_phone("555-0100");
            bob.labels_mut().insert("team".into(), "blue".into());
            let bob = tx.add(bob)?;

            let root = tx.root_mut()?;
            root.insert("rapunzel", rapunzel);
            root.insert("pisa", pisa);
            root.insert("bob", bob);
            Ok(())
        })?;
        Ok(())
    }
}

/// The README's Rust examples, compiled and run as doctests so they cannot
/// go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
