//! The stored record: `pbpersist.Record` in `proto/pbpersist/record.proto`.

use crate::{Oid, Persistent};
use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// One stored object: type name, encoded state, referenced oids.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// The full protobuf name of the state's message type.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// The encoded state.
    #[prost(bytes = "bytes", tag = "2")]
    pub state: Bytes,
    /// Every oid the state refers to, in field order.
    #[prost(uint64, repeated, tag = "3")]
    pub refs: Vec<u64>,
}

impl Record {
    /// Decodes a record without decoding its state. The state shares `bytes`.
    pub fn from_bytes(bytes: Bytes) -> Result<Record, prost::DecodeError> {
        Record::decode(bytes)
    }

    /// The referenced oids.
    pub fn ref_oids(&self) -> impl Iterator<Item = Oid> + '_ {
        self.refs.iter().map(|r| Oid(*r))
    }
}

/// Encodes `obj` as a record in one pass, with no intermediate state buffer.
pub(crate) fn encode<T: Persistent>(obj: &T, out: &mut Vec<u8>, extra_refs: &[u64]) {
    // The references are walked twice, to size and then to write them,
    // rather than collected: no allocation per record.
    let mut refs_len: usize = extra_refs.iter().map(|r| encoded_len_varint(*r)).sum();
    obj.visit_refs(&mut |oid| refs_len += encoded_len_varint(oid.0));
    let state_len = obj.encoded_len();
    out.clear();
    out.reserve(T::TYPE_NAME.len() + state_len + refs_len + 16);
    encode_key(1, WireType::LengthDelimited, out);
    encode_varint(T::TYPE_NAME.len() as u64, out);
    out.extend_from_slice(T::TYPE_NAME.as_bytes());
    encode_key(2, WireType::LengthDelimited, out);
    encode_varint(state_len as u64, out);
    obj.encode_raw(out);
    // Every reference takes at least one byte, so a zero length means none.
    if refs_len > 0 {
        encode_key(3, WireType::LengthDelimited, out);
        encode_varint(refs_len as u64, out);
        obj.visit_refs(&mut |oid| encode_varint(oid.0, out));
        for r in extra_refs {
            encode_varint(*r, out);
        }
    }
}

/// The references a record lists that its decoded object does not show:
/// those inside fields this program does not know. Saving must keep them.
pub(crate) fn hidden_refs(record: &RecordView, obj: &dyn crate::persistent::Object) -> Vec<u64> {
    if record.refs.is_empty() {
        return Vec::new();
    }
    // Usually the object shows exactly what the record lists.
    let mut visible = Vec::with_capacity(record.refs.len());
    obj.visit_refs(&mut |oid| visible.push(oid.0));
    if visible == record.refs {
        return Vec::new();
    }
    let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    obj.visit_refs(&mut |oid| *seen.entry(oid.0).or_default() += 1);
    record
        .refs
        .iter()
        .filter(|r| match seen.get_mut(r) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .copied()
        .collect()
}

/// Reads only the reference list of an encoded record, skipping type and
/// state without decoding them.
pub(crate) fn refs_only(mut bytes: &[u8]) -> Result<Vec<u64>, prost::DecodeError> {
    use prost::encoding::{DecodeContext, decode_key, skip_field, uint64};
    let mut refs = Vec::new();
    while !bytes.is_empty() {
        let (tag, wire_type) = decode_key(&mut bytes)?;
        if tag == 3 {
            uint64::merge_repeated(wire_type, &mut refs, &mut bytes, DecodeContext::default())?;
        } else {
            skip_field(wire_type, tag, &mut bytes, DecodeContext::default())?;
        }
    }
    Ok(refs)
}

/// A decoded record whose type name and state still share the loaded bytes:
/// what loading needs, without allocating.
#[derive(Debug, Clone)]
pub(crate) struct RecordView {
    type_name: bytes::Bytes,
    /// The encoded state.
    pub(crate) state: Bytes,
    /// The referenced oids.
    pub(crate) refs: Vec<u64>,
}

impl RecordView {
    /// Reads a record; the type name must be UTF-8.
    pub(crate) fn parse(mut buf: Bytes) -> Result<RecordView, prost::DecodeError> {
        use bytes::Buf;
        use prost::encoding::{DecodeContext, bytes as pbytes, decode_key, skip_field, uint64};
        let ctx = DecodeContext::default;
        let mut view = RecordView { type_name: Bytes::new(), state: Bytes::new(), refs: Vec::new() };
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            match tag {
                // `Bytes` from `Bytes`: the slices share the loaded buffer.
                1 => pbytes::merge(wire_type, &mut view.type_name, &mut buf, ctx())?,
                2 => pbytes::merge(wire_type, &mut view.state, &mut buf, ctx())?,
                3 => uint64::merge_repeated(wire_type, &mut view.refs, &mut buf, ctx())?,
                _ => skip_field(wire_type, tag, &mut buf, ctx())?,
            }
        }
        if std::str::from_utf8(&view.type_name).is_err() {
            // prost's own error for a string field that is not UTF-8.
            let mut s = String::new();
            prost::encoding::string::merge(WireType::LengthDelimited, &mut s, &mut &[1u8, 0xff][..], ctx())?;
        }
        Ok(view)
    }

    /// The stored type name.
    pub(crate) fn type_name(&self) -> &str {
        std::str::from_utf8(&self.type_name).unwrap_or_default()
    }
}
