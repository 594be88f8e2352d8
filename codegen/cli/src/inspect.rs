//! `cargo pbpersist inspect`: reads records through a read-only storage
//! (SQLite or PostgreSQL) and decodes states with the schemas the database
//! stores, so no Rust types are needed.

use crate::Failure;
use pbpersist::record::Record;
use pbpersist::reflect::Schemas;
use pbpersist::storage::{Loaded, PostgresStorage, Session};
use pbpersist::{Database, Oid};
use std::path::Path;
use std::process::ExitCode;

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
    fn each(&mut self, mut f: impl FnMut(u64, Stored)) -> Result<(), Failure> {
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

    fn load(&mut self, oid: u64) -> Result<Stored, Failure> {
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

struct Stored {
    tid: u64,
    record: Record,
    size: usize,
}

pub fn run(database: &str, oid: Option<u64>, json: bool, follow: bool) -> Result<ExitCode, Failure> {
    let mut source = Source::open(database)?;
    let Some(oid) = oid else {
        say!("{:>10} {:>8} {:>8}  TYPE", "OID", "TID", "SIZE");
        source.each(|oid, s| say!("{oid:>10} {:>8} {:>8}  {}", s.tid, s.size, s.record.r#type))?;
        return Ok(ExitCode::SUCCESS);
    };
    let schemas = Schemas::compile(&source.schemas()?)?;
    let mut order = vec![oid];
    let mut seen = std::collections::HashSet::from([oid]);
    let mut out = Vec::new();
    while let Some(next) = order.first().copied() {
        order.remove(0);
        let s = source.load(next)?;
        if follow {
            for r in &s.record.refs {
                if seen.insert(*r) {
                    order.push(*r);
                }
            }
        }
        let mut shown = describe(next, &s, &schemas, json)?;
        if s.record.r#type == "pbpersist.Tree" {
            add_tree(&source.db, next, &mut shown)?;
        }
        out.push(shown);
    }
    if json {
        let value = if follow { serde_json::Value::Array(out) } else { out.remove(0) };
        say!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for v in out {
            say!("{}", v.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Adds a tree's counter, depth and first entries to how its head is shown.
fn add_tree(db: &Database, oid: u64, shown: &mut serde_json::Value) -> Result<(), Failure> {
    let peek =
        db.transact(|tx| pbpersist::tree::peek_tree(tx, pbpersist::Ref::<pbpersist::AnyObject>::new(Oid(oid)), 10))?;
    // `depth` as the head stores it (docs/format.md): levels of nodes above
    // the buckets, where the peek counts the buckets too.
    let depth = peek.depth.saturating_sub(1);
    match shown {
        serde_json::Value::String(text) => {
            let kinds = if peek.value_kind.is_empty() {
                format!("set of {}", peek.key_kind)
            } else {
                format!("map {} -> {}", peek.key_kind, peek.value_kind)
            };
            text.push_str(&format!("\n  tree: {kinds}, {} entries, depth {depth}", peek.length));
            for (key, value) in &peek.first {
                text.push_str(&format!("\n    {key}{}{value}", if value.is_empty() { "" } else { ": " }));
            }
            if peek.length > peek.first.len() as i64 {
                text.push_str("\n    ...");
            }
        }
        serde_json::Value::Object(map) => {
            let first: Vec<_> = peek.first.iter().map(|(k, v)| serde_json::json!([k, v])).collect();
            map.insert(
                "tree".into(),
                serde_json::json!({
                    "key_kind": peek.key_kind,
                    "value_kind": peek.value_kind,
                    "length": peek.length,
                    "depth": depth,
                    "first": first,
                }),
            );
        }
        _ => {}
    }
    Ok(())
}

fn describe(oid: u64, s: &Stored, schemas: &Schemas, json: bool) -> Result<serde_json::Value, Failure> {
    let decoded = schemas.decode_record(oid, &s.record)?;
    if !json {
        return Ok(serde_json::Value::String(format!(
            "{oid} {} (tid {}, {} bytes, refs {:?})\n  {}",
            decoded.type_name, s.tid, s.size, decoded.refs, decoded.state
        )));
    }
    Ok(serde_json::json!({
        "oid": oid,
        "tid": s.tid,
        "type": decoded.type_name,
        "refs": decoded.refs,
        "state": decoded.to_json()?,
    }))
}
