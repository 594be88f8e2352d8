//! The well-known types' own copy wins: generated code always uses
//! `pbpersist::wkt`, whose Rust types are fixed. A copy of a well-known
//! file on the include path that differs from the one those types were
//! generated from is reported, since its extra fields would only be kept as
//! unknown fields.

use crate::WELL_KNOWN_FILES;
use prost_reflect::{DescriptorPool, FieldDescriptor, MessageDescriptor};

/// One line per well-known message of `pool` whose fields differ from
/// pbpersist's own.
pub fn differences(pool: &DescriptorPool) -> Vec<String> {
    let used: Vec<_> = pool.files().filter(|f| WELL_KNOWN_FILES.contains(&f.name())).collect();
    if used.is_empty() {
        return Vec::new();
    }
    let mut compiler = protox::Compiler::with_file_resolver(protox::file::GoogleFileResolver::new());
    for file in WELL_KNOWN_FILES {
        if compiler.open_file(file).is_err() {
            return Vec::new();
        }
    }
    let builtin = compiler.descriptor_pool();
    let mut out = Vec::new();
    for file in used {
        for theirs in file.messages() {
            let Some(ours) = builtin.get_message_by_name(theirs.full_name()) else { continue };
            if let Some(change) = first_difference(&ours, &theirs) {
                out.push(format!(
                    "{} on the include path differs from pbpersist's copy ({change}); generated code uses \
                     pbpersist::wkt::{}, which keeps such fields as unknown fields",
                    file.name(),
                    theirs.name()
                ));
            }
        }
    }
    out
}

fn first_difference(ours: &MessageDescriptor, theirs: &MessageDescriptor) -> Option<String> {
    for field in theirs.fields() {
        match ours.get_field(field.number()) {
            None => return Some(format!("field {} `{}` is not in it", field.number(), field.name())),
            Some(o) if kind_name(&o) != kind_name(&field) => {
                return Some(format!("field {} `{}` has another type", field.number(), field.name()));
            }
            Some(o) if o.cardinality() != field.cardinality() => {
                return Some(format!("field {} `{}` has another label", field.number(), field.name()));
            }
            Some(_) => {}
        }
    }
    ours.fields()
        .find(|o| theirs.get_field(o.number()).is_none())
        .map(|o| format!("field {} `{}` is missing", o.number(), o.name()))
}

/// A field's type by name, comparable across descriptor pools.
fn kind_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        prost_reflect::Kind::Message(m) => m.full_name().to_owned(),
        prost_reflect::Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::differences;

    fn pool(timestamp: &str) -> prost_reflect::DescriptorPool {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("google/protobuf")).unwrap();
        std::fs::write(dir.path().join("google/protobuf/timestamp.proto"), timestamp).unwrap();
        let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
        compiler.open_file("google/protobuf/timestamp.proto").unwrap();
        compiler.descriptor_pool()
    }

    #[test]
    fn an_equal_copy_is_silent_and_a_changed_one_is_reported() {
        let same = "syntax = \"proto3\";\npackage google.protobuf;\nmessage Timestamp { int64 seconds = 1; int32 nanos = 2; }\n";
        assert!(differences(&pool(same)).is_empty());
        let more = "syntax = \"proto3\";\npackage google.protobuf;\nmessage Timestamp { int64 seconds = 1; int32 nanos = 2; string zone = 3; }\n";
        let report = differences(&pool(more));
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].contains("field 3 `zone`") && report[0].contains("pbpersist::wkt::Timestamp"), "{report:?}");
        let fewer = "syntax = \"proto3\";\npackage google.protobuf;\nmessage Timestamp { int64 seconds = 1; }\n";
        assert!(differences(&pool(fewer))[0].contains("field 2 `nanos` is missing"));
    }
}
