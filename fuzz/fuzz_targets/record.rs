//! Any bytes given to the record decoder and the garbage collector's
//! reference reader give a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbpersist::record::Record;
use pbpersist::Oid;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::from_bytes(data.to_vec().into()) {
        // What decodes re-encodes to something that decodes to the same record.
        let again = Record::from_bytes(record.encode_to_vec().into()).expect("re-encoded record decodes");
        assert_eq!(again, record);
    }
    let _ = pbpersist::storage::gc::unreachable(vec![(Oid(0), data.to_vec()), (Oid(1), data.to_vec())]);
});
