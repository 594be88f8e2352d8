//! Differential wire tests: for every message of the corpus, random values
//! decoded and re-encoded by pbpersist's generated type give exactly the bytes
//! prost's generated type gives for the same schema; and a program that knows
//! none of the fields keeps them all, byte for byte.

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn pbpersist_and_prost_write_identical_bytes(seed in any::<u64>()) {
        let pool = pool();
        let mut rng = Rng(seed | 1);
        for desc in messages(&pool) {
            let name = desc.full_name();
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let ours = ours_round_trip(name, &bytes);
            let theirs = prost_round_trip(name, &bytes).unwrap().map_err(|e| e.to_string());
            prop_assert_eq!(&ours, &theirs, "{} from {:?}", name, bytes);
            // And the other way: pbpersist reads prost's bytes back to the same bytes.
            let theirs = theirs.unwrap();
            prop_assert_eq!(ours_round_trip(name, &theirs).unwrap(), theirs, "{}", name);
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
