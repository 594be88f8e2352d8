//! Unknown fields interleaved with known ones, read from a slice, from
//! `Bytes` and from a buffer in pieces: all keep the same bytes in the same
//! order, and none of them keeps the input alive.

use bytes::{Buf, Bytes};
use pbpersist::Persistent;
use pbpersist_tests::evolution::NoteV1;
use proptest::prelude::*;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

/// One field of the input: `title` (known to `NoteV1`) or an unknown one.
#[derive(Debug, Clone)]
enum Field {
    Title(String),
    Varint(u32, u64),
    Fixed32(u32, u32),
    Fixed64(u32, u64),
    Bytes(u32, Vec<u8>),
    Group(u32, u64),
}

fn field() -> impl Strategy<Value = Field> {
    // Field numbers 2 and up are unknown to NoteV1.
    let tag = 2u32..5000;
    prop_oneof![
        "[a-z]{0,12}".prop_map(Field::Title),
        (tag.clone(), any::<u64>()).prop_map(|(t, v)| Field::Varint(t, v)),
        (tag.clone(), any::<u32>()).prop_map(|(t, v)| Field::Fixed32(t, v)),
        (tag.clone(), any::<u64>()).prop_map(|(t, v)| Field::Fixed64(t, v)),
        (tag.clone(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(t, v)| Field::Bytes(t, v)),
        (tag, any::<u64>()).prop_map(|(t, v)| Field::Group(t, v)),
    ]
}

/// Encodes `fields` in order; returns the bytes and the unknown ones alone.
fn encode(fields: &[Field]) -> (Vec<u8>, Vec<u8>) {
    let (mut all, mut unknown) = (Vec::new(), Vec::new());
    for f in fields {
        let mut one = Vec::new();
        match f {
            Field::Title(s) => {
                prost::encoding::string::encode(1, s, &mut all);
                continue;
            }
            Field::Varint(t, v) => {
                encode_key(*t, WireType::Varint, &mut one);
                encode_varint(*v, &mut one);
            }
            Field::Fixed32(t, v) => prost::encoding::fixed32::encode(*t, v, &mut one),
            Field::Fixed64(t, v) => prost::encoding::fixed64::encode(*t, v, &mut one),
            Field::Bytes(t, v) => prost::encoding::bytes::encode(*t, v, &mut one),
            Field::Group(t, v) => {
                encode_key(*t, WireType::StartGroup, &mut one);
                prost::encoding::uint64::encode(1, v, &mut one);
                encode_key(*t, WireType::EndGroup, &mut one);
            }
        }
        all.extend_from_slice(&one);
        unknown.extend_from_slice(&one);
    }
    (all, unknown)
}

fn last_title(fields: &[Field]) -> String {
    let mut titles = fields.iter().filter_map(|f| if let Field::Title(s) = f { Some(s.clone()) } else { None });
    titles.next_back().unwrap_or_default()
}

proptest! {
    #[test]
    fn unknown_fields_survive_any_interleaving_and_any_input(
        fields in proptest::collection::vec(field(), 0..12),
        split in any::<prop::sample::Index>(),
    ) {
        let (bytes, unknown) = encode(&fields);
        let title = last_title(&fields);
        let at = split.index(bytes.len() + 1);
        let pieces = (&bytes[..at]).chain(&bytes[at..]);
        for (how, note) in [
            ("slice", NoteV1::decode(bytes.as_slice()).unwrap()),
            ("Bytes", NoteV1::decode(Bytes::from(bytes.clone())).unwrap()),
            ("pieces", NoteV1::decode(pieces).unwrap()),
        ] {
            prop_assert_eq!(note.title(), title.as_str(), "{}", how);
            prop_assert_eq!(note.meta().unknown_fields(), unknown.as_slice(), "{}", how);
            // Saving writes the known field, then the unknown ones as read.
            let mut expected = Vec::new();
            if !note.title().is_empty() {
                prost::encoding::string::encode(1, &note.title().to_owned(), &mut expected);
            }
            expected.extend_from_slice(&unknown);
            prop_assert_eq!(note.encode_to_vec(), expected, "{}", how);
        }
    }
}

#[test]
fn unknown_fields_read_from_bytes_are_a_copy_that_does_not_keep_the_input_alive() {
    // A run that is most of the input and one that is a small part of it.
    for fields in [
        [Field::Title("t".into()), Field::Bytes(9, vec![7; 100])],
        [Field::Title("t".repeat(100)), Field::Varint(9, 1)],
    ] {
        let (bytes, unknown) = encode(&fields);
        let input = Bytes::from(bytes);
        let note = NoteV1::decode(input.clone()).unwrap();
        assert_eq!(note.meta().unknown_fields(), unknown.as_slice());
        let within = input.as_ptr_range().contains(&note.meta().unknown_fields().as_ptr());
        assert!(!within, "a cached object holds its unknown fields, not the record it was read from");
    }
}

#[test]
fn malformed_unknown_fields_are_errors_wherever_they_are() {
    let (good, _) = encode(&[Field::Title("t".into()), Field::Bytes(9, vec![1, 2, 3])]);
    // Cut inside the unknown field, an end-group without a start, a bad wire type.
    for bad in [&good[..good.len() - 1], &[0x4c][..], &[0x0f][..]] {
        assert!(NoteV1::decode(bad).is_err(), "{bad:?}");
        assert!(NoteV1::decode(Bytes::copy_from_slice(bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn unknown_enum_numbers_keep_their_place_among_unknown_fields() {
    use pbpersist_tests::coverage::corpus::enums::Job;
    // Field 50 (unknown), status = 9 (not a Status), field 51 (unknown).
    let bytes = [0x90, 0x03, 1, 8, 9, 0x98, 0x03, 2];
    for job in [Job::decode(&bytes[..]).unwrap(), Job::decode(Bytes::copy_from_slice(&bytes)).unwrap()] {
        assert!(!job.has_status());
        assert_eq!(job.meta().unknown_fields(), &bytes[..], "in the order read");
    }
}
