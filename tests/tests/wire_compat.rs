//! Differential wire tests: for every message of the corpus, random values
//! decoded and re-encoded by pbpersist's generated type read in prost's
//! generated type as the same message, and the other way round; and a
//! program that knows none of the fields keeps them all, byte for byte.
//!
//! The bytes themselves are compared with Google's runtime (the Python
//! interop test): they equal prost's except in maps, where pbpersist writes
//! default keys and values as Google's runtimes do and prost leaves them out.

use pbpersist::wkt::Empty;
use pbpersist_tests::prost_reference::prost_round_trip;
use pbpersist_tests::random::{Rng, messages, pool, random_message};
use proptest::prelude::*;
use prost::Message;

fn ours_round_trip(name: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let entry = pbpersist::lookup_type(name).ok_or_else(|| format!("{name} is not registered"))?;
    let obj = (entry.decode)(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| e.to_string())?;
    Ok(obj.encode_state())
}

#[test]
fn every_corpus_message_has_both_a_pbpersist_and_a_prost_type() {
    let pool = pool();
    let all = messages(&pool);
    assert!(all.len() > 60, "{} messages", all.len());
    for m in all {
        assert!(pbpersist::lookup_type(m.full_name()).is_some(), "{} has no pbpersist type", m.full_name());
        assert!(prost_round_trip(m.full_name(), &[]).is_some(), "{} has no prost type", m.full_name());
    }
}

/// Whether a message or any message it holds has a map field.
fn reaches_a_map(desc: &prost_reflect::MessageDescriptor) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![desc.clone()];
    while let Some(m) = stack.pop() {
        if !seen.insert(m.full_name().to_owned()) {
            continue;
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
            if !reaches_a_map(&desc) {
                prop_assert_eq!(ours, theirs, "{}: without maps, the very same bytes", name);
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
