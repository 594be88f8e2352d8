//! PostgreSQL: one database shared by many processes on many hosts.
//!
//! The tables are those of the SQLite storage (documented in
//! `docs/format.md`), so any PostgreSQL client can read them. Commits lock
//! the rows they touch in oid order, so writers of different objects commit
//! in parallel; only choosing the tid and the final `COMMIT` are serialized.

mod history;
mod migrate;
mod session;

use super::StateCacheStats;
use migrate::FORMAT_VERSION;

use super::{
    AdminStorage, Committed, History, HistoryStorage, Revision, Session, Storage, TransactionMeta, TransactionRange,
};
use crate::{Oid, StorageError, Tid};
use postgres::{Client, NoTls};
use std::sync::{Arc, Mutex};

/// The environment variable [`PostgresStorage::from_env`] reads.
const URL_VARIABLE: &str = "PBPERSIST_POSTGRES_URL";

/// A PostgreSQL database, opened from a URL such as
/// `postgres://app@db.example/objects`.
///
/// Connections are plain TCP or Unix sockets (no TLS). A lost connection
/// gives [`StorageError::Unavailable`] and is opened again by the next
/// transaction. Errors and `Debug` output name the server and database but
/// never the password.
///
/// Clones share the connections and the state cache.
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
    /// A connection for oid reservations, schemas and garbage collection,
    /// which must not wait on any session's transaction.
    admin: Arc<Mutex<Option<Client>>>,
}

pub(crate) struct Inner {
    config: postgres::Config,
    /// `user@host:port/db`, for messages: never the password.
    target: String,
    state_cache: Option<super::local_cache::StateCache>,
    /// Whether sessions are read-only (`default_transaction_read_only`).
    read_only: bool,
    /// Whether commits keep the states they replace.
    history: History,
    /// `pb_meta.database_id`.
    database_id: u64,
    /// `pb_meta.next_oid` as last read or raised by this process: a lower
    /// bound of it, since it only grows.
    next_oid: std::sync::atomic::AtomicU64,
}

/// Options for opening a [`PostgresStorage`], from [`PostgresStorage::builder`].
pub struct PostgresBuilder {
    url: String,
    schema: Option<String>,
    state_cache: Option<(std::path::PathBuf, u64)>,
    read_only: bool,
    history: Option<History>,
}

impl std::fmt::Debug for PostgresBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: show where it points, not what it says.
        let target = self.url.parse::<postgres::Config>().map(|c| target(&c)).unwrap_or_else(|_| "?".into());
        f.debug_struct("PostgresBuilder")
            .field("target", &target)
            .field("schema", &self.schema)
            .field("state_cache", &self.state_cache)
            .finish()
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage").field("target", &self.inner.target).finish()
    }
}

impl PostgresStorage {
    /// The layout version this program reads and writes (`pb_meta.format`,
    /// docs/format.md); older databases are migrated up to it on open.
    pub const FORMAT_VERSION: i64 = FORMAT_VERSION;

    /// The environment variable [`from_env`](Self::from_env) reads the URL from.
    pub const URL_VARIABLE: &str = URL_VARIABLE;

    /// Opens the database at `url`, creating or migrating its tables if needed.
    pub fn open(url: &str) -> Result<Self, StorageError> {
        Self::builder(url).open()
    }

    /// Opens the existing database at `url` read-only: no table is created
    /// or migrated, sessions run with `default_transaction_read_only`, and
    /// every write is refused with [`StorageError::ReadOnly`].
    pub fn open_read_only(url: &str) -> Result<Self, StorageError> {
        Self::builder(url).read_only().open()
    }

    /// Opens the database whose URL is in the `PBPERSIST_POSTGRES_URL`
    /// environment variable.
    pub fn from_env() -> Result<Self, StorageError> {
        let url = std::env::var(URL_VARIABLE)
            .map_err(|_| StorageError::Config(format!("the environment variable {URL_VARIABLE} is not set")))?;
        Self::open(&url)
    }

    /// Options beyond the URL.
    pub fn builder(url: &str) -> PostgresBuilder {
        PostgresBuilder { url: url.to_owned(), schema: None, state_cache: None, read_only: false, history: None }
    }

    /// `user@host:port/db`: where this storage is, without credentials.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// How the local state cache has done, if one was configured.
    pub fn state_cache_stats(&self) -> Option<StateCacheStats> {
        self.inner.state_cache.as_ref().map(|c| c.stats())
    }

