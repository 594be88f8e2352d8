//! The objects under a database's prefix and their encodings: the messages
//! of `proto/pbpersist/objectstore.proto`, written as prost types so the
//! storage never goes through the object layer to read its own log.

use crate::{Oid, StorageError, Tid};
use bytes::Bytes;
use object_store::path::Path;
use prost::Message;

/// `pbpersist.CommitHeader`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct CommitHeader {
    #[prost(sint64, tag = "1")]
    pub committed_at: i64,
    #[prost(string, tag = "2")]
    pub user: String,
    #[prost(string, tag = "3")]
    pub description: String,
    #[prost(btree_map = "string, string", tag = "4")]
    pub extension: std::collections::BTreeMap<String, String>,
    #[prost(uint64, repeated, tag = "5")]
    pub oids: Vec<u64>,
    #[prost(uint64, repeated, tag = "6")]
    pub sizes: Vec<u64>,
    #[prost(uint64, repeated, tag = "7")]
    pub removed: Vec<u64>,
    #[prost(fixed64, tag = "8")]
    pub nonce: u64,
}

/// `pbpersist.Checkpoint`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Checkpoint {
    #[prost(uint64, tag = "1")]
    pub tid: u64,
    #[prost(uint64, repeated, tag = "2")]
    pub oids: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub tids: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub offsets: Vec<u64>,
    #[prost(uint64, repeated, tag = "5")]
    pub sizes: Vec<u64>,
}

/// `pbpersist.OidBlock`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct OidBlock {
    #[prost(uint64, tag = "1")]
    pub start: u64,
    #[prost(uint64, tag = "2")]
    pub end: u64,
}

/// `pbpersist.SchemaFile`.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct SchemaFile {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub source: String,
}

/// Where one record lies: in the commit object of `tid`, `size` bytes from
/// `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    pub tid: Tid,
    pub offset: u64,
    pub size: u64,
}

/// A commit object read back: its header, and where each record lies.
pub(super) struct Commit {
    pub header: CommitHeader,
    /// `(oid, place)` for each record, in the header's order.
    pub records: Vec<(Oid, Place)>,
}

/// The keys of one database: everything lives under its prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
}

/// Numbers in keys are zero-padded to 20 digits, the width of `u64::MAX`,
/// so a listing's lexical order is numeric order.
fn numbered(prefix: &str, folder: &str, n: u64) -> Path {
    Path::from(format!("{prefix}{folder}/{n:020}"))
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let prefix = prefix.trim_matches('/');
        Keys { prefix: if prefix.is_empty() { String::new() } else { format!("{prefix}/") } }
    }

    pub fn format(&self) -> Path {
        Path::from(format!("{}format", self.prefix))
    }

    pub fn mode(&self) -> Path {
        Path::from(format!("{}mode", self.prefix))
    }

    pub fn packed(&self) -> Path {
        Path::from(format!("{}packed", self.prefix))
    }

    pub fn log(&self) -> Path {
        Path::from(format!("{}log", self.prefix))
    }

    pub fn id(&self) -> Path {
        Path::from(format!("{}id", self.prefix))
    }

    pub fn commit(&self, tid: u64) -> Path {
        numbered(&self.prefix, "log", tid)
    }

    pub fn checkpoints(&self) -> Path {
        Path::from(format!("{}checkpoint", self.prefix))
    }

    pub fn checkpoint(&self, tid: u64) -> Path {
        numbered(&self.prefix, "checkpoint", tid)
    }

    pub fn oid_blocks(&self) -> Path {
        Path::from(format!("{}oids", self.prefix))
    }

    pub fn oid_block(&self, n: u64) -> Path {
        numbered(&self.prefix, "oids", n)
    }

    pub fn schemas(&self) -> Path {
        Path::from(format!("{}schema", self.prefix))
    }

    /// Version `version` of the stored file `name`: the first is
    /// `schema/<hex>`, each change creates the next, `schema/<hex>.<n>`, so
    /// that a change is a create-if-absent write.
    pub fn schema(&self, name: &str, version: u64) -> Path {
        let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
        match version {
            0 => Path::from(format!("{}schema/{hex}", self.prefix)),
            n => Path::from(format!("{}schema/{hex}.{n:020}", self.prefix)),
        }
    }

    /// The version of a schema object's key (a name under [`schemas`](Self::schemas)),
    /// and the hex of its file name.
    pub fn schema_version(key: &Path) -> Option<(&str, u64)> {
        let last = key.filename()?;
        match last.split_once('.') {
            None => Some((last, 0)),
            Some((hex, n)) => Some((hex, n.parse().ok()?)),
        }
    }

    /// Everything under the prefix.
    pub fn all(&self) -> Option<Path> {
        (!self.prefix.is_empty()).then(|| Path::from(self.prefix.trim_end_matches('/')))
    }
}

