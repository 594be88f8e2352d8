//! Differential wire tests: for every message of the corpus, random values
//! decoded and re-encoded by pbpersist's generated type read in prost's
//! generated type as the same message, and the other way round; and a
//! program that knows none of the fields keeps them all, byte for byte.
//!
//! The bytes themselves are compared with Google's runtime (the Python
//! interop test): they equal prost's except in maps, where pbpersist writes
//! default keys and values as Google's runtimes do and prost leaves them out,
//! and in oneofs whose members' numbers straddle other fields, which
//! pbpersist writes in number order as Google's runtimes do and prost at the
//! oneof's first number.

use pbpersist::wkt::Empty;
use pbpersist_tests::prost_reference::prost_round_trip;
use pbpersist_tests::random::{Rng, messages, pool, random_message};
use proptest::prelude::*;
use prost::Message;

fn ours_round_trip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let entry = pbpersist::object::lookup_type(name).ok_or_else(|| format!("{name} is not registered"))?;
    let obj = (entry.decode)(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| e.to_string())?;
    Ok(obj.encode_state())
}

#[test]
fn every_corpus_message_has_both_a_pbpersist_and_a_prost_type() {
    let pool = pool();
    let all = messages(&pool);
    assert!(all.len() > 60, "{} messages", all.len());
    for m in all {
        assert!(pbpersist::object::lookup_type(m.full_name()).is_some(), "{} has no pbpersist type", m.full_name());
        assert!(prost_round_trip(m.full_name(), &[]).is_some(), "{} has no prost type", m.full_name());
    }
}

/// Whether a message or any message it holds has a map field or a oneof
/// whose members' numbers straddle another field's.
fn written_otherwise_by_prost(desc: &prost_reflect::MessageDescriptor) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![desc.clone()];
    while let Some(m) = stack.pop() {
        if !seen.insert(m.full_name().to_owned()) {
            continue;
        }
        for oneof in m.oneofs().filter(|o| !o.is_synthetic()) {
            let numbers: Vec<u32> = oneof.fields().map(|f| f.number()).collect();
            let (low, high) = (numbers.iter().min().copied().unwrap_or(0), numbers.iter().max().copied().unwrap_or(0));
            if m.fields().any(|f| f.containing_oneof().is_none() && (low..high).contains(&f.number())) {
                return true;
            }
        }
        for f in m.fields() {
            if f.is_map() {
                return true;
            }
            if let prost_reflect::Kind::Message(inner) = f.kind() {
                stack.push(inner);
            }
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn pbpersist_and_prost_read_each_others_bytes(seed in any::<u64>()) {
        let pool = pool();
        let mut rng = Rng(seed | 1);
        for desc in messages(&pool) {
            let name = desc.full_name();
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let ours = ours_round_trip(name, &bytes).unwrap();
            let theirs = prost_round_trip(name, &bytes).unwrap().unwrap();
            // prost reads pbpersist's bytes as the message it read from the input...
            prop_assert_eq!(prost_round_trip(name, &ours).unwrap().unwrap(), theirs.clone(), "{} from {:?}", name, bytes);
            // ...and pbpersist reads prost's as the one it read.
            prop_assert_eq!(ours_round_trip(name, &theirs).unwrap(), ours.clone(), "{}", name);
            // pbpersist's descriptor.proto types come from a newer release than
            // prost's, so each keeps some of the other's fields as unknown fields.
            if !written_otherwise_by_prost(&desc) && !name.starts_with("google.protobuf.") {
                prop_assert_eq!(ours, theirs, "{}: the very same bytes", name);
            }
        }
    }

    #[test]
    fn a_program_that_knows_no_field_keeps_every_field(seed in any::<u64>()) {
        let pool = pool();
        let mut rng = Rng(seed | 1);
        for desc in messages(&pool) {
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let empty = Empty::decode(bytes.as_slice()).unwrap();
            prop_assert_eq!(empty.encode_to_vec(), bytes, "{}", desc.full_name());
        }
    }
}

/// A oneof member goes out in number order among the fields numbered
/// between the members, as Google's runtimes write it.
#[test]
fn interleaved_oneof_members_go_out_in_number_order() {
    use pbpersist_tests::coverage::corpus::oneofs::{Interleaved, interleaved::Pick};
    let mut m = Interleaved::default();
    m.set_second(1);
    m.set_fourth("y");
    m.set_pick(Pick::Third("x".into()));
    assert_eq!(m.encode_to_vec(), [0x10, 1, 0x1a, 1, b'x', 0x22, 1, b'y']);
    m.set_pick(Pick::First(7));
    assert_eq!(m.encode_to_vec(), [0x08, 7, 0x10, 1, 0x22, 1, b'y']);
}