    fn refuse_writes(&self) -> Result<(), StorageError> {
        if self.inner.read_only { Err(StorageError::ReadOnly { backend: "postgres" }) } else { Ok(()) }
    }

    fn with_admin<R>(&self, f: impl FnOnce(&mut Client) -> Result<R, postgres::Error>) -> Result<R, StorageError> {
        // A poisoned lock means a panic mid-call; the client is dropped below
        // on any error, so reusing it is safe.
        let mut slot = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let client = match &mut *slot {
            Some(c) => c,
            None => slot.insert(self.inner.connect()?),
        };
        let result = f(client);
        result.map_err(|e| {
            let err = self.inner.error(e);
            // The connection may be mid-transaction or broken: start afresh.
            *slot = None;
            err
        })
    }
}

impl PostgresBuilder {
    /// Keeps the tables in this PostgreSQL schema (namespace), created if
    /// missing, instead of the connection's default (`public`). Several
    /// pbpersist databases can then share one PostgreSQL database. The name
    /// must be lowercase letters, digits and underscores.
    pub fn schema(mut self, name: &str) -> Self {
        self.schema = Some(name.to_owned());
        self
    }

    /// Keeps the records this process loads in a local SQLite file at
    /// `path`, up to about `max_bytes`, so that a restarted process reads
    /// them from disk instead of the server. At each transaction start the
    /// entries of objects committed since are dropped, so the file never
    /// serves a stale state. One process uses a file at a time.
    pub fn state_cache(mut self, path: impl Into<std::path::PathBuf>, max_bytes: u64) -> Self {
        self.state_cache = Some((path.into(), max_bytes));
        self
    }

    /// Opens the database read-only (see [`PostgresStorage::open_read_only`]).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Creates a new database keeping history or not, and requires an
    /// existing one to have been created so. Without it, a new database is
    /// history-free and an existing one opens as it is.
    pub fn history(mut self, history: History) -> Self {
        self.history = Some(history);
        self
    }

    /// Connects, then creates or migrates the tables (read-only: checks
    /// that they are of this version).
    pub fn open(self) -> Result<PostgresStorage, StorageError> {
        let mut config: postgres::Config = self.url.parse().map_err(|_| {
            // The parser's message may quote the URL, password included.
            StorageError::Config("the PostgreSQL URL is malformed (it is not shown: it may hold a password)".into())
        })?;
        let mut options = Vec::new();
        if let Some(schema) = &self.schema {
            let plain = !schema.is_empty()
                && schema.len() <= 63
                && !schema.starts_with(|c: char| c.is_ascii_digit())
                && schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !plain {
                return Err(StorageError::Config(format!(
                    "{schema:?} is not a plain PostgreSQL schema name (lowercase letters, digits, underscores)"
                )));
            }
            options.push(format!("-c search_path={schema}"));
        }
        if self.read_only {
            // The server refuses writes too, whatever this program attempts.
            options.push("-c default_transaction_read_only=on".to_owned());
        }
        if !options.is_empty() {
            // After the URL's own options (`?options=...`), not instead of them.
            let joined: Vec<String> = config.get_options().map(str::to_owned).into_iter().chain(options).collect();
            config.options(&joined.join(" "));
        }
        if config.get_application_name().is_none() {
            config.application_name("pbpersist");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let target = target(&config);
        let mut inner = Inner {
            config,
            target,
            state_cache: None,
            read_only: self.read_only,
            history: History::Free,
            database_id: 0,
            next_oid: Default::default(),
        };
        let mut client = inner.connect()?;
        if self.read_only {
            super::migrate::require_current(&mut client, FORMAT_VERSION, &inner.target)?;
        } else {
            migrate::migrate(&mut client, self.schema.as_deref(), self.history).map_err(|e| match e {
                migrate::MigrateError::Db(e) => inner.error(e),
                migrate::MigrateError::TooNew(v) => crate::storage::layout::too_new(&inner.target, v, FORMAT_VERSION),
            })?;
        }
        let value: i64 = client
            .query_one("SELECT value FROM pb_meta WHERE key = 'history'", &[])
            .map_err(|e| inner.error(e))?
            .get(0);
        inner.history = if value == 0 { History::Free } else { History::Preserving };
        if let Some(wanted) = self.history.filter(|h| *h != inner.history) {
            return Err(StorageError::Config(format!(
                "{} was created {}, not {}: a database keeps the choice it was created with",
                inner.target,
                crate::storage::sql::describe_history(inner.history),
                crate::storage::sql::describe_history(wanted)
            )));
        }
        let id: i64 = client
            .query_one("SELECT value FROM pb_meta WHERE key = 'database_id'", &[])
            .map_err(|e| inner.error(e))?
            .get(0);
        inner.database_id = id as u64;
        if let Some((path, max_bytes)) = &self.state_cache {
            inner.state_cache = Some(super::local_cache::StateCache::open(path, id as u64, *max_bytes)?);
        }
        Ok(PostgresStorage { inner: Arc::new(inner), admin: Arc::new(Mutex::new(Some(client))) })
    }
}

fn target(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = config.get_dbname().unwrap_or("");
    format!("{user}{host}:{port}/{db}")
}

impl Inner {
    /// Raises the known lower bound of `pb_meta.next_oid` to `next`, and
    /// returns the bound.
    pub(crate) fn saw_next_oid(&self, next: u64) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.next_oid.fetch_max(next, Relaxed).max(next)
    }

