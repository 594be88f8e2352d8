//! `cargo pbpersist inspect`: reads records with plain SQL and decodes states
//! with the schemas the database stores, so no Rust types are needed.

use crate::Failure;
use pbpersist::Record;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::path::Path;
use std::process::ExitCode;

pub fn require_database(path: &Path) -> Result<(), Failure> {
    let mut head = [0u8; 16];
    let ok = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok();
    if !ok || &head != b"SQLite format 3\0" {
        return Err(Failure(format!("{} is not a pbpersist database", path.display())));
    }
    Ok(())
}

fn open(path: &Path) -> Result<rusqlite::Connection, Failure> {
    require_database(path)?;
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok(conn)
}

/// The `.proto` files a database stores.
pub fn stored_schemas(path: &Path) -> Result<Vec<(String, String)>, Failure> {
    let conn = open(path)?;
    let mut stmt = conn
        .prepare("SELECT file, source FROM pb_schema ORDER BY file")
        .map_err(|e| format!("{} has no stored schemas: {e}", path.display()))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
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

fn load(conn: &rusqlite::Connection, oid: u64) -> Result<Stored, Failure> {
    let (tid, blob): (i64, Vec<u8>) = conn
        .query_row("SELECT tid, record FROM pb_object WHERE oid = ?1", [oid as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(|_| Failure(format!("object {oid} does not exist")))?;
    let size = blob.len();
    let record = Record::from_bytes(blob.into()).map_err(|e| format!("object {oid} has a malformed record: {e}"))?;
    Ok(Stored { tid, record, size })
}

pub fn run(path: &Path, oid: Option<u64>, json: bool, follow: bool) -> Result<ExitCode, Failure> {
    let conn = open(path)?;
    let Some(oid) = oid else {
        println!("{:>10} {:>8} {:>8}  TYPE", "OID", "TID", "SIZE");
        let mut stmt = conn.prepare("SELECT oid FROM pb_object ORDER BY oid")?;
        let oids: Vec<i64> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        for oid in oids {
            let s = load(&conn, oid as u64)?;
            println!("{oid:>10} {:>8} {:>8}  {}", s.tid, s.size, s.record.r#type);
        }
        return Ok(ExitCode::SUCCESS);
    };
    let pool = compile(&stored_schemas(path)?)?;
    let mut order = vec![oid];
    let mut seen = std::collections::HashSet::from([oid]);
    let mut out = Vec::new();
    while let Some(next) = order.first().copied() {
        order.remove(0);
        let s = load(&conn, next)?;
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
        .map_err(|e| format!("object {oid} has a malformed state: {e}"))?;
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
