//! A current protobuf release's own `google/protobuf` files (from the
//! protoc-bin-vendored crate): `descriptor.proto` with its extension
//! declarations, the language feature files, `type.proto`, `plugin.proto`.
//! They compile, and every message round-trips through pbpersist's types as
//! it does through a reflective decoder of the same descriptors.

use pbpersist_tests::protobuf_release::google::protobuf::{
    Edition, FieldDescriptorProto, FileDescriptorProto, field_descriptor_proto,
};
use pbpersist_tests::random::{Rng, random_message};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use std::path::PathBuf;

fn release_pool() -> (DescriptorPool, Vec<String>) {
    let include = protoc_bin_vendored::include_path().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![include.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "proto") {
                files.push(path);
            }
        }
    }
    let pool = pbpersist_build::Config::new().descriptor_pool(&files, &[&include]).unwrap_or_else(|e| panic!("{e:?}"));
    let names = pool
        .all_messages()
        .filter(|m| !m.is_map_entry() && pbpersist_build::WELL_KNOWN_TYPES.iter().all(|w| *w != m.full_name()))
        .map(|m| m.full_name().to_owned())
        .collect();
    (pool, names)
}

#[test]
fn every_release_message_has_a_pbpersist_type() {
    let (_, names) = release_pool();
    assert!(names.len() > 40, "{} messages", names.len());
    for name in &names {
        assert!(pbpersist::lookup_type(name).is_some(), "{name} has no generated type");
    }
}

#[test]
fn every_release_message_round_trips_as_reflection_reads_it() {
    let (pool, names) = release_pool();
    let mut rng = Rng(0x7e1e_a5e0_0000_0001);
    for name in &names {
        let desc = pool.get_message_by_name(name).unwrap();
        for _ in 0..20 {
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let entry = pbpersist::lookup_type(name).unwrap();
            let ours = (entry.decode)(bytes::Bytes::copy_from_slice(&bytes)).unwrap().encode_state();
            let theirs = DynamicMessage::decode(desc.clone(), bytes.as_slice()).unwrap().encode_to_vec();
            assert_eq!(ours, theirs, "{name} from {bytes:?}");
        }
    }
}

#[test]
fn descriptor_defaults_and_current_fields_read() {
    let field = FieldDescriptorProto::default();
    assert_eq!(field.label(), field_descriptor_proto::Label::Optional, "the first value of a closed enum");
    // `edition` is a field of current descriptor.proto only.
    let mut file = FileDescriptorProto::default();
    file.set_edition(Edition::Edition2024);
    file.extension_mut().push(field);
    let bytes = file.encode_to_vec();
    assert_eq!(&bytes[..3], [0x3a, 0x00, 0x70], "the extension list, then edition (field 14)");
    assert_eq!(FileDescriptorProto::decode(bytes.as_slice()).unwrap(), file);
}
