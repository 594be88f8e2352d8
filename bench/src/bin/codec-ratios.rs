//! Encode and decode against prost, interleaved: each round times a batch of
//! pbpersist, then the same batch of prost, and the ratio of the two is kept.
//! The median ratio over many rounds holds steady on a noisy machine where
//! two separate criterion runs drift apart by 20% or more.
//!
//! `cargo run --release -p pbpersist-bench --bin codec-ratios`
//!
//! With `--instructions`, each side of each case instead runs under
//! valgrind's callgrind, and the instructions of one operation are reported:
//! a count that does not drift with the machine, though it weighs neither
//! cache misses nor branch mispredictions.

use bytes::Bytes;
use clap::Parser;
use pbpersist_bench::samples;
use pbpersist_tests::coverage::corpus;
use pbpersist_tests::evolution::NoteV1;
use pbpersist_tests::prost_reference as reference;
use prost::Message;
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 41;

#[derive(Parser)]
#[command(about = "Encode and decode of pbpersist's generated types against prost's")]
struct Args {
    /// Count instructions per operation with valgrind's callgrind instead of timing.
    #[arg(long)]
    instructions: bool,
    /// Run one side of one case this many times and exit (what `--instructions` runs under valgrind).
    #[arg(long, hide = true, num_args = 3, value_names = ["CASE", "SIDE", "TIMES"])]
    run: Option<Vec<String>>,
}

/// One operation, done by pbpersist and by prost.
struct Case {
    name: String,
    /// Operations per timed batch.
    batch: usize,
    ours: Box<dyn FnMut()>,
    prost: Box<dyn FnMut()>,
}

/// Decode and encode of one message type on both sides.
fn codec<O: Message + Default + 'static, P: Message + Default + 'static>(label: &str, bytes: Vec<u8>) -> [Case; 2] {
    let batch = (2_000_000 / bytes.len().max(1)).clamp(2_000, 50_000);
    let (ours, theirs) = (O::decode(bytes.as_slice()).unwrap(), P::decode(bytes.as_slice()).unwrap());
    let (mut x, mut y) = (Vec::with_capacity(bytes.len() * 2), Vec::with_capacity(bytes.len() * 2));
    let input = bytes.clone();
    [
        Case {
            name: format!("decode {label}"),
            batch,
            ours: Box::new(move || drop(black_box(O::decode(black_box(input.as_slice())).unwrap()))),
            prost: Box::new(move || drop(black_box(P::decode(black_box(bytes.as_slice())).unwrap()))),
        },
        Case {
            name: format!("encode {label}"),
            batch,
            ours: Box::new(move || {
                x.clear();
                black_box(&ours).encode(&mut x).unwrap();
            }),
            prost: Box::new(move || {
                y.clear();
                black_box(&theirs).encode(&mut y).unwrap();
            }),
        },
    ]
}

/// Decode of bytes that hold fields `O` and `P` do not know, from a slice and
/// from `Bytes` (as a load decodes a record).
fn unknown<O: Message + Default + 'static, P: Message + Default + 'static>(label: &str, bytes: Vec<u8>) -> [Case; 2] {
    let (slice, shared) = (bytes.clone(), Bytes::from(bytes.clone()));
    let shared_too = shared.clone();
    [
        Case {
            name: format!("decode {label} keeping unknown fields, from a slice"),
            batch: 50_000,
            ours: Box::new(move || drop(black_box(O::decode(black_box(slice.as_slice())).unwrap()))),
            prost: Box::new(move || drop(black_box(P::decode(black_box(bytes.as_slice())).unwrap()))),
        },
        Case {
            name: format!("decode {label} keeping unknown fields, from `Bytes` (as a load does)"),
            batch: 50_000,
            ours: Box::new(move || drop(black_box(O::decode(black_box(&shared).clone()).unwrap()))),
            prost: Box::new(move || drop(black_box(P::decode(black_box(&shared_too).clone()).unwrap()))),
        },
    ]
}

