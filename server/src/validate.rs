//! What a client may write, checked in one place before the storage sees
//! it. [`admit`] is the gate of every record a client writes, in a commit
//! or as a merge's answer: an oid the format allows, a well-formed
//! `pbpersist.Record`, a type of a package the client may write, and with
//! validation on, a type the stored schemas define, a state that decodes as
//! it, required fields set, nesting within the limit, and a reference list
//! naming exactly the `pbpersist.Ref` values in the state. So a client that
//! lies cannot make gc drop a live object or leave a record other languages
//! cannot read. [`check_schemas`] is the gate of `.proto` files a client
//! stores.

use std::sync::{Arc, Mutex};

use pbpersist::StorageError;
use pbpersist::record::Record;
use pbpersist::reflect::{DecodeError, Schemas};
use pbpersist::storage::Storage;
use prost_reflect::{DynamicMessage, ReflectMessage, Value};

use crate::access::{Access, Caller};

/// Oids at or above this are not oids (docs/format.md).
const OID_LIMIT: u64 = 1 << 63;

fn refuse(reason: String) -> StorageError {
    StorageError::Refused { backend: "pbpersist", reason }
}

/// Admits the record a client writes for object `oid`, or says why not.
pub(crate) fn admit(
    storage: &dyn Storage,
    validator: Option<&Validator>,
    caller: &Caller,
    oid: u64,
    record: &[u8],
) -> Result<(), StorageError> {
    if oid >= OID_LIMIT {
        return Err(refuse(format!("object {oid} is not an oid: oids are below 2^63")));
    }
    let record = Record::from_bytes(bytes::Bytes::copy_from_slice(record))
        .map_err(|e| refuse(format!("the record of object {oid} is malformed: {e}")))?;
    if !is_full_name(&record.r#type) {
        return Err(refuse(format!(
            "object {oid} has the type {:?}, which is not a message's full name (such as demo.Tower)",
            record.r#type
        )));
    }
    if !caller.may_write_type(&record.r#type) {
        return Err(refuse(format!(
            "client {} may not write objects of type {} (object {oid}); it may write the packages: {}",
            caller.name(),
            record.r#type,
            caller.packages()
        )));
    }
    match validator {
        Some(v) => v.check(storage, oid, &record),
        None => Ok(()),
    }
}

/// Whether `name` is a protobuf full name as records carry it: dotted
/// identifiers, without a leading dot (docs/format.md).
fn is_full_name(name: &str) -> bool {
    name.len() <= 512
        && name.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// The server's gate for what clients write, outside a running server: for
/// tools that check records or schemas before sending them, and for the
/// fuzz target that feeds it arbitrary bytes.
pub struct RecordGate {
    validator: Option<Validator>,
}

impl std::fmt::Debug for RecordGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordGate").field("validates", &self.validator.is_some()).finish()
    }
}

impl RecordGate {
    /// A gate that also validates records against the stored schemas if
    /// `validate`, with messages nesting at most `max_depth` levels.
    pub fn new(validate: bool, max_depth: usize) -> Self {
        RecordGate { validator: validate.then(|| Validator::new(max_depth)) }
    }

    /// Checks the record `client` writes for object `oid` in `storage` (the
    /// stored schemas are read from it) as the server does: `Ok` if the
    /// server would pass it on to the storage. `None` is a client with
    /// every right, as on a server without tokens.
    pub fn check(
        &self,
        storage: &dyn Storage,
        client: Option<&crate::Client>,
        oid: u64,
        record: &[u8],
    ) -> Result<(), StorageError> {
        admit(storage, self.validator.as_ref(), &caller_of(client), oid, record)
    }

    /// Checks `.proto` files `client` stores as `PutSchemas` does.
    pub fn check_schemas(
        &self,
        storage: &dyn Storage,
        client: Option<&crate::Client>,
        files: &[(String, String)],
        force: bool,
    ) -> Result<(), StorageError> {
        check_schemas(storage, &caller_of(client), files, force)
    }
}

