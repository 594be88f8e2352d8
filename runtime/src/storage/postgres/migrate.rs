//! The versioned layout of a PostgreSQL database: each migration moves the
//! layout one version up, and `pb_meta.format` records where a database is.

pub(super) use super::super::migrate::MigrateError;
use super::super::migrate::Migration;
use crate::storage::History;
use postgres::Client;

/// The layout version this code reads and writes (`pb_meta.format`).
pub(super) const FORMAT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migration `i` takes a database from version `i` to `i + 1`: its SQL, then
/// its Rust step if any. Migrations are only ever appended, so a database of
/// any older version can be brought up.
const MIGRATIONS: &[Migration<Backfill>] = &[
    Migration {
        sql: "
CREATE TABLE pb_transaction (
    tid          BIGINT PRIMARY KEY,
    committed_at BIGINT NOT NULL
);
CREATE TABLE pb_object (
    oid    BIGINT PRIMARY KEY,
    tid    BIGINT NOT NULL,
    record BYTEA NOT NULL
);
CREATE INDEX pb_object_tid ON pb_object (tid);
CREATE TABLE pb_schema (
    file   TEXT PRIMARY KEY,
    source TEXT NOT NULL
);
INSERT INTO pb_meta (key, value) VALUES ('next_oid', 1), ('last_tid', 0);
",
        backfill: None,
    },
    Migration {
        sql: "
-- A random identity, so that a local state cache never serves one
-- database's states for another's.
INSERT INTO pb_meta (key, value) VALUES ('database_id', (random() * 9.2e18)::bigint);
",
        backfill: None,
    },
    Migration {
        sql: "
-- Each record's reference list as a column, so the server can follow
-- references itself (prefetch along a chain in one query).
ALTER TABLE pb_object ADD COLUMN refs BIGINT[] NOT NULL DEFAULT '{}';
",
        backfill: Some(backfill_refs),
    },
    Migration {
        sql: "
-- Each transaction lists the oids it wrote, for polling, instead of an
-- index on pb_object.tid: with no index on a changing column and room left
-- in each page, updating an object is a heap-only (HOT) update.
ALTER TABLE pb_transaction ADD COLUMN oids BIGINT[];
DROP INDEX IF EXISTS pb_object_tid;
ALTER TABLE pb_object SET (fillfactor = 85);
",
        backfill: None,
    },
    Migration {
        sql: "
-- Transaction metadata; earlier transactions have none.
ALTER TABLE pb_transaction ADD COLUMN user_name TEXT NOT NULL DEFAULT '',
                           ADD COLUMN description TEXT NOT NULL DEFAULT '',
                           ADD COLUMN extension BYTEA;
",
        backfill: None,
    },
    Migration {
        sql: "
-- Replaced states, kept by history-preserving databases, with the tid of
-- the transaction that replaced each (a pack removes those replaced long ago).
CREATE TABLE pb_object_revision (
    oid     BIGINT NOT NULL,
    tid     BIGINT NOT NULL,
    end_tid BIGINT NOT NULL,
    record  BYTEA NOT NULL,
    PRIMARY KEY (oid, tid)
);
INSERT INTO pb_meta (key, value) VALUES ('history', 0);
",
        backfill: None,
    },
];

/// A Rust step of a migration, run in its transaction.
type Backfill = fn(&mut postgres::Transaction<'_>) -> Result<(), postgres::Error>;

/// Fills `pb_object.refs` from each record's reference list, in batches.
fn backfill_refs(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    let mut after = -1i64;
    loop {
        let rows = tx.query("SELECT oid, record FROM pb_object WHERE oid > $1 ORDER BY oid LIMIT 1000", &[&after])?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.get(0);
        for row in &rows {
            // A malformed record keeps an empty list; loading it reports the damage.
            let refs = crate::record::refs_only(row.get::<_, &[u8]>(1)).unwrap_or_default();
            if !refs.is_empty() {
                let refs: Vec<i64> = refs.into_iter().map(|r| r as i64).collect();
                tx.execute("UPDATE pb_object SET refs = $2 WHERE oid = $1", &[&row.get::<_, i64>(0), &refs])?;
            }
        }
    }
}

/// A key for `pg_advisory_xact_lock` that serializes migrations of one
/// database: the bytes of "pbpersis" read as a big-endian integer.
const MIGRATION_LOCK: i64 = 0x7062_7065_7273_6973;

/// Creates the tables on first use and applies any missing migration, in one
/// transaction; a database it creates keeps history if `history` says so.
/// Concurrent openers wait on an advisory lock, so exactly one of them
/// migrates and the others find the work done.
pub(super) fn migrate(
    client: &mut Client,
    schema: Option<&str>,
    history: Option<History>,
) -> Result<(), MigrateError<postgres::Error>> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    if let Some(schema) = schema {
        // `schema` was checked to be a plain identifier, so quoting suffices.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))?;
    }
    let found = super::super::migrate::migrate(
        &mut tx,
        "CREATE TABLE IF NOT EXISTS pb_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        MIGRATIONS,
        |backfill, tx| backfill(tx),
    )?;
    if found == 0 && history == Some(History::Preserving) {
        tx.batch_execute("UPDATE pb_meta SET value = 1 WHERE key = 'history'")?;
    }
    tx.commit()?;
    Ok(())
}