/// The cases in pairs, each pair built on demand: a run under callgrind
/// builds only its own, so that the heap it runs on is nearly fresh (the
/// allocator's cost, and so the count, otherwise depends on what came before).
fn pairs() -> Vec<fn() -> [Case; 2]> {
    vec![
        || codec::<pbpersist_tests::demo::Tower, reference::demo::Tower>("small (`demo.Tower`)", samples::tower()),
        || {
            codec::<corpus::nested::Tree, reference::corpus::nested::Tree>(
                "large nested (`corpus.nested.Tree`)",
                samples::corpus("corpus.nested.Tree", 99),
            )
        },
        || {
            codec::<corpus::maps::Maps, reference::corpus::maps::Maps>(
                "repeated and maps (`corpus.maps.Maps`)",
                samples::corpus("corpus.maps.Maps", 7),
            )
        },
        || {
            codec::<corpus::scalars::Scalars, reference::corpus::scalars::Scalars>(
                "every scalar (`corpus.scalars.Scalars`)",
                samples::corpus("corpus.scalars.Scalars", 3),
            )
        },
        // Decoding with unknown fields: pbpersist keeps them, prost drops them.
        || unknown::<NoteV1, samples::ProstNoteV1>("v2 as v1 (all but one field unknown)", samples::note_v2()),
        || {
            unknown::<pbpersist_tests::demo::Tower, reference::demo::Tower>(
                "a Tower with two added fields",
                samples::tower_v2(),
            )
        },
    ]
}

/// Times `batch` calls of each side per round; prints both medians and the
/// median, first and third quartile of prost's time over ours.
fn compare(case: &mut Case) {
    let batch = case.batch;
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
        timed(&mut case.ours);
        timed(&mut case.prost);
    }
    for _ in 0..ROUNDS {
        let x = timed(&mut case.ours);
        let y = timed(&mut case.prost);
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    for v in [&mut a, &mut b, &mut ratio] {
        v.sort_by(f64::total_cmp);
    }
    let (q1, mid, q3) = (ROUNDS / 4, ROUNDS / 2, ROUNDS * 3 / 4);
    println!(
        "| {} | {:.1} ns | {:.1} ns | {:.2}x | {:.2}-{:.2}x |",
        case.name, a[mid], b[mid], ratio[mid], ratio[q1], ratio[q3]
    );
}

/// Instructions that `times` runs of one side take, setup included.
fn callgrind(case: usize, side: &str, times: usize) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(me)
        .args(["--run", &case.to_string(), side, &times.to_string()])
        .output()
        .map_err(|e| format!("valgrind: {e} (is it installed?)"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    log.lines()
        .find_map(|l| l.split("Collected :").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| format!("no instruction count in valgrind's output:\n{log}"))
}

/// Prints each side's instructions per operation: the difference between
/// runs of 2n and n operations, over n, so that setup cancels out.
fn count_instructions() -> Result<(), String> {
    const N: usize = 2_000;
    println!("| benchmark | pbpersist | prost | ratio (prost instructions / ours) |");
    println!("|---|---|---|---|");
    for (p, pair) in pairs().iter().enumerate() {
        for (j, case) in pair().iter().enumerate() {
            let mut per_op = [0.0; 2];
            for (slot, side) in per_op.iter_mut().zip(["ours", "prost"]) {
                let i = 2 * p + j;
                let (one, two) = (callgrind(i, side, N)?, callgrind(i, side, 2 * N)?);
                *slot = two.saturating_sub(one) as f64 / N as f64;
            }
            println!("| {} | {:.0} | {:.0} | {:.2}x |", case.name, per_op[0], per_op[1], per_op[1] / per_op[0]);
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Some(run) = args.run {
        let side = run[1].as_str();
        let pair = run[0].parse().ok().and_then(|i: usize| Some((pairs().get(i / 2)?(), i % 2)));
        let (Some((mut pair, j)), Ok(times), "ours" | "prost") = (pair, run[2].parse::<usize>(), side) else {
            eprintln!("--run takes a case number, `ours` or `prost`, and a count");
            std::process::exit(2);
        };
        let case = &mut pair[j];
        let f = if side == "ours" { &mut case.ours } else { &mut case.prost };
        for _ in 0..times {
            f();
        }
        return;
    }
    if args.instructions {
        if let Err(e) = count_instructions() {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    println!("| benchmark | pbpersist | prost | ratio (prost time / ours), median | quartiles |");
    println!("|---|---|---|---|---|");
    for pair in pairs() {
        for mut case in pair() {
            compare(&mut case);
        }
    }
}
