//! Any bytes given to generated decoders give a message or an error, never a
//! panic; what decodes survives a re-encode, unknown fields included, and
//! decoding from `Bytes` (as a load does) or from a slice agrees. Typed
//! extension reads give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbpersist::extension::Extendable;
use pbpersist_tests::bank::Node;
use pbpersist_tests::coverage::corpus::annotated::{Account, BADGES, BILLING, NICKNAME};
use pbpersist_tests::demo::Contact;
use pbpersist_tests::edition_files::editions::Sample;
use pbpersist_tests::evolution::NoteV1;
use prost::Message;

fn round_trip<M: Message + Default>(data: &[u8]) {
    let shared = M::decode(bytes::Bytes::copy_from_slice(data));
    let sliced = M::decode(data);
    assert_eq!(shared.is_ok(), sliced.is_ok());
    if let (Ok(a), Ok(b)) = (shared, sliced) {
        // Compared as bytes: a message holding NaN is not equal to itself.
        let bytes = a.encode_to_vec();
        assert_eq!(b.encode_to_vec(), bytes);
        let again = M::decode(bytes.as_slice()).expect("re-encoded message decodes");
        assert_eq!(again.encode_to_vec(), bytes);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Contact>(data);
    round_trip::<Node>(data);
    round_trip::<NoteV1>(data);
    round_trip::<Sample>(data);
    round_trip::<Account>(data);
    if let Ok(account) = Account::decode(data) {
        let _ = account.extension(&NICKNAME);
        let _ = account.extension(&BADGES);
        let _ = account.extension(&BILLING);
    }
});