    /// The known lower bound of `pb_meta.next_oid`.
    pub(crate) fn known_next_oid(&self) -> u64 {
        self.next_oid.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn connect(&self) -> Result<Client, StorageError> {
        self.config.connect(NoTls).map_err(|e| self.error(e))
    }

    /// Sorts a driver error into a typed one: a broken or refused connection
    /// is [`StorageError::Unavailable`], anything the server said is
    /// [`StorageError::Backend`].
    pub(crate) fn error(&self, e: postgres::Error) -> StorageError {
        use postgres::error::SqlState;
        let code = e.code().map(|c| c.code().to_owned());
        // Class 08 is a connection exception, 57 an operator intervention
        // such as a server shutdown or a terminated backend. Errors without
        // a code are the connection's when they come from I/O; others (a
        // parameter of the wrong type, say) are this program's.
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let lost = e.is_closed()
            || (code.is_none() && io)
            || code.as_deref().is_some_and(|c| c.starts_with("08") || c.starts_with("57"));
        if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
        {
            StorageError::Aborted { backend: "postgres", source: Box::new(e) }
        } else if lost && e.code() != Some(&SqlState::QUERY_CANCELED) {
            StorageError::Unavailable { backend: "postgres", target: self.target.clone(), source: Box::new(e) }
        } else {
            StorageError::Backend { backend: "postgres", source: Box::new(e) }
        }
    }
}

/// A row of `oid, tid, record`, as every load query returns them.
fn loaded(r: &postgres::Row) -> (Oid, super::Loaded) {
    (Oid(r.get::<_, i64>(0) as u64), super::Loaded { tid: Tid(r.get::<_, i64>(1) as u64), record: r.get(2) })
}

/// Oids as the tables store them; one at or above 2^63, which no row has,
/// is left out.
fn to_i64(oids: impl Iterator<Item = Oid>) -> Vec<i64> {
    oids.filter_map(|o| crate::storage::sql::sql_int(o.0)).collect()
}

impl Storage for PostgresStorage {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn open_session(&self) -> Result<Box<dyn Session>, StorageError> {
        Ok(Box::new(session::PgSession::new(self.inner.clone())?))
    }

    fn new_oids(&self, count: u64) -> Result<std::ops::Range<u64>, StorageError> {
        self.refuse_writes()?;
        let range = self.with_admin(|c| {
            let mut tx = c.transaction()?;
            let next: i64 = tx.query_one("SELECT value FROM pb_meta WHERE key = 'next_oid' FOR UPDATE", &[])?.get(0);
            let range = crate::storage::oids::oid_range("postgres", next.max(0) as u64, count);
            if let Ok(range) = &range
                && count > 0
            {
                // Below 2^63, so stored as it is.
                tx.execute("UPDATE pb_meta SET value = $1 WHERE key = 'next_oid'", &[&(range.end as i64)])?;
            }
            tx.commit()?;
            Ok(range)
        })??;
        self.inner.saw_next_oid(range.end);
        Ok(range)
    }

    fn swap_schema(&self, name: &str, expected: Option<&str>, source: &str) -> Result<bool, StorageError> {
        self.refuse_writes()?;
        // One statement each: the row lock (or the unique index, for a new
        // file) makes a concurrent swap wait and then find its text gone.
        let changed = self.with_admin(|c| match expected {
            None => c.execute(
                "INSERT INTO pb_schema (file, source) VALUES ($1, $2) ON CONFLICT (file) DO NOTHING",
                &[&name, &source],
            ),
            Some(old) => {
                c.execute("UPDATE pb_schema SET source = $2 WHERE file = $1 AND source = $3", &[&name, &source, &old])
            }
        })?;
        Ok(changed == 1)
    }

