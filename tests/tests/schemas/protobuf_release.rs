//! A current protobuf release's own `google/protobuf` files (from the
//! protoc-bin-vendored crate): `descriptor.proto` with its extension
//! declarations, the language feature files, `type.proto`, `plugin.proto`.
//! They compile, and every message round-trips through pbpersist's types as
//! it does through a reflective decoder of the same descriptors.

use pbpersist_tests::protobuf_release::google::protobuf::{
    Edition, FieldDescriptorProto, FileDescriptorProto, field_descriptor_proto,
};
use pbpersist_tests::random::{Rng, proto_files_under, round_trip_every_message};
use prost::Message;
use prost_reflect::DescriptorPool;

fn release_pool() -> DescriptorPool {
    let include = protoc_bin_vendored::include_path().unwrap();
    let files = proto_files_under(&include);
    pbpersist_build::Config::new().descriptor_pool(&files, &[&include]).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn every_release_message_round_trips_as_reflection_reads_it() {
    let checked = round_trip_every_message(&release_pool(), |_| true, 20, &mut Rng(0x7e1e_a5e0_0000_0001));
    assert!(checked > 40, "{checked} messages");
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
