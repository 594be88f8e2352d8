//! protoc's descriptors of editions files, lowered to proto2 by
//! `pbpersist_model::editions` (the lowering `pbpersist-build` uses), and
//! split into one encoded `FileDescriptorProto` per editions file for
//! protox to check with the other files.

use super::error::SchemaError;
use pbpersist_model::editions::LowerError;
use prost::Message as _;
use prost_reflect::{DynamicMessage, ReflectMessage as _, Value};
use std::collections::BTreeMap;

/// The editions files of an encoded `FileDescriptorSet`, each lowered to
/// proto2 and encoded as a `FileDescriptorProto`, by name.
pub(super) fn lower(set: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, SchemaError> {
    let descriptor = prost_types::FileDescriptorSet::default().descriptor();
    let original =
        DynamicMessage::decode(descriptor.clone(), set).map_err(|e| SchemaError::Descriptors(e.to_string()))?;
    let lowered = pbpersist_model::editions::lower(set).map_err(|e| match e {
        LowerError::Edition { file, edition } => SchemaError::Edition { file, edition },
        LowerError::Decode(reason) => SchemaError::Descriptors(reason),
    })?;
    let lowered =
        DynamicMessage::decode(descriptor, lowered.as_slice()).map_err(|e| SchemaError::Descriptors(e.to_string()))?;
    let mut out = BTreeMap::new();
    // The lowering keeps the files in order; only the editions ones are wanted.
    for (before, after) in files(&original).iter().zip(files(&lowered)) {
        let (Some(before), Some(after)) = (before.as_message(), after.as_message()) else { continue };
        if text(before, "syntax") == "editions" {
            out.insert(text(after, "name"), after.encode_to_vec());
        }
    }
    Ok(out)
}

fn files(set: &DynamicMessage) -> Vec<Value> {
    set.get_field_by_name("file").as_deref().and_then(Value::as_list).map(<[Value]>::to_vec).unwrap_or_default()
}

fn text(message: &DynamicMessage, name: &str) -> String {
    message.get_field_by_name(name).as_deref().and_then(Value::as_str).unwrap_or_default().to_owned()
}