/// The number a numbered key ends with.
pub(super) fn number_of(path: &Path) -> Option<u64> {
    path.filename()?.parse().ok()
}

/// A commit object: the delimited header, then the records.
pub(super) fn encode_commit(header: &CommitHeader, records: &[&[u8]]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(header.encoded_len() + 10 + size);
    header.encode_length_delimited(&mut out).expect("a Vec grows as needed");
    for r in records {
        out.extend_from_slice(r);
    }
    out
}

/// Reads a commit object, checking that its records fit in it.
pub(super) fn decode_commit(tid: Tid, bytes: &[u8]) -> Result<Commit, StorageError> {
    let bad = |why: String| StorageError::Format(format!("the commit object of tid {tid} is malformed: {why}"));
    let mut rest = bytes;
    let header = CommitHeader::decode_length_delimited(&mut rest).map_err(|e| bad(e.to_string()))?;
    if header.oids.len() != header.sizes.len() {
        return Err(bad(format!("{} oids but {} sizes", header.oids.len(), header.sizes.len())));
    }
    let mut offset = (bytes.len() - rest.len()) as u64;
    let mut records = Vec::with_capacity(header.oids.len());
    for (oid, size) in header.oids.iter().zip(&header.sizes) {
        records.push((Oid(*oid), Place { tid, offset, size: *size }));
        offset = offset.checked_add(*size).ok_or_else(|| bad("a record size overflows".into()))?;
    }
    if offset != bytes.len() as u64 {
        return Err(bad(format!("its records end at byte {offset}, the object at byte {}", bytes.len())));
    }
    Ok(Commit { header, records })
}

/// The bytes of a record within a whole commit object.
pub(super) fn slice(object: &Bytes, place: Place) -> Bytes {
    object.slice(place.offset as usize..(place.offset + place.size) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_object_reads_back_with_its_places() {
        let header = CommitHeader { oids: vec![3, 9], sizes: vec![2, 3], nonce: 7, ..Default::default() };
        let bytes = Bytes::from(encode_commit(&header, &[b"ab", b"cde"]));
        let commit = decode_commit(Tid(5), &bytes).unwrap();
        assert_eq!(commit.header, header);
        let got: Vec<(Oid, Bytes)> = commit.records.iter().map(|(o, p)| (*o, slice(&bytes, *p))).collect();
        assert_eq!(got, [(Oid(3), Bytes::from_static(b"ab")), (Oid(9), Bytes::from_static(b"cde"))]);
    }

    #[test]
    fn a_truncated_commit_object_is_a_format_error_naming_the_tid() {
        let header = CommitHeader { oids: vec![3], sizes: vec![4], ..Default::default() };
        let bytes = encode_commit(&header, &[b"abcd"]);
        let err = decode_commit(Tid(12), &bytes[..bytes.len() - 1]).err().unwrap();
        assert!(err.to_string().contains("tid 12"), "{err}");
    }

    #[test]
    fn numbered_keys_sort_as_numbers() {
        let keys = Keys::new("db/");
        assert_eq!(keys.commit(42).as_ref(), "db/log/00000000000000000042");
        assert_eq!(number_of(&keys.commit(42)), Some(42));
        assert_eq!(Keys::new("").oid_block(1).as_ref(), "oids/00000000000000000001");
        assert_eq!(keys.schema("a/b.proto", 0).as_ref(), "db/schema/612f622e70726f746f");
        let second = keys.schema("a/b.proto", 1);
        assert_eq!(second.as_ref(), "db/schema/612f622e70726f746f.00000000000000000001");
        assert_eq!(Keys::schema_version(&second), Some(("612f622e70726f746f", 1)));
        assert_eq!(Keys::schema_version(&keys.schema("a/b.proto", 0)), Some(("612f622e70726f746f", 0)));
    }
}
