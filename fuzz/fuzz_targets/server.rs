//! Any bytes a client sends, decoded as the server decodes its requests,
//! then given to the server's gate (records of a commit or a merge, schema
//! files), give a decision or an error, never a panic; and what the gate
//! admits decodes as a record of a package the client may write.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use pbpersist::record::Record;
use pbpersist::storage::protocol::{
    NewOidsRequest, SchemaFiles, SessionRequest, TransactionsRequest, session_request::Request,
};
use pbpersist::storage::{MemoryStorage, Storage};
use pbpersist_server::{Access, Client, RecordGate};
use prost::Message;

const SCHEMA: &str = r#"
syntax = "proto2";
package demo;
import "pbpersist/options.proto";
message Tower {
  required string name = 1;
  optional pbpersist.Ref neighbor = 2 [(pbpersist.target) = "demo.Tower"];
  repeated Tower floors = 3;
  map<string, int64> counts = 4;
}
"#;

struct Setup {
    storage: MemoryStorage,
    gate: RecordGate,
    client: Client,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let storage = MemoryStorage::new();
    storage.put_schemas(&[("demo.proto".into(), SCHEMA.into())]).expect("the schema is stored");
    let client = Client {
        name: "fuzz".into(),
        token_sha256: String::new(),
        access: Access::ReadWrite,
        packages: Some(vec!["demo".into()]),
    };
    Setup { storage, gate: RecordGate::new(true, 32), client }
});

fn gate(oid: u64, record: &[u8]) {
    let s = &*SETUP;
    if s.gate.check(&s.storage, Some(&s.client), oid, record).is_ok() {
        let admitted = Record::from_bytes(record.to_vec().into()).expect("an admitted record decodes");
        assert!(admitted.r#type.starts_with("demo."), "admitted a type outside the client's packages");
        assert!(oid < 1 << 63, "admitted an oid at or above 2^63");
    }
}

fuzz_target!(|data: &[u8]| {
    let s = &*SETUP;
    gate(u64::from(data.first().copied().unwrap_or(0)), data);
    if let Ok(request) = SessionRequest::decode(data) {
        match request.request {
            Some(Request::Commit(commit)) => {
                for w in &commit.writes {
                    gate(w.oid, &w.record);
                }
            }
            Some(Request::Merged(m)) => {
                if let Some(record) = &m.record {
                    gate(m.oid, record);
                }
            }
            _ => {}
        }
    }
    if let Ok(files) = SchemaFiles::decode(data) {
        let files: Vec<(String, String)> = files.files.into_iter().map(|f| (f.name, f.source)).collect();
        let _ = s.gate.check_schemas(&s.storage, Some(&s.client), &files, false);
    }
    let _ = NewOidsRequest::decode(data);
    let _ = TransactionsRequest::decode(data);
});
