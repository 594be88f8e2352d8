//! Opening a database named on the command line: an SQLite file, or a
//! postgres://, etcd://, file:// or s3:// URL; read-only for the verbs that
//! only read, and never created where none exists.

use crate::Failure;
use pbpersist::record::Record;
use pbpersist::storage::{Loaded, PostgresStorage, Session};
use pbpersist::{Database, Oid};
use std::path::Path;

/// A database opened read-only, read through one snapshot: an SQLite file,
/// or a PostgreSQL URL (`postgres://...`; `?options=-c%20search_path%3D<schema>`
/// picks a schema).
pub struct Source {
    db: Database,
    session: Box<dyn Session>,
}

/// A database in etcd. etcd has no read-only mode; the verbs that only read
/// never write.
#[cfg(feature = "etcd")]
pub fn open_etcd(database: &str) -> Result<Database, Failure> {
    Ok(Database::with_storage(pbpersist::storage::EtcdStorage::open(database)?)?)
}

/// Without the `etcd` feature, an etcd URL is refused with how to get it.
#[cfg(not(feature = "etcd"))]
pub fn open_etcd(_: &str) -> Result<Database, Failure> {
    Err(Failure("this cargo-pbpersist was built without etcd support (install it with --features etcd)".into()))
}

/// Whether `database` names an object store (`file://`, `s3://`).
pub fn is_object_store(database: &str) -> bool {
    database.starts_with("file://") || database.starts_with("s3://")
}

/// An existing database on an object store. The verbs that only read never
/// write.
#[cfg(feature = "object-store")]
pub fn open_object_store(database: &str) -> Result<Database, Failure> {
    Ok(Database::with_storage(pbpersist::storage::ObjectStorage::open_existing(database)?)?)
}

/// Without the `object-store` feature, such a URL is refused with how to get it.
#[cfg(not(feature = "object-store"))]
pub fn open_object_store(_: &str) -> Result<Database, Failure> {
    Err(Failure("this cargo-pbpersist was built without object-store support (install it with --features s3)".into()))
}

/// Whether `database` names a PostgreSQL server rather than a file.
pub fn is_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

pub fn require_database(path: &Path) -> Result<(), Failure> {
    let mut head = [0u8; 16];
    let ok = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok();
    if !ok || &head != b"SQLite format 3\0" {
        return Err(Failure(format!("{} is not a pbpersist database", path.display())));
    }
    Ok(())
}

impl Source {
    /// Opens `database` read-only; nothing is created, migrated or written.
    pub fn open(database: &str) -> Result<Source, Failure> {
        let db = if database.starts_with("etcd://") {
            open_etcd(database)?
        } else if is_object_store(database) {
            open_object_store(database)?
        } else if is_url(database) {
            // Storage errors name the server, never the URL's password.
            Database::with_storage(PostgresStorage::open_read_only(database)?)?
        } else {
            require_database(Path::new(database))?;
            Database::open_read_only(database)?
        };
        let mut session = db.storage().open_session()?;
        session.begin(None)?;
        Ok(Source { db, session })
    }

    /// The database, opened read-only.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The `.proto` files the database stores.
    pub fn schemas(&mut self) -> Result<Vec<(String, String)>, Failure> {
        Ok(self.db.storage().schemas()?)
    }

    /// The oids of every object of the stored type `type_name`.
    pub fn oids_of_type(&mut self, type_name: &str) -> Result<Vec<u64>, Failure> {
        let mut out = Vec::new();
        self.each(|oid, s| {
            if s.record.r#type == type_name {
                out.push(oid);
            }
        })?;
        Ok(out)
    }

    /// Every stored object, in oid order, a page at a time.
    pub fn each(&mut self, mut f: impl FnMut(u64, Stored)) -> Result<(), Failure> {
        let mut after = None;
        loop {
            let page = self.session.scan(after, 1000)?;
            let Some((last, _)) = page.last() else { return Ok(()) };
            after = Some(*last);
            for (oid, loaded) in page {
                f(oid.0, stored(oid.0, loaded)?);
            }
        }
    }

    pub fn load(&mut self, oid: u64) -> Result<Stored, Failure> {
        let loaded = self.session.load(Oid(oid))?.ok_or_else(|| Failure(format!("object {oid} does not exist")))?;
        stored(oid, loaded)
    }
}

fn stored(oid: u64, loaded: Loaded) -> Result<Stored, Failure> {
    let size = loaded.record.len();
    let record = Record::from_bytes(loaded.record.into())
        .map_err(|e| Failure(format!("object {oid} has a malformed record: {e}")))?;
    Ok(Stored { tid: loaded.tid.0, record, size })
}

pub struct Stored {
    pub tid: u64,
    pub record: Record,
    pub size: usize,
}

/// Opens an existing database for writing; a file or server without
/// pbpersist's tables is refused, never created.
pub fn open_writable(database: &str) -> Result<pbpersist::Database, Failure> {
    use pbpersist::{Database, storage::PostgresStorage};
    if database.starts_with("etcd://") {
        open_etcd(database)
    } else if is_object_store(database) {
        open_object_store(database)
    } else if is_url(database) {
        Source::open(database)?;
        Ok(Database::with_storage(PostgresStorage::open(database)?)?)
    } else {
        require_database(Path::new(database))?;
        Ok(Database::open(database)?)
    }
}

/// How to name a database in messages: a URL loses its password.
pub fn shown(database: &str) -> String {
    if !is_url(database) {
        return database.to_owned();
    }
    match database.parse::<postgres::Config>() {
        Ok(c) => {
            let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
            let host = match c.get_hosts().first() {
                Some(postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "localhost".into(),
            };
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{user}{host}:{port}/{}", c.get_dbname().unwrap_or(""))
        }
        Err(_) => "the PostgreSQL database".into(),
    }
}