fn caller_of(client: Option<&crate::Client>) -> Caller {
    Caller { client: client.cloned().map(Arc::new) }
}

/// The stored schemas, compiled, and the limits records are held to.
pub(crate) struct Validator {
    schemas: Mutex<Option<Arc<Schemas>>>,
    max_depth: usize,
}

impl Validator {
    pub(crate) fn new(max_depth: usize) -> Self {
        Validator { schemas: Mutex::new(None), max_depth }
    }

    /// Forgets the compiled schemas, after a client stored new ones.
    pub(crate) fn schemas_changed(&self) {
        *self.schemas.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn schemas(&self, storage: &dyn Storage, fresh: bool) -> Result<Arc<Schemas>, StorageError> {
        let mut schemas = self.schemas.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = schemas.as_ref().filter(|_| !fresh) {
            return Ok(s.clone());
        }
        let compiled = Arc::new(Schemas::compile(&storage.schemas()?).map_err(|e| {
            StorageError::Format(format!("the stored schemas do not compile: {}", pbpersist::report(&e)))
        })?);
        *schemas = Some(compiled.clone());
        Ok(compiled)
    }

    /// Checks the record of object `oid` against the stored schemas.
    fn check(&self, storage: &dyn Storage, oid: u64, record: &Record) -> Result<(), StorageError> {
        let mut schemas = self.schemas(storage, false)?;
        if schemas.message(&record.r#type).is_none() {
            // Another client may have stored the schema since.
            schemas = self.schemas(storage, true)?;
        }
        let state = match schemas.decode_record(oid, record) {
            Ok(decoded) => decoded.state,
            Err(DecodeError::UnknownType { .. }) => {
                return Err(refuse(format!(
                    "object {oid} is of type {}, which the database has no schema for (store the schema first)",
                    record.r#type
                )));
            }
            Err(e) => return Err(refuse(pbpersist::report(&e))),
        };
        let mut walk = Walk { refs: Vec::new(), unknown: false, max_depth: self.max_depth };
        walk.message(&state, 0).map_err(|e| refuse(format!("object {oid} ({}): {e}", record.r#type)))?;
        let mut listed = record.refs.clone();
        listed.sort_unstable();
        listed.dedup();
        walk.refs.sort_unstable();
        walk.refs.dedup();
        // References inside fields the schema does not know cannot be seen,
        // so a state with unknown fields may list more than it shows.
        let lies =
            if walk.unknown { walk.refs.iter().any(|r| listed.binary_search(r).is_err()) } else { listed != walk.refs };
        if lies {
            return Err(refuse(format!(
                "the reference list of object {oid} ({:?}) does not match the references in its state ({:?})",
                record.refs, walk.refs
            )));
        }
        Ok(())
    }
}

/// Compiles `.proto` files with pbpersist's own; the error names files as
/// they are named in the database.
fn compile_files(files: &[(String, String)]) -> Result<Schemas, String> {
    Schemas::compile(files).map_err(|e| pbpersist::report(&e))
}

/// Checks `.proto` files a client stores, before any is stored: each has
/// a name [`pbpersist::reflect::check_file_name`] allows and a package the
/// client may write; with the stored files they compile; and unless an
/// admin forces it, they change no stored type in a way
/// [`pbpersist_build::breaking_changes`] lists (a removed message or field,
/// a changed field type, a reference turned into a plain field or pointed
/// elsewhere, a field made required, ...).
pub(crate) fn check_schemas(
    storage: &dyn Storage,
    caller: &Caller,
    files: &[(String, String)],
    force: bool,
) -> Result<(), StorageError> {
    if force && let Some(why) = caller.lacks(Access::Admin, "force a schema change") {
        // The service refuses this before; kept so the gate stands alone.
        return Err(refuse(why));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in files {
        if let Err(e) = pbpersist::reflect::check_file_name(name) {
            return Err(refuse(e.to_string()));
        }
        if !seen.insert(name.as_str()) {
            return Err(refuse(format!("{name} is sent twice")));
        }
    }
    let stored = storage.schemas()?;
    let mut merged: std::collections::BTreeMap<String, String> = stored.iter().cloned().collect();
    merged.extend(files.iter().cloned());
    let merged: Vec<(String, String)> = merged.into_iter().collect();
    let new =
        compile_files(&merged).map_err(|e| refuse(format!("the schemas do not compile with the stored ones: {e}")))?;
    for (name, _) in files {
        let package = new.pool().get_file_by_name(name).map(|f| f.package_name().to_owned()).unwrap_or_default();
        if !caller.may_write_package(&package) {
            return Err(refuse(format!(
                "client {} may not store {name}, of package {package:?}; it may write the packages: {}",
                caller.name(),
                caller.packages()
            )));
        }
    }
    // Stored files that do not compile describe nothing a record can rely
    // on: against them, any set that compiles is an improvement.
    let Ok(old) = compile_files(&stored) else { return Ok(()) };
    let breaking = pbpersist_build::breaking_changes(old.pool(), new.pool());
    if !breaking.is_empty() && !force {
        let list: Vec<String> = breaking.iter().map(ToString::to_string).collect();
        return Err(refuse(format!(
            "the schemas break stored types ({}); an admin client may force the change",
            list.join("; ")
        )));
    }
    Ok(())
}

/// Checks that the stored `.proto` files `names` may be deleted: each is
/// stored, the files left compile, and every stored object's type is still
/// defined by them (found by a scan of every object, in pages).
pub(crate) fn check_deletion(storage: &dyn Storage, names: &[String]) -> Result<(), StorageError> {
    let stored = storage.schemas()?;
    for name in names {
        if !stored.iter().any(|(n, _)| n == name) {
            return Err(refuse(format!("the database stores no schema file {name:?}")));
        }
    }
    let left: Vec<(String, String)> = stored.into_iter().filter(|(n, _)| !names.contains(n)).collect();
    let schemas = compile_files(&left)
        .map_err(|e| refuse(format!("the schema files left would not compile without {names:?}: {e}")))?;
    let mut types = std::collections::BTreeSet::new();
    let mut session = storage.open_session()?;
    session.begin(None)?;
    let mut after = None;
    loop {
        let page = session.scan(after, 1000)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(*last);
        for (oid, loaded) in page {
            let record = Record::from_bytes(loaded.record.into())
                .map_err(|e| StorageError::Format(format!("the record of object {oid} is malformed: {e}")))?;
            types.insert(record.r#type);
        }
    }
    session.end()?;
    if let Some(needed) = types.iter().find(|t| schemas.message(t).is_none()) {
        return Err(refuse(format!("stored objects of type {needed} need the schema files {names:?}")));
    }
    Ok(())
}

/// What a walk over a decoded state finds.
struct Walk {
    refs: Vec<u64>,
    unknown: bool,
    max_depth: usize,
}

impl Walk {
    fn message(&mut self, message: &DynamicMessage, depth: usize) -> Result<(), String> {
        if depth > self.max_depth {
            return Err(format!("messages nest deeper than {} levels", self.max_depth));
        }
        let descriptor = message.descriptor();
        if descriptor.full_name() == "pbpersist.Ref" {
            if let Some(oid) = message.get_field_by_name("oid").and_then(|v| v.as_u64()) {
                self.refs.push(oid);
            }
            return Ok(());
        }
        if message.unknown_fields().next().is_some() {
            self.unknown = true;
        }
        for field in descriptor.fields() {
            if field.cardinality() == prost_reflect::Cardinality::Required && !message.has_field(&field) {
                return Err(format!("the required field {} is not set", field.full_name()));
            }
        }
        for (_, value) in message.fields() {
            self.value(value, depth)?;
        }
        Ok(())
    }

    fn value(&mut self, value: &Value, depth: usize) -> Result<(), String> {
        match value {
            Value::Message(m) => self.message(m, depth + 1),
            Value::List(items) => items.iter().try_for_each(|v| self.value(v, depth)),
            Value::Map(entries) => entries.values().try_for_each(|v| self.value(v, depth)),
            _ => Ok(()),
        }
    }
}
