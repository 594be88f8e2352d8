//! Checks every record a client sends against the database's stored
//! schemas before the storage sees it: the type is one the database knows,
//! the state decodes as that type, required fields are set, nesting is
//! within the limit, and the record's reference list names exactly the
//! `pbpersist.Ref` values in the state. So a client that lies cannot make
//! gc drop a live object or leave a record other languages cannot read.

use std::sync::{Arc, Mutex};

use pbpersist::StorageError;
use pbpersist::storage::Storage;
use prost_reflect::{DescriptorPool, DynamicMessage, ReflectMessage, Value};

/// The stored schemas, compiled, and the limits records are held to.
pub(crate) struct Validator {
    pool: Mutex<Option<Arc<DescriptorPool>>>,
    max_depth: usize,
}

impl Validator {
    pub(crate) fn new(max_depth: usize) -> Self {
        Validator { pool: Mutex::new(None), max_depth }
    }

    /// Forgets the compiled schemas, after a client stored new ones.
    pub(crate) fn schemas_changed(&self) {
        *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn pool(&self, storage: &dyn Storage, fresh: bool) -> Result<Arc<DescriptorPool>, StorageError> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pool.as_ref().filter(|_| !fresh) {
            return Ok(p.clone());
        }
        let compiled = Arc::new(compile(&storage.schemas()?)?);
        *pool = Some(compiled.clone());
        Ok(compiled)
    }

    /// Checks the record of object `oid`.
    pub(crate) fn check(&self, storage: &dyn Storage, oid: u64, record: &[u8]) -> Result<(), StorageError> {
        let refuse = |reason: String| StorageError::Refused { backend: "server", reason };
        let record = pbpersist::Record::from_bytes(bytes::Bytes::copy_from_slice(record))
            .map_err(|e| refuse(format!("the record of object {oid} is malformed: {e}")))?;
        let mut pool = self.pool(storage, false)?;
        if pool.get_message_by_name(&record.r#type).is_none() {
            // Another client may have stored the schema since.
            pool = self.pool(storage, true)?;
        }
        let Some(descriptor) = pool.get_message_by_name(&record.r#type) else {
            return Err(refuse(format!(
                "object {oid} is of type {}, which the database has no schema for (store the schema first)",
                record.r#type
            )));
        };
        let state = DynamicMessage::decode(descriptor, record.state.clone())
            .map_err(|e| refuse(format!("the state of object {oid} does not decode as {}: {e}", record.r#type)))?;
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

/// Compiles stored `.proto` files with pbpersist's own.
fn compile(files: &[(String, String)]) -> Result<DescriptorPool, StorageError> {
    let failed = |e: String| StorageError::Format(format!("the stored schemas do not compile: {e}"));
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    let mut names = Vec::new();
    for (name, source) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| failed(e.to_string()))?;
        }
        std::fs::write(&path, source).map_err(|e| failed(e.to_string()))?;
        names.push(path);
    }
    names.push("pbpersist/record.proto".into());
    names.push("pbpersist/tree.proto".into());
    pbpersist_build::Config::new().descriptor_pool(&names, &[dir.path()]).map_err(|e| failed(e.to_string()))
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
