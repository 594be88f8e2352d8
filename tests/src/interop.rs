//! The Rust side of the Python interop test (`tests/interop/`): what Rust
//! writes for Python to read, and the checks of what Python wrote.

use crate::demo::{Contact, Tower};
use crate::random::{Rng, messages, pool, random_message};
use pbpersist::{Database, Record};
use prost::Message;
use std::path::Path;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// How many random messages of each corpus type Rust writes.
const PER_TYPE: usize = 5;

/// Writes `rust.db` (the Tower example's graph) and `corpus.bin` (random messages of
/// every corpus type, encoded by pbpersist's generated types, as a stream of
/// length-delimited `pbpersist.Record`s).
pub fn write(dir: &Path) -> Result<()> {
    pbpersist_examples::tower::store(&dir.join("rust.db"))?;

    let pool = pool();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut out = Vec::new();
    for desc in messages(&pool) {
        for _ in 0..PER_TYPE {
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let state = ours(desc.full_name(), &bytes)?;
            Record { r#type: desc.full_name().to_owned(), state: state.into(), refs: vec![] }
                .encode_length_delimited(&mut out)?;
        }
    }
    std::fs::write(dir.join("corpus.bin"), out)?;
    Ok(())
}

/// Decodes with pbpersist's generated type of `name` and encodes again.
fn ours(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let entry = pbpersist::lookup_type(name).ok_or_else(|| format!("{name} is not a generated type"))?;
    Ok((entry.decode)(bytes::Bytes::copy_from_slice(bytes)).map_err(|e| format!("{name}: {e}"))?.encode_state())
}

fn records(bytes: &[u8]) -> Result<Vec<Record>> {
    let mut buf = bytes;
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(Record::decode_length_delimited(&mut buf)?);
    }
    Ok(out)
}

/// Checks that Python read and re-wrote every corpus message without losing
/// or changing anything, and that the database Python wrote reads correctly.
pub fn check(dir: &Path) -> Result<()> {
    let sent = records(&std::fs::read(dir.join("corpus.bin"))?)?;
    let back = records(&std::fs::read(dir.join("python_roundtrip.bin"))?)?;
    if sent.len() != back.len() {
        return Err(format!("sent {} messages, got {} back", sent.len(), back.len()).into());
    }
    for (a, b) in sent.iter().zip(&back) {
        if a.r#type != b.r#type || ours(&a.r#type, &a.state)? != ours(&b.r#type, &b.state)? {
            return Err(format!("{} changed on its way through Python", a.r#type).into());
        }
    }
    println!("{} corpus messages survived Python", sent.len());

    let db = Database::open(dir.join("python.db"))?;
    db.transact(|tx| {
        let root = tx.root()?;
        let pisa = tx.get(root.require::<Tower>("pisa")?)?;
        check_eq(pisa.name(), "Pisa")?;
        check_eq(pisa.build_year(), 1372)?;
        check_eq(pisa.width(), 15.5)?;
        let rapunzel = tx.get(pisa.neighbor().ok_or_else(|| err("no neighbor"))?)?;
        check_eq(rapunzel.name(), "Rapunzel's")?;
        check_eq(rapunzel.build_year(), 1900)?;
        let bob = tx.get(root.require::<Contact>("bob")?)?;
        check_eq(bob.phone(), "555-0100")?;
        check_eq(bob.labels().get("team").map(String::as_str), Some("blue"))?;
        let alice = tx.get(bob.guardians()[0])?;
        check_eq(alice.name(), "Alice")?;
        check_eq(alice.address().country(), "United States")?;
        // The database is fully usable: a Rust commit on top of Python's.
        let mut carol = Contact::new();
        carol.set_name("Carol");
        let carol = tx.add(carol)?;
        tx.root_mut()?.insert("carol", carol);
        Ok(())
    })?;
    if !db.gc(true)?.unreachable.is_empty() {
        return Err("Python's reference lists do not match its states".into());
    }
    println!("the database Python wrote reads and takes commits");
    Ok(())
}

fn err(msg: &str) -> pbpersist::Error {
    pbpersist::Error::Storage(pbpersist::StorageError::Format(msg.to_owned()))
}

fn check_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> pbpersist::Result<()> {
    if got == want { Ok(()) } else { Err(err(&format!("expected {want:?}, found {got:?}"))) }
}
