//! The schema front ends side by side: protox (the default) and Google's
//! protoc (the vendored one, which takes over where protox cannot parse),
//! each compiling the same files to generated code, in alternating rounds.
//!
//! `cargo run --release -p pbpersist-bench --bin frontends`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let corpus = root.join("tests/corpus");
    let proto = root.join("proto");
    let files: Vec<PathBuf> = include_str!("../../../tests/corpus/FILES")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| corpus.join(l))
        .chain([proto.join("demo.proto")])
        .collect();
    let includes = [corpus.clone(), proto.clone()];
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let protox_config = pbpersist_build::Config::new();
    let mut protoc_config = pbpersist_build::Config::new();
    protoc_config.protoc_executable(&protoc);

    // Both front ends must give the same code before their times mean anything.
    let a = protox_config.clone().cargo_directives(false).generate(&files, &includes)?;
    let b = protoc_config.clone().cargo_directives(false).generate(&files, &includes)?;
    let same = a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.content == y.content);

    let (mut protox_times, mut protoc_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        protox_times.push(time(|| protox_config.clone().cargo_directives(false).generate(&files, &includes))?);
        protoc_times.push(time(|| protoc_config.clone().cargo_directives(false).generate(&files, &includes))?);
    }
    let editions = root.join("tests/editions");
    let edition_files: Vec<PathBuf> =
        ["features2023.proto", "defaults2024.proto", "legacy2024.proto"].iter().map(|f| editions.join(f)).collect();
    let mut edition_times = Vec::new();
    for _ in 0..ROUNDS {
        edition_times.push(time(|| {
            protox_config.clone().cargo_directives(false).generate(&edition_files, &[&editions, &proto])
        })?);
    }

    let (x, c, e) = (median(protox_times), median(protoc_times), median(edition_times));
    println!("front end                      files  median of {ROUNDS}");
    println!("protox (default)               {:>5}  {:>8.1} ms", files.len(), ms(x));
    println!("protoc 36.2 (vendored)         {:>5}  {:>8.1} ms  ({:.2}x protox)", files.len(), ms(c), ms(c) / ms(x));
    println!("editions, protox then protoc   {:>5}  {:>8.1} ms", edition_files.len(), ms(e));
    println!("identical generated code: {same}");
    Ok(())
}

fn time<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<Duration, E> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
