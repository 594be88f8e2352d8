//! Micro-benchmarks (criterion), each beside the peer it is judged against:
//! encode and decode against prost-generated types of the same schema, the
//! cost of keeping unknown fields, accessors against plain field access, and
//! a commit of unchanged objects.

use criterion::{Criterion, criterion_group, criterion_main};
use pbpersist::{Database, Persistent, Ref};
use pbpersist_bench::samples;
use pbpersist_tests::prost_reference as reference;
use prost::Message;
use std::hint::black_box;

macro_rules! codec_pair {
    ($c:expr, $group:literal, $ours:ty, $prost:ty, $bytes:expr) => {{
        let bytes: Vec<u8> = $bytes;
        let mut g = $c.benchmark_group($group);
        g.bench_function("decode/pbpersist", |b| b.iter(|| <$ours>::decode(black_box(bytes.as_slice())).unwrap()));
        g.bench_function("decode/prost", |b| b.iter(|| <$prost>::decode(black_box(bytes.as_slice())).unwrap()));
        let ours = <$ours>::decode(bytes.as_slice()).unwrap();
        let theirs = <$prost>::decode(bytes.as_slice()).unwrap();
        let mut buf = Vec::with_capacity(bytes.len() * 2);
        g.bench_function("encode/pbpersist", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&ours).encode(&mut buf).unwrap();
            })
        });
        g.bench_function("encode/prost", |b| {
            b.iter(|| {
                buf.clear();
                black_box(&theirs).encode(&mut buf).unwrap();
            })
        });
        g.finish();
    }};
}

fn codecs(c: &mut Criterion) {
    codec_pair!(c, "small (demo.Tower)", pbpersist_tests::demo::Tower, reference::demo::Tower, samples::tower());
    codec_pair!(
        c,
        "large nested (corpus.nested.Tree)",
        pbpersist_tests::coverage::corpus::nested::Tree,
        reference::corpus::nested::Tree,
        samples::corpus("corpus.nested.Tree", 99)
    );
    codec_pair!(
        c,
        "repeated and maps (corpus.maps.Maps)",
        pbpersist_tests::coverage::corpus::maps::Maps,
        reference::corpus::maps::Maps,
        samples::corpus("corpus.maps.Maps", 7)
    );
    codec_pair!(
        c,
        "every scalar (corpus.scalars.Scalars)",
        pbpersist_tests::coverage::corpus::scalars::Scalars,
        reference::corpus::scalars::Scalars,
        samples::corpus("corpus.scalars.Scalars", 3)
    );
}

fn unknown_fields(c: &mut Criterion) {
    // Bytes of a newer schema decoded by an older type: pbpersist keeps the
    // fields it does not know, prost drops them.
    keeping_unknown::<pbpersist_tests::evolution::NoteV1, samples::ProstNoteV1>(
        c,
        "unknown fields, NoteV2 as NoteV1 (all but one unknown)",
        samples::note_v2(),
    );
    keeping_unknown::<pbpersist_tests::demo::Tower, reference::demo::Tower>(
        c,
        "unknown fields, a Tower with two added",
        samples::tower_v2(),
    );
}

fn keeping_unknown<O: Message + Default, P: Message + Default>(c: &mut Criterion, group: &str, bytes: Vec<u8>) {
    let mut g = c.benchmark_group(group);
    g.bench_function("slice/pbpersist keeps them", |b| b.iter(|| O::decode(black_box(bytes.as_slice())).unwrap()));
    g.bench_function("slice/prost drops them", |b| b.iter(|| P::decode(black_box(bytes.as_slice())).unwrap()));
    // Loading an object decodes its state from the record's `Bytes`.
    let shared = bytes::Bytes::from(bytes.clone());
    g.bench_function("Bytes/pbpersist keeps them", |b| b.iter(|| O::decode(black_box(&shared).clone()).unwrap()));
    g.bench_function("Bytes/prost drops them", |b| b.iter(|| P::decode(black_box(&shared).clone()).unwrap()));
    g.finish();
}

fn accessors(c: &mut Criterion) {
    let ours = pbpersist_tests::demo::Tower::decode(samples::tower().as_slice()).unwrap();
    let theirs = reference::demo::Tower::decode(samples::tower().as_slice()).unwrap();
    let mut g = c.benchmark_group("accessors");
    g.bench_function("get/pbpersist height()", |b| b.iter(|| black_box(&ours).height()));
    g.bench_function("get/plain field", |b| b.iter(|| black_box(&theirs).height));
    let mut o = ours.clone();
    let mut t = theirs.clone();
    g.bench_function("set/pbpersist set_height()", |b| b.iter(|| o.set_height(black_box(2.0))));
    g.bench_function("set/plain field", |b| b.iter(|| t.height = black_box(2.0)));
    g.finish();
}

/// `n` towers added in one transaction.
fn towers(db: &Database, n: usize) -> Vec<Ref<pbpersist_tests::demo::Tower>> {
    db.transact(|tx| {
        (0..n)
            .map(|i| {
                let mut t = pbpersist_tests::demo::Tower::new();
                t.set_name(format!("t{i}"));
                t.set_width(1.0);
                t.set_height(1.0);
                tx.add(t)
            })
            .collect()
    })
    .unwrap()
}

fn unchanged_commit(c: &mut Criterion) {
    let db = Database::in_memory().unwrap();
    let refs = towers(&db, 1000);
    let mut conn = db.connect().unwrap();
    let mut g = c.benchmark_group("commit of 1000 objects registered but unchanged");
    g.bench_function("pbpersist", |b| {
        b.iter(|| {
            let mut tx = conn.begin().unwrap();
            for r in &refs {
                black_box(tx.get_mut(*r).unwrap().height());
            }
            assert_eq!(tx.commit().unwrap(), None, "nothing is encoded or written");
        })
    });
    g.finish();
    assert!(!refs.is_empty() && <pbpersist_tests::demo::Tower as Persistent>::TRACKS_FIELDS);
}

/// A read of a cached object: `get` (an `Arc`, counted up and down) against
/// `get_ref` (a borrow), over 1,000 objects created together. The Tower
/// workload's hot read shows the difference on objects loaded from disk.
fn cached_reads(c: &mut Criterion) {
    let db = Database::in_memory().unwrap();
    let refs = towers(&db, 1000);
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    let mut g = c.benchmark_group("read height() of 1000 cached objects");
    g.bench_function("get", |b| b.iter(|| refs.iter().map(|r| tx.get(*r).unwrap().height()).sum::<f32>()));
    g.bench_function("get_ref", |b| b.iter(|| refs.iter().map(|r| tx.get_ref(*r).unwrap().height()).sum::<f32>()));
    g.finish();
}

criterion_group!(benches, codecs, unknown_fields, accessors, unchanged_commit, cached_reads);
criterion_main!(benches);