    fn delete_schemas(&self, names: &[String]) -> Result<(), StorageError> {
        self.refuse_writes()?;
        self.with_admin(|c| c.execute("DELETE FROM pb_schema WHERE file = ANY($1)", &[&names]).map(drop))
    }

    fn schemas(&self) -> Result<Vec<(String, String)>, StorageError> {
        self.with_admin(|c| {
            let rows = c.query("SELECT file, source FROM pb_schema ORDER BY file", &[])?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn transactions(&self, range: TransactionRange) -> Result<Vec<Committed>, StorageError> {
        // Every tid is below 2^63: none comes after one at or above it.
        let Some(after) = crate::storage::sql::sql_int(range.after.0) else { return Ok(Vec::new()) };
        let until = range.until.map_or(i64::MAX, |u| crate::storage::sql::sql_bound(u.0));
        let order = if range.newest_first { "DESC" } else { "ASC" };
        let limit = i64::try_from(range.limit).unwrap_or(i64::MAX);
        self.with_admin(|c| {
            // One snapshot for the list and the records.
            let mut tx = c.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?;
            let sql = format!(
                "SELECT tid, committed_at, oids, user_name, description, extension \
                 FROM pb_transaction WHERE tid > $1 AND tid <= $3 ORDER BY tid {order} LIMIT $2"
            );
            let rows = tx.query(&sql, &[&after, &limit, &until])?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let tid: i64 = row.get(0);
                let oids: Option<Vec<i64>> = row.get(2);
                let oids = oids.map(|mut oids| {
                    oids.sort_unstable();
                    oids.into_iter().map(|o| Oid(o as u64)).collect::<Vec<_>>()
                });
                let mut records = Vec::new();
                if range.records
                    && let Some(oids) = &oids
                {
                    // The states as the transaction wrote them: current, or kept as history.
                    let current = tx.query(
                        "SELECT oid, record FROM (
                             SELECT oid, record FROM pb_object WHERE oid = ANY($1) AND tid = $2
                             UNION ALL SELECT oid, record FROM pb_object_revision WHERE oid = ANY($1) AND tid = $2
                         ) AS s ORDER BY oid",
                        &[&to_i64(oids.iter().copied()), &tid],
                    )?;
                    records = current.iter().map(|r| (Oid(r.get::<_, i64>(0) as u64), r.get(1))).collect();
                }
                let meta = TransactionMeta { user: row.get(3), description: row.get(4), ..Default::default() };
                let listed = Committed {
                    tid: Tid(tid as u64),
                    time: crate::storage::layout::time_from_micros(row.get(1)),
                    meta,
                    oids,
                    records,
                };
                out.push((listed, row.get::<_, Option<Vec<u8>>>(5)));
            }
            tx.commit()?;
            Ok(out)
        })?
        .into_iter()
        .map(|(mut listed, extension)| {
            if let Some(bytes) = extension {
                listed.meta.extension = TransactionMeta::decode_extension(&bytes)?;
            }
            Ok(listed)
        })
        .collect()
    }

    fn read_only(&self) -> bool {
        self.inner.read_only
    }

    fn tid_before(&self, time: std::time::SystemTime) -> Result<Option<Tid>, StorageError> {
        let micros = super::commit::micros(time);
        let row = self
            .with_admin(|c| c.query_one("SELECT max(tid) FROM pb_transaction WHERE committed_at < $1", &[&micros]))?;
        Ok(row.get::<_, Option<i64>>(0).map(|t| Tid(t as u64)))
    }

    fn history(&self) -> Option<&dyn HistoryStorage> {
        (self.inner.history == History::Preserving).then_some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStorage> {
        Some(self)
    }
}

impl HistoryStorage for PostgresStorage {
    fn states(&self, oid: Oid, limit: usize) -> Result<Vec<Revision>, StorageError> {
        self.with_admin(|c| history::revisions(c, oid, limit))?
    }

    fn open_session_at(&self, at: Tid) -> Result<Box<dyn Session>, StorageError> {
        if self.inner.history != History::Preserving {
            return Err(StorageError::NoHistory { backend: "postgres" });
        }
        let last: i64 =
            self.with_admin(|c| c.query_one("SELECT value FROM pb_meta WHERE key = 'last_tid'", &[]))?.get(0);
        Ok(super::past::Past::wrap(
            "postgres",
            history::PgAtSession::new(self.inner.clone(), at.min(Tid(last as u64)))?,
        ))
    }

    fn packed_tid(&self) -> Result<Tid, StorageError> {
        let row = self.with_admin(|c| c.query_opt("SELECT value FROM pb_meta WHERE key = 'packed_tid'", &[]))?;
        Ok(Tid(row.map_or(0, |r| r.get::<_, i64>(0)) as u64))
    }
}

impl AdminStorage for PostgresStorage {
    fn database_id(&self) -> Result<Option<u64>, StorageError> {
        Ok(Some(self.inner.database_id))
    }

    fn collect_garbage(&self, dry_run: bool) -> Result<Vec<Oid>, StorageError> {
        if !dry_run {
            self.refuse_writes()?;
        }
        let inner = &self.inner;
        self.with_admin(|c| {
            let tx = if inner.read_only {
                // A report walks one snapshot; a read-only session may not lock.
                c.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).start()?
            } else {
                let mut tx = c.transaction()?;
                // Holding the tid row keeps commits from finishing while the
                // graph is walked: each must take it to choose its tid.
                tx.execute("SELECT value FROM pb_meta WHERE key = 'last_tid' FOR UPDATE", &[])?;
                tx
            };
            Ok(super::gc::collect(&mut PgGc { tx: Some(tx), inner }, dry_run))
        })?
    }

    fn restore(&self, txn: &Committed, removed: &[Oid]) -> Result<(), StorageError> {
        self.refuse_writes()?;
        // Every oid and the tid are below 2^63, so the casts below keep them.
        let next = crate::storage::oids::restored_next_oid("postgres", txn, removed)? as i64;
        let history = self.inner.history == History::Preserving;
        let tid = txn.tid.0 as i64;
        let oids = to_i64(txn.records.iter().map(|r| r.0));
        let records: Vec<&[u8]> = txn.records.iter().map(|r| r.1.as_slice()).collect();
        let refs: Vec<Vec<i64>> = txn
            .records
            .iter()
            .map(|r| crate::record::refs_only(&r.1).unwrap_or_default().into_iter().map(|o| o as i64).collect())
            .collect();
        let removed = to_i64(removed.iter().copied());
        let written: Vec<i64> = oids.iter().chain(&removed).copied().collect();
        let (time, extension) = (super::commit::micros(txn.time), txn.meta.encode_extension());
        let outcome = self.with_admin(|c| {
            let mut tx = c.transaction()?;
            // The tid row orders this with commits, as a commit's own write does.
            let last: i64 =
                tx.query_one("SELECT value FROM pb_meta WHERE key = 'last_tid' FOR UPDATE", &[])?.get(0);
            if tid <= last {
                return Ok(Some(last));
            }
            if history {
                tx.execute(
                    "INSERT INTO pb_object_revision (oid, tid, end_tid, record)
                     SELECT oid, tid, $2, record FROM pb_object WHERE oid = ANY($1)",
                    &[&written, &tid],
                )?;
            }
            for ((oid, record), refs) in oids.iter().zip(&records).zip(&refs) {
                tx.execute(
                    "INSERT INTO pb_object (oid, tid, record, refs) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (oid) DO UPDATE SET tid = excluded.tid, record = excluded.record, refs = excluded.refs",
                    &[oid, &tid, record, refs],
                )?;
            }
            tx.execute("DELETE FROM pb_object WHERE oid = ANY($1)", &[&removed])?;
            tx.execute(
                "INSERT INTO pb_transaction (tid, committed_at, oids, user_name, description, extension)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&tid, &time, &written, &txn.meta.user, &txn.meta.description, &extension],
            )?;
            tx.execute("UPDATE pb_meta SET value = $1 WHERE key = 'last_tid'", &[&tid])?;
            tx.execute("UPDATE pb_meta SET value = greatest(value, $1) WHERE key = 'next_oid'", &[&next])?;
            tx.commit()?;
            Ok(None)
        })?;
        match outcome {
            Some(last) => {
                Err(StorageError::Config(format!("cannot copy in transaction {tid}: this database has {last}")))
            }
            None => {
                self.inner.saw_next_oid(next as u64);
                Ok(())
            }
        }
    }

    fn pack(&self, before: Tid, batch: usize) -> Result<u64, StorageError> {
        self.refuse_writes()?;
        if self.inner.history != History::Preserving {
            return Ok(0);
        }
        // A tid not committed yet packs up to the newest one.
        let last: i64 =
            self.with_admin(|c| c.query_one("SELECT value FROM pb_meta WHERE key = 'last_tid'", &[]))?.get(0);
        let before = crate::storage::sql::sql_bound(before.0).min(last);
        // First the promise, then the deletions it allows: a pack killed at
        // any point leaves every state a session from `packed_tid` on needs.
        self.with_admin(|c| {
            c.execute(
                "INSERT INTO pb_meta (key, value) VALUES ('packed_tid', $1)
                 ON CONFLICT (key) DO UPDATE SET value = greatest(pb_meta.value, excluded.value)",
                &[&before],
            )
        })?;
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut removed = 0;
        // About `batch` rows at a time in key order (no index on `end_tid`
        // to maintain on every commit): each batch deletes neighbouring rows.
        let mut low = -1i64;
        loop {
            let high = self.with_admin(|c| {
                c.query_opt(
                    "SELECT oid FROM pb_object_revision WHERE oid > $1 ORDER BY oid, tid OFFSET $2 LIMIT 1",
                    &[&low, &batch],
                )
            })?;
            let high = high.map_or(i64::MAX, |r| r.get::<_, i64>(0));
            removed += self.with_admin(|c| {
                c.execute(
                    "DELETE FROM pb_object_revision WHERE oid > $1 AND oid <= $2 AND end_tid <= $3",
                    &[&low, &high, &before],
                )
            })?;
            if high == i64::MAX {
                break;
            }
            low = high;
        }
        // Oid lists up to the packed tid serve neither undo nor a poll any more.
        let mut low = 0i64;
        while low < before {
            self.with_admin(|c| {
                c.execute(
                    "UPDATE pb_transaction SET oids = NULL
                     WHERE tid > $1 AND tid <= least($1 + $2, $3) AND oids IS NOT NULL",
                    &[&low, &batch, &before],
                )
            })?;
            low += batch;
        }
        Ok(removed)
    }
}

/// One garbage collection inside a transaction on the admin connection.
struct PgGc<'c> {
    tx: Option<postgres::Transaction<'c>>,
    inner: &'c Inner,
}

impl<'c> PgGc<'c> {
    fn tx(&mut self) -> &mut postgres::Transaction<'c> {
        self.tx.as_mut().expect("used before commit or rollback")
    }
}

