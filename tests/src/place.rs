//! Where a test's data lives: an SQLite file or a PostgreSQL schema of its
//! own. A place has a spec string that child processes open the same way.

use pbpersist::storage::PostgresStorage;
use pbpersist::{Database, Options};
use std::sync::atomic::{AtomicU32, Ordering};

/// The server the PostgreSQL tests use unless `PBPERSIST_POSTGRES_URL` names another.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL URL for tests.
pub fn postgres_url() -> String {
    std::env::var(pbpersist::storage::PostgresStorage::URL_VARIABLE).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether the test server answers; the error says why not.
pub fn postgres_reachable() -> Result<(), String> {
    let url = postgres_url();
    let mut config: postgres::Config = url.parse().map_err(|_| "PBPERSIST_POSTGRES_URL is malformed".to_owned())?;
    config.connect_timeout(std::time::Duration::from_secs(3));
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // The URL may hold a password: name the server, not the URL.
    let server = format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""));
    config.connect(postgres::NoTls).map(drop).map_err(|e| format!("no PostgreSQL server at {server}: {e}"))
}

/// A fresh schema in the test server, dropped with everything in it when
/// this value is dropped.
#[derive(Debug)]
pub struct PgSchema {
    name: String,
}

impl PgSchema {
    /// A schema name no other test or process uses.
    pub fn new() -> PgSchema {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let name = format!("pbt_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos % 1_000_000);
        PgSchema { name }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec that [`open_spec`] opens.
    pub fn spec(&self) -> String {
        format!("postgres:{}", self.name)
    }

    /// The storage, creating the tables on first use.
    pub fn storage(&self) -> PostgresStorage {
        PostgresStorage::builder(&postgres_url()).schema(&self.name).open().expect("the test PostgreSQL server")
    }

    /// A database over this schema.
    pub fn open(&self, options: Options) -> Database {
        Database::with_storage_and_options(self.storage(), options).expect("open the database")
    }

    /// A plain client with `search_path` set to this schema, for checking
    /// tables directly.
    pub fn client(&self) -> postgres::Client {
        let mut config: postgres::Config = postgres_url().parse().expect("the test URL");
        config.options(&format!("-c search_path={}", self.name));
        config.connect(postgres::NoTls).expect("the test PostgreSQL server")
    }
}

impl Default for PgSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let Ok(mut config) = postgres_url().parse::<postgres::Config>() else { return };
        // Connections of dropped databases may linger a moment on the
        // server; wait for their locks, but not forever.
        config.options("-c lock_timeout=10s");
        if let Ok(mut c) = config.connect(postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

/// Opens a database from a spec: `postgres:<schema>` for a schema on the
/// test server, anything else as the path of an SQLite file.
pub fn open_spec(spec: &str, options: Options) -> pbpersist::Result<Database> {
    #[cfg(feature = "etcd")]
    if spec.starts_with("etcd://") {
        return Database::with_storage_and_options(pbpersist::storage::EtcdStorage::open(spec)?, options);
    }
    #[cfg(feature = "server")]
    if spec.starts_with("http://") {
        return Database::with_storage_and_options(pbpersist::storage::RemoteStorage::connect(spec)?, options);
    }
    if ["file://", "s3://"].iter().any(|s| spec.starts_with(s)) {
        return Database::with_storage_and_options(pbpersist::storage::ObjectStorage::open(spec)?, options);
    }
    match spec.strip_prefix("postgres:") {
        Some(schema) => {
            let storage = PostgresStorage::builder(&postgres_url()).schema(schema).open()?;
            Database::with_storage_and_options(storage, options)
        }
        None => Database::open_with(spec, options),
    }
}
