//! Versioned layouts, one mechanism for both SQL backends: `pb_meta.format`
//! records a database's version, and migration `i` takes it from version `i`
//! to `i + 1`. Opening runs the missing migrations in order, in the caller's
//! transaction, and refuses a database newer than the program. Migrations are
//! only ever appended, so a database of any earlier version can be brought up.

/// What the runner needs from a backend's open transaction.
pub(crate) trait Sql {
    /// The driver's error.
    type Error;
    /// Runs statements that return nothing.
    fn batch(&mut self, sql: &str) -> Result<(), Self::Error>;
    /// The integer the query's one row holds.
    fn integer(&mut self, sql: &str) -> Result<i64, Self::Error>;
}

/// One migration: its SQL, then a Rust step `F` (a backfill) if any, both in
/// the migrating transaction.
pub(crate) struct Migration<F> {
    pub sql: &'static str,
    pub backfill: Option<F>,
}

/// Why a layout could not be brought up to date.
pub(crate) enum MigrateError<E> {
    /// The driver failed; the transaction should be rolled back.
    Db(E),
    /// The database has this version, newer than the program's.
    TooNew(i64),
}

impl<E> From<E> for MigrateError<E> {
    fn from(e: E) -> Self {
        MigrateError::Db(e)
    }
}

/// Brings the database up to `migrations.len()`: creates `pb_meta` with
/// `meta_ddl` if missing (an empty database is version 0), applies every
/// missing migration (a backfill through `run`) and records the new version.
/// Returns the version found.
pub(crate) fn migrate<T: Sql, F>(
    tx: &mut T,
    meta_ddl: &str,
    migrations: &[Migration<F>],
    run: impl Fn(&F, &mut T) -> Result<(), T::Error>,
) -> Result<i64, MigrateError<T::Error>> {
    tx.batch(meta_ddl)?;
    tx.batch("INSERT INTO pb_meta (key, value) VALUES ('format', 0) ON CONFLICT (key) DO NOTHING")?;
    let found = tx.integer("SELECT value FROM pb_meta WHERE key = 'format'")?;
    let latest = migrations.len() as i64;
    if found > latest {
        return Err(MigrateError::TooNew(found));
    }
    for m in &migrations[found.max(0) as usize..] {
        tx.batch(m.sql)?;
        if let Some(backfill) = &m.backfill {
            run(backfill, tx)?;
        }
    }
    if found != latest {
        tx.batch(&format!("UPDATE pb_meta SET value = {latest} WHERE key = 'format'"))?;
    }
    Ok(found)
}

/// Checks, without changing anything, that the database `name` has exactly
/// the layout `latest`: what a read-only open needs, as it cannot migrate.
pub(crate) fn require_current<T: Sql>(conn: &mut T, latest: i64, name: &str) -> Result<(), crate::StorageError> {
    let found = conn
        .integer("SELECT value FROM pb_meta WHERE key = 'format'")
        .map_err(|_| crate::StorageError::Format(format!("{name} is not a pbpersist database (no pb_meta table)")))?;
    if found == latest {
        return Ok(());
    }
    let advice = if found < latest { " (opening it for writing once migrates it)" } else { "" };
    Err(crate::StorageError::Format(format!(
        "{name} has format version {found}; this pbpersist reads version {latest}{advice}"
    )))
}

#[cfg(feature = "sqlite")]
impl Sql for rusqlite::Connection {
    type Error = rusqlite::Error;

    fn batch(&mut self, sql: &str) -> Result<(), rusqlite::Error> {
        self.execute_batch(sql)
    }

    fn integer(&mut self, sql: &str) -> Result<i64, rusqlite::Error> {
        self.query_row(sql, [], |r| r.get(0))
    }
}

#[cfg(feature = "postgres")]
impl Sql for postgres::Client {
    type Error = postgres::Error;

    fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.batch_execute(sql)
    }

    fn integer(&mut self, sql: &str) -> Result<i64, postgres::Error> {
        Ok(self.query_one(sql, &[])?.get(0))
    }
}

#[cfg(feature = "sqlite")]
impl Sql for rusqlite::Transaction<'_> {
    type Error = rusqlite::Error;

    fn batch(&mut self, sql: &str) -> Result<(), rusqlite::Error> {
        self.execute_batch(sql)
    }

    fn integer(&mut self, sql: &str) -> Result<i64, rusqlite::Error> {
        self.query_row(sql, [], |r| r.get(0))
    }
}

#[cfg(feature = "postgres")]
impl Sql for postgres::Transaction<'_> {
    type Error = postgres::Error;

    fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.batch_execute(sql)
    }

    fn integer(&mut self, sql: &str) -> Result<i64, postgres::Error> {
        Ok(self.query_one(sql, &[])?.get(0))
    }
}
