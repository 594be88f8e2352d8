//! `cargo pbpersist inspect`: reads records with plain SQL (SQLite or
//! PostgreSQL) and decodes states with the schemas the database stores, so
//! no Rust types are needed.

use crate::Failure;
use pbpersist::Record;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::path::Path;
use std::process::ExitCode;

/// A database to read: an SQLite file, or a PostgreSQL URL
/// (`postgres://...`; `?options=-c%20search_path%3D<schema>` picks a schema).
pub enum Source {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
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
    /// Opens `database` for reading only.
    pub fn open(database: &str) -> Result<Source, Failure> {
        if is_url(database) {
            // The driver's errors never repeat the URL, so no password leaks.
            let config: postgres::Config =
                database.parse().map_err(|_| Failure("the PostgreSQL URL is malformed".into()))?;
            let mut client = config.connect(postgres::NoTls)?;
            client.batch_execute("SET default_transaction_read_only = on")?;
            if client.query_opt("SELECT value FROM pb_meta WHERE key = 'format'", &[]).ok().flatten().is_none() {
                return Err(Failure("the PostgreSQL database has no pbpersist tables (pb_meta)".into()));
            }
            return Ok(Source::Postgres(Box::new(client)));
        }
        let path = Path::new(database);
        require_database(path)?;
        Ok(Source::Sqlite(rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?))
    }

    /// The `.proto` files the database stores.
    pub fn schemas(&mut self) -> Result<Vec<(String, String)>, Failure> {
        let sql = "SELECT file, source FROM pb_schema ORDER BY file";
        let no_schemas = |e: &dyn std::fmt::Display| Failure(format!("the database has no stored schemas: {e}"));
        match self {
            Source::Sqlite(c) => {
                let mut stmt = c.prepare(sql).map_err(|e| no_schemas(&e))?;
                let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<_, _>>()?)
            }
            Source::Postgres(c) => {
                let rows = c.query(sql, &[]).map_err(|e| no_schemas(&e))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            }
        }
    }

    fn oids(&mut self) -> Result<Vec<u64>, Failure> {
        let sql = "SELECT oid FROM pb_object ORDER BY oid";
        let oids: Vec<i64> = match self {
            Source::Sqlite(c) => c.prepare(sql)?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?,
            Source::Postgres(c) => c.query(sql, &[])?.iter().map(|r| r.get(0)).collect(),
        };
        Ok(oids.into_iter().map(|o| o as u64).collect())
    }

    fn load(&mut self, oid: u64) -> Result<Stored, Failure> {
        let sql = "SELECT tid, record FROM pb_object WHERE oid = $1";
        let missing = || Failure(format!("object {oid} does not exist"));
        let (tid, blob): (i64, Vec<u8>) = match self {
            Source::Sqlite(c) => {
                c.query_row(sql, [oid as i64], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|_| missing())?
            }
            Source::Postgres(c) => {
                let row = c.query_opt(sql, &[&(oid as i64)])?.ok_or_else(missing)?;
                (row.get(0), row.get(1))
            }
        };
        let size = blob.len();
        let record = Record::from_bytes(blob.into())
            .map_err(|e| Failure(format!("object {oid} has a malformed record: {e}")))?;
        Ok(Stored { tid, record, size })
    }
}

/// Compiles stored `.proto` files.
pub fn compile(files: &[(String, String)]) -> Result<DescriptorPool, Failure> {
    let dir = tempfile::tempdir()?;
    for (name, source) in files {
        std::fs::write(dir.path().join(name), source)?;
    }
    let mut names: Vec<_> = files.iter().map(|(n, _)| dir.path().join(n)).collect();
    // pbpersist's own types (the root) come with pbpersist-build.
    names.push("pbpersist/record.proto".into());
    crate::config().descriptor_pool(&names, &[dir.path()]).map_err(crate::diagnostic)
}

struct Stored {
    tid: i64,
    record: Record,
    size: usize,
}

pub fn run(database: &str, oid: Option<u64>, json: bool, follow: bool) -> Result<ExitCode, Failure> {
    let mut source = Source::open(database)?;
    let Some(oid) = oid else {
        println!("{:>10} {:>8} {:>8}  TYPE", "OID", "TID", "SIZE");
        for oid in source.oids()? {
            let s = source.load(oid)?;
            println!("{oid:>10} {:>8} {:>8}  {}", s.tid, s.size, s.record.r#type);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let pool = compile(&source.schemas()?)?;
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
        out.push(describe(next, &s, &pool, json)?);
    }
    if json {
        let value = if follow { serde_json::Value::Array(out) } else { out.remove(0) };
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for v in out {
            println!("{}", v.as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(oid: u64, s: &Stored, pool: &DescriptorPool, json: bool) -> Result<serde_json::Value, Failure> {
    let desc = pool.get_message_by_name(&s.record.r#type).ok_or_else(|| {
        Failure(format!("object {oid} has type {}, which the stored schemas do not describe", s.record.r#type))
    })?;
    let state = DynamicMessage::decode(desc, s.record.state.clone())
        .map_err(|e| Failure(format!("object {oid} has a malformed state: {e}")))?;
    if !json {
        return Ok(serde_json::Value::String(format!(
            "{oid} {} (tid {}, {} bytes, refs {:?})\n  {state}",
            s.record.r#type, s.tid, s.size, s.record.refs
        )));
    }
    Ok(serde_json::json!({
        "oid": oid,
        "tid": s.tid,
        "type": s.record.r#type,
        "refs": s.record.refs,
        "state": serde_json::to_value(&state)?,
    }))
}
