//! `cargo pbpersist inspect`: reads records through a read-only storage
//! (SQLite or PostgreSQL) and decodes states with the schemas the database
//! stores, so no Rust types are needed.

use crate::Failure;
use crate::open::{Source, Stored};
use pbpersist::reflect::Schemas;
use pbpersist::{Database, Oid};
use std::process::ExitCode;

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
    // Following references may load the whole database before printing.
    let progress = follow.then(|| crate::progress::Progress::start(format!("loading from object {oid}")));
    while let Some(next) = order.first().copied() {
        order.remove(0);
        if let Some(p) = &progress {
            p.show(format!("loaded {} object(s), {} to go", out.len(), order.len() + 1));
        }
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
            add_tree(source.database(), next, &mut shown)?;
        }
        out.push(shown);
    }
    drop(progress);
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