impl super::gc::GcTx for PgGc<'_> {
    fn current(&mut self) -> Result<Vec<(Oid, Vec<u8>)>, StorageError> {
        let rows = self.tx().query("SELECT oid, record FROM pb_object", &[]).map_err(|e| self.inner.error(e))?;
        Ok(rows.into_iter().map(|r| (Oid(r.get::<_, i64>(0) as u64), r.get::<_, Vec<u8>>(1))).collect())
    }

    fn remove(&mut self, dead: &[Oid], meta: &TransactionMeta) -> Result<(), StorageError> {
        let oids = to_i64(dead.iter().copied());
        let history = self.inner.history;
        let tx = self.tx.as_mut().expect("used before commit or rollback");
        let result = (|| {
            if history == History::Preserving {
                // The removed states stay in the history, replaced by this
                // transaction (the tid row is already held).
                let now = super::commit::micros(std::time::SystemTime::now());
                tx.execute(
                    "WITH t AS (UPDATE pb_meta SET value = value + 1 WHERE key = 'last_tid' RETURNING value AS tid),
                     log AS (INSERT INTO pb_transaction (tid, committed_at, oids, description)
                             SELECT tid, $2, $1, $3 FROM t)
                     INSERT INTO pb_object_revision (oid, tid, end_tid, record)
                     SELECT o.oid, o.tid, t.tid, o.record FROM pb_object o, t WHERE o.oid = ANY($1)",
                    &[&oids, &now, &meta.description],
                )?;
            }
            tx.execute("DELETE FROM pb_object WHERE oid = ANY($1)", &[&oids]).map(drop)
        })();
        result.map_err(|e| self.inner.error(e))
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        self.tx.take().map_or(Ok(()), |tx| tx.commit().map_err(|e| self.inner.error(e)))
    }

    fn rollback(&mut self) {
        // Dropping the transaction rolls it back and releases the tid row.
        self.tx = None;
    }
}
