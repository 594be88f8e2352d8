//! The Rust side of the Python interop test (`tests/interop/`): what Rust
//! writes for Python to read, and the checks of what Python wrote.

use crate::coverage::corpus::annotated::{Account, BADGES, BILLING, NICKNAME, scope::VERIFIED};
use crate::demo::{Contact, Tower};
use crate::random::{Rng, editions_pool, messages, pool, random_message};
use pbpersist::Database;
use pbpersist::extension::Extendable;
use pbpersist::record::Record;
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

    // Editions types, for a byte-for-byte comparison with Google's runtime.
    let pool = editions_pool();
    let mut out = Vec::new();
    for desc in messages(&pool).into_iter().filter(|m| m.package_name().starts_with("editions")) {
        for _ in 0..PER_TYPE * 4 {
            let bytes = random_message(&desc, &mut rng, 0).encode_to_vec();
            let state = ours(desc.full_name(), &bytes)?;
            Record { r#type: desc.full_name().to_owned(), state: state.into(), refs: vec![] }
                .encode_length_delimited(&mut out)?;
        }
    }
    std::fs::write(dir.join("editions.bin"), out)?;
    write_real(dir, &mut rng)
}

/// `real.bin`: random messages of the real-world schemas' types (without the
/// google.protobuf ones), when the tests were built with them.
fn write_real(dir: &Path, rng: &mut Rng) -> Result<()> {
    let Some(real) = option_env!("PBPERSIST_REAL_PROTOS").map(Path::new) else { return Ok(()) };
    let files = crate::random::proto_files_under(real);
    let pool = pbpersist_build::Config::new().descriptor_pool(&files, &[real]).map_err(|e| format!("{e:?}"))?;
    let mut out = Vec::new();
    for desc in messages(&pool).into_iter().filter(|m| !m.parent_file().name().starts_with("google/protobuf/")) {
        for _ in 0..PER_TYPE {
            let bytes = random_message(&desc, rng, 0).encode_to_vec();
            let state = ours(desc.full_name(), &bytes)?;
            Record { r#type: desc.full_name().to_owned(), state: state.into(), refs: vec![] }
                .encode_length_delimited(&mut out)?;
        }
    }
    std::fs::write(dir.join("real.bin"), out)?;
    Ok(())
}

/// Checks the editions messages Python wrote (`editions_python.bin`): each
/// re-encodes to Python's bytes exactly, and reads as Python set it.
pub fn check_editions(dir: &Path) -> Result<()> {
    use crate::edition_files::editions::{Sample, Size, legacy::Item, sample::Choice};
    let written = records(&std::fs::read(dir.join("editions_python.bin"))?)?;
    for record in &written {
        if ours(&record.r#type, &record.state)? != record.state {
            return Err(format!("{} re-encodes differently from Python", record.r#type).into());
        }
    }
    let sample = Sample::decode(written[0].state.as_ref())?;
    check_eq(sample.key(), "from python")?;
    check_eq(sample.count(), 0)?;
    check_eq(sample.has_limit(), true)?;
    check_eq(sample.limit(), 0)?;
    check_eq(sample.expanded(), &[1, 2][..])?;
    check_eq(sample.sizes().iter().map(|s| s.known()).collect::<Vec<_>>(), vec![Some(Size::Small), Some(Size::Large)])?;
    check_eq(sample.delimited().value(), 7)?;
    check_eq(sample.delimited_list().len(), 2)?;
    check_eq(matches!(sample.choice(), Some(Choice::ChoiceLeaf(l)) if l.label() == "in a group"), true)?;
    check_eq(sample.unchecked(), "ok")?;
    // The second Sample carries a closed enum number Python did not know.
    let unknown = Sample::decode(written[1].state.as_ref())?;
    check_eq(unknown.has_size(), false)?;
    let item = Item::decode(written[2].state.as_ref())?;
    check_eq(item.child().child().id(), 3)?;
    check_eq(item.implicit(), 0)?;
    println!("{} editions messages from Python read and re-encode byte for byte", written.len());
    Ok(())
}

/// Decodes with pbpersist's generated type of `name` and encodes again.
fn ours(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let entry = pbpersist::object::lookup_type(name).ok_or_else(|| format!("{name} is not a generated type"))?;
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
        // An object with extensions Rust has no fields for: changed and saved,
        // they stay, and so does the reference one of them holds.
        let account = tx.get_mut(root.require::<Account>("account")?)?;
        check_eq(account.email(), "ext@example.com")?;
        // Typed access reads what Python set.
        check_eq(account.extension(&NICKNAME).map_err(|e| err(&e.to_string()))?, Some("Ext".to_owned()))?;
        check_eq(account.extension(&BADGES).map_err(|e| err(&e.to_string()))?, Some(vec![3, 1, 4]))?;
        let billing = account.extension(&BILLING).map_err(|e| err(&e.to_string()))?;
        check_eq(billing.map(|b| b.iban().to_owned()), Some("DE00".to_owned()))?;
        check_eq(account.extension(&VERIFIED).map_err(|e| err(&e.to_string()))?, Some(true))?;
        account.set_balance(42);
        account.set_extension(&BADGES, vec![3, 1, 4, 1]);
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
    // Python's transaction says who wrote it, in the documented columns.
    let first = db.transactions_after(pbpersist::Tid(0), 1)?.remove(0);
    check_eq((first.meta.user.as_str(), first.meta.description.as_str()), ("py", "written by Python"))?;
    check_eq(first.meta.extension.get("language").map(String::as_str), Some("python"))?;
    println!("the database Python wrote reads and takes commits");
    Ok(())
}

/// A history-preserving database (`history.db`) in which Pisa, named
/// "pisa" in the root, was built by ada and raised twice by bob.
pub fn write_history(dir: &Path) -> Result<()> {
    history_db(&dir.join("history.db")).map(drop)
}

/// The history-preserving database of [`write_history`] at `path`, open.
fn history_db(path: &Path) -> Result<Database> {
    let storage =
        pbpersist::storage::SqliteStorage::builder(path).history(pbpersist::storage::History::Preserving).open()?;
    let db = Database::with_storage(storage)?;
    let pisa = db.transact(|tx| {
        tx.set_user("ada");
        tx.note("builds Pisa");
        let mut pisa = Tower::new();
        pisa.set_name("Pisa");
        pisa.set_width(15.5);
        pisa.set_height(56.0);
        let pisa = tx.add(pisa)?;
        tx.root_mut()?.insert("pisa", pisa);
        Ok(pisa)
    })?;
    for height in [57.0, 58.0] {
        db.transact(|tx| {
            tx.set_user("bob");
            tx.set_extension("reason", "survey");
            tx.get_mut(pisa)?.set_height(height);
            Ok(())
        })?;
    }
    Ok(db)
}

/// The keys of the interop tree: `k000` to `k499` but multiples of 7, in a
/// scrambled insertion order; each key's value is its number squared.
fn tree_keys() -> Vec<i64> {
    let mut keys: Vec<i64> = (0..500).filter(|i| i % 7 != 0).collect();
    // A fixed shuffle (a multiplicative walk), so buckets split in many places.
    let n = keys.len();
    keys = (0..n).map(|i| keys[(i * 197) % n]).collect();
    keys
}

/// A tree (`tree.db`, root entry "tree") of `String -> i64` with buckets of
/// at most 8 entries and nodes of at most 4 children: four levels of nodes above the buckets.
pub fn write_tree(dir: &Path) -> Result<()> {
    let db = Database::open(dir.join("tree.db"))?;
    db.transact(|tx| {
        let tree = pbpersist::PTreeMap::<String, i64>::create_with(tx, pbpersist::tree::Bounds { bucket: 8, node: 4 })?;
        for i in tree_keys() {
            tree.insert(tx, format!("k{i:03}"), i * i)?;
        }
        tx.root_mut()?.insert("tree", tree);
        Ok(())
    })?;
    Ok(())
}

/// After Python inserted `k000` = -1 and set `k001` to 1001 (docs/format.md),
/// the tree reads back with both changes, its counter agrees, every rule
/// holds, and Rust can keep changing it.
pub fn check_tree(dir: &Path) -> Result<()> {
    let db = Database::open(dir.join("tree.db"))?;
    db.transact(|tx| {
        let tree = tx.root()?.require::<pbpersist::PTreeMap<String, i64>>("tree")?;
        let mut want: Vec<(String, i64)> = tree_keys().into_iter().map(|i| (format!("k{i:03}"), i * i)).collect();
        want.push(("k000".into(), -1));
        want.sort();
        for (k, v) in want.iter_mut() {
            if k == "k001" {
                *v = 1001;
            }
        }
        let got: Vec<(String, i64)> = tree.iter(tx).collect::<pbpersist::Result<_>>()?;
        check_eq(&got, &want)?;
        check_eq(tree.len(tx)?, want.len() as u64)?;
        let check = pbpersist::tree::check_tree(tx, tree)?;
        check_eq(check.problems, Vec::<String>::new())?;
        tree.insert(tx, "k999".into(), 9)?;
        Ok(())
    })?;
    println!("the tree Python changed reads back in Rust");
    Ok(())
}

/// The keys and values of the tree "users" in `format.db`: `user-0000000`
/// to `user-0004999`, each worth its number.
fn user_entries() -> Vec<(String, i64)> {
    (0..5000).map(|i| (format!("user-{i:07}"), i)).collect()
}

/// `format.db`, the history-preserving database docs/format.md's Python
/// examples run against: Pisa (root entry "pisa") built by ada and raised
/// twice by bob, and a tree "users" of 5,000 entries with buckets of at most
/// 8 entries and nodes of at most 4 children, inserted in a scrambled order.
pub fn write_format(dir: &Path) -> Result<()> {
    let db = history_db(&dir.join("format.db"))?;
    let entries = user_entries();
    db.transact(|tx| {
        let bounds = pbpersist::tree::Bounds { bucket: 8, node: 4 };
        let tree = pbpersist::PTreeMap::<String, i64>::create_with(tx, bounds)?;
        // A fixed shuffle (7919 is prime to 5,000), so buckets split everywhere.
        for i in 0..entries.len() {
            let (key, value) = &entries[(i * 7919) % entries.len()];
            tree.insert(tx, key.clone(), *value)?;
        }
        tx.root_mut()?.insert("users", tree);
        Ok(())
    })?;
    Ok(())
}

/// After docs/format.md's Python examples committed (Pisa raised to 60.5,
/// 100 keys `user-0002500/000` ... inserted into "users" worth `-j`, and a
/// new tree "scores" of `p00` ... `p39` worth `j * j`): everything reads
/// back, every tree rule holds, gc finds nothing unreachable, the history
/// shows Python's transaction, and Rust commits on top.
pub fn check_format(dir: &Path) -> Result<()> {
    use pbpersist::PTreeMap;
    let db = Database::open(dir.join("format.db"))?;
    let mut users = user_entries();
    users.extend((0..100).map(|j| (format!("user-0002500/{j:03}"), -j)));
    users.sort();
    let scores: Vec<(String, i64)> = (0..40).map(|j| (format!("p{j:02}"), j * j)).collect();
    let pisa = db.transact(|tx| {
        let root = tx.root()?;
        let pisa = root.require::<Tower>("pisa")?;
        check_eq(tx.get(pisa)?.height(), 60.5)?;
        for (name, want) in [("users", &users), ("scores", &scores)] {
            let tree = root.require::<PTreeMap<String, i64>>(name)?;
            let got: Vec<(String, i64)> = tree.iter(tx).collect::<pbpersist::Result<_>>()?;
            check_eq(&got, want)?;
            check_eq(tree.len(tx)?, want.len() as u64)?;
            let check = pbpersist::tree::check_tree(tx, tree)?;
            check_eq(check.problems, Vec::<String>::new())?;
            println!("{name}: {} entries, {} nodes, {} buckets", check.entries, check.nodes, check.buckets);
        }
        Ok(pisa)
    })?;
    if !db.gc(true)?.unreachable.is_empty() {
        return Err("Python's reference lists do not match its states".into());
    }
    let history = db.history(pisa.oid(), 10)?;
    check_eq(history.len(), 4)?;
    check_eq(history[0].meta.user.as_str(), "py")?;
    let before = db.at(history[1].tid)?;
    let height = before.transact(|tx| {
        let pisa = tx.root()?.require::<Tower>("pisa")?;
        Ok(tx.get(pisa)?.height())
    })?;
    check_eq(height, 58.0)?;
    db.transact(|tx| {
        let root = tx.root()?;
        for name in ["users", "scores"] {
            root.require::<PTreeMap<String, i64>>(name)?.insert(tx, "rust".into(), 1)?;
        }
        tx.get_mut(pisa)?.set_height(61.0);
        Ok(())
    })?;
    println!("what docs/format.md's examples wrote reads back in Rust");
    Ok(())
}

fn err(msg: &str) -> pbpersist::Error {
    pbpersist::Error::Storage(pbpersist::StorageError::Format(msg.to_owned()))
}

fn check_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> pbpersist::Result<()> {
    if got == want { Ok(()) } else { Err(err(&format!("expected {want:?}, found {got:?}"))) }
}

/// A catalog of 600 products on SQLite (`index.db`), its indexes built, for
/// Python to look up by docs/indexes.md's layout; prints, as JSON, what Rust
/// finds: the oids named `p3`, the oids priced -5 to 5 in key order, and
/// the oid of SKU `S42`.
pub fn write_index(dir: &Path) -> Result<()> {
    use crate::catalog::Product;
    let db = Database::open(dir.join("index.db"))?;
    db.build_indexes()?;
    db.transact(|tx| {
        for i in 0..600i64 {
            let mut p = Product::new();
            p.set_sku(format!("S{i}"));
            p.set_name(format!("p{}", i % 17));
            p.set_price_cents(i % 50 - 25);
            tx.add(p)?;
        }
        Ok(())
    })?;
    let found = db.transact(|tx| {
        let named = Product::BY_NAME.get(tx, "p3")?;
        let priced = Product::BY_PRICE_CENTS.range(tx, -5..=5, usize::MAX)?;
        let sku = Product::BY_SKU.find(tx, "S42")?;
        Ok((named, priced, sku))
    })?;
    let oids = |refs: &[pbpersist::Ref<Product>]| refs.iter().map(|r| r.oid().0).collect::<Vec<_>>();
    // Lists of numbers print as JSON arrays.
    let sku = found.2.map_or_else(|| "null".to_owned(), |r| r.oid().0.to_string());
    println!(r#"{{"named": {:?}, "priced": {:?}, "sku": {sku}}}"#, oids(&found.0), oids(&found.1));
    Ok(())
}
