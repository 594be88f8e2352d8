//! Encode and decode against prost, interleaved: each round times a batch of
//! pbpersist, then the same batch of prost, and the ratio of the two is kept.
//! The median ratio over many rounds holds steady on a noisy machine where
//! two separate criterion runs drift apart by 20% or more.
//!
//! `cargo run --release -p pbpersist-bench --bin codec-ratios`

use bytes::Bytes;
use pbpersist_bench::samples;
use pbpersist_tests::coverage::corpus;
use pbpersist_tests::evolution::NoteV1;
use pbpersist_tests::prost_reference as reference;
use prost::Message;
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 41;

/// Times `batch` calls of each side per round; prints both medians and the
/// median, first and third quartile of prost's time over ours.
fn compare(name: &str, batch: usize, mut ours: impl FnMut(), mut prost: impl FnMut()) {
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / batch as f64
    };
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    // Warm-up rounds, not kept: caches, allocator and clock settle first.
    for _ in 0..5 {
        timed(&mut ours);
        timed(&mut prost);
    }
    for _ in 0..ROUNDS {
        let x = timed(&mut ours);
        let y = timed(&mut prost);
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    for v in [&mut a, &mut b, &mut ratio] {
        v.sort_by(f64::total_cmp);
    }
    let (q1, mid, q3) = (ROUNDS / 4, ROUNDS / 2, ROUNDS * 3 / 4);
    println!(
        "| {name} | {:.1} ns | {:.1} ns | {:.2}x | {:.2}-{:.2}x |",
        a[mid], b[mid], ratio[mid], ratio[q1], ratio[q3]
    );
}

/// Decode and encode of one message type on both sides.
fn codec<O: Message + Default, P: Message + Default>(label: &str, bytes: &[u8]) {
    let batch = (2_000_000 / bytes.len().max(1)).clamp(2_000, 50_000);
    compare(
        &format!("decode {label}"),
        batch,
        || drop(black_box(O::decode(black_box(bytes)).unwrap())),
        || drop(black_box(P::decode(black_box(bytes)).unwrap())),
    );
    let (ours, theirs) = (O::decode(bytes).unwrap(), P::decode(bytes).unwrap());
    let (mut x, mut y) = (Vec::with_capacity(bytes.len() * 2), Vec::with_capacity(bytes.len() * 2));
    compare(
        &format!("encode {label}"),
        batch,
        || {
            x.clear();
            black_box(&ours).encode(&mut x).unwrap();
        },
        || {
            y.clear();
            black_box(&theirs).encode(&mut y).unwrap();
        },
    );
}

/// Decode of bytes that hold fields `O` and `P` do not know, from a slice and
/// from `Bytes` (as a load decodes a record).
fn unknown<O: Message + Default, P: Message + Default>(label: &str, bytes: Vec<u8>) {
    compare(
        &format!("decode {label} keeping unknown fields, from a slice"),
        50_000,
        || drop(black_box(O::decode(black_box(bytes.as_slice())).unwrap())),
        || drop(black_box(P::decode(black_box(bytes.as_slice())).unwrap())),
    );
    let shared = Bytes::from(bytes);
    compare(
        &format!("decode {label} keeping unknown fields, from `Bytes` (as a load does)"),
        50_000,
        || drop(black_box(O::decode(black_box(&shared).clone()).unwrap())),
        || drop(black_box(P::decode(black_box(&shared).clone()).unwrap())),
    );
}

fn main() {
    println!("| benchmark | pbpersist | prost | ratio (prost time / ours), median | quartiles |");
    println!("|---|---|---|---|---|");
    codec::<pbpersist_tests::demo::Tower, reference::demo::Tower>("small (`demo.Tower`)", &samples::tower());
    let tree = samples::corpus("corpus.nested.Tree", 99);
    codec::<corpus::nested::Tree, reference::corpus::nested::Tree>("large nested (`corpus.nested.Tree`)", &tree);
    let maps = samples::corpus("corpus.maps.Maps", 7);
    codec::<corpus::maps::Maps, reference::corpus::maps::Maps>("repeated and maps (`corpus.maps.Maps`)", &maps);
    let scalars = samples::corpus("corpus.scalars.Scalars", 3);
    codec::<corpus::scalars::Scalars, reference::corpus::scalars::Scalars>(
        "every scalar (`corpus.scalars.Scalars`)",
        &scalars,
    );
    // Decoding with unknown fields: pbpersist keeps them, prost drops them.
    unknown::<NoteV1, samples::ProstNoteV1>("v2 as v1 (all but one field unknown)", samples::note_v2());
    unknown::<pbpersist_tests::demo::Tower, reference::demo::Tower>(
        "a Tower with two added fields",
        samples::tower_v2(),
    );
}
