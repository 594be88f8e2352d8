//! The Tower workload (see `docs/benchmarks/tower.md`) for pbpersist and for the
//! raw ceiling (rusqlite + prost writing the same rows).

use pbpersist::{Database, Options, Ref};
use pbpersist_examples::demo::Tower;
use pbpersist_tests::prost_reference::demo::Tower as ProstTower;
use pbpersist_tests::prost_reference::pbpersist::Ref as ProstRef;
use prost::Message;
use std::path::Path;
use std::time::Instant;

/// Objects per second for each phase, and single-load latencies.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    /// Create and commit.
    pub add: f64,
    /// Change `height` of every object and commit.
    pub update: f64,
    /// Load every object by oid from a fresh database.
    pub cold_load: f64,
    /// p50 of one cold load, microseconds.
    pub cold_p50_us: f64,
    /// p99 of one cold load, microseconds.
    pub cold_p99_us: f64,
    /// Follow `neighbor` from the last tower to the first, fresh database.
    pub traversal: f64,
    /// The same traversal, prefetching 1,000 references ahead.
    pub prefetch_traversal: f64,
    /// The same traversal by a restarted process with a warm local state
    /// cache (pbpersist on PostgreSQL only).
    pub warm_traversal: f64,
    /// Read `height` of every cached object.
    pub hot_read: f64,
    /// Peak resident memory after the cold load, KiB (pbpersist only).
    pub peak_rss_kib: u64,
}

impl Rates {
    /// Each measure's median over several runs (the lower middle for an even
    /// count). Peak memory is the first run's, as the process's peak only grows.
    pub fn median(runs: &[Rates]) -> Rates {
        let m = |f: fn(&Rates) -> f64| median_by(runs, f);
        Rates {
            add: m(|r| r.add),
            update: m(|r| r.update),
            cold_load: m(|r| r.cold_load),
            cold_p50_us: m(|r| r.cold_p50_us),
            cold_p99_us: m(|r| r.cold_p99_us),
            traversal: m(|r| r.traversal),
            prefetch_traversal: m(|r| r.prefetch_traversal),
            warm_traversal: m(|r| r.warm_traversal),
            hot_read: m(|r| r.hot_read),
            peak_rss_kib: runs.first().map_or(0, |r| r.peak_rss_kib),
        }
    }
}

/// The median of `f` over `runs` (the lower middle for an even count).
pub fn median_by<T>(runs: &[T], f: impl Fn(&T) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

/// Bars of three systems per measure on a log scale from `floor`, with a
/// legend: the charts beside the benchmark pages.
pub fn bar_chart(
    path: &Path,
    caption: &str,
    size: (u32, u32),
    floor: f64,
    labels: &[String],
    systems: [&str; 3],
    values: &[[f64; 3]],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let max = values.iter().flatten().cloned().fold(floor, f64::max);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..labels.len() as f64, (floor..max * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(labels.len())
        .x_label_style(("sans-serif", if labels.len() > 6 { 10 } else { 12 }))
        .x_label_formatter(&|x| labels.get(x.floor() as usize).cloned().unwrap_or_default())
        .draw()?;
    let colors = [RGBColor(31, 119, 180), RGBColor(150, 150, 150), RGBColor(214, 39, 40)];
    for (k, (color, name)) in colors.into_iter().zip(systems).enumerate() {
        chart
            .draw_series(values.iter().enumerate().filter(|(_, v)| v[k] > 0.0).map(|(i, v)| {
                let x0 = i as f64 + 0.15 + k as f64 * 0.23;
                Rectangle::new([(x0, floor), (x0 + 0.2, v[k])], color.filled())
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart.configure_series_labels().background_style(WHITE).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

pub mod indexes;
pub mod postgres;
pub mod samples;
pub mod trees;
pub mod zodb;

pub(crate) fn rate(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64()
}

/// The line between a benchmark page's measured part, which the benchmark
/// writes, and the hand-written part after it, which it keeps: a page's
/// prose lives once, in the page.
pub const HAND_WRITTEN: &str =
    "<!-- Written by hand from here on: the benchmark rewrites only what is above this line. -->";

/// Prints `text` and, with `report`, writes it there as the page's measured
/// part ([`write_page`]).
pub fn write_report(report: Option<&Path>, text: &str) -> std::io::Result<()> {
    println!("{text}");
    match report {
        Some(path) => write_page(path, text),
        None => Ok(()),
    }
}

/// Writes `measured` as the page at `path`, keeping what the page holds
/// after [`HAND_WRITTEN`].
pub fn write_page(path: &Path, measured: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let kept = old.find(HAND_WRITTEN).map_or("\n", |i| &old[i + HAND_WRITTEN.len()..]);
    std::fs::write(path, format!("{}\n\n{HAND_WRITTEN}{kept}", measured.trim_end()))
}

/// The `p` quantile of `latencies` (sorted in place).
pub fn percentile(latencies: &mut [f64], p: f64) -> f64 {
    latencies.sort_by(f64::total_cmp);
    latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
}

/// The peak resident memory of this process so far, KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn tower(i: usize, neighbor: Option<Ref<Tower>>) -> Tower {
    let mut t = Tower::new();
    t.set_name(format!("tower-{i}"));
    t.set_width(i as f32);
    t.set_height(10.0);
    if let Some(n) = neighbor {
        t.set_neighbor(n);
    }
    t
}

/// The workload on pbpersist with the SQLite storage in `dir`.
pub fn pbpersist(dir: &Path, n: usize, per_tx: usize) -> pbpersist::Result<Rates> {
    let path = dir.join("towers.db");
    pbpersist_on(&|options| Database::open_with(&path, options), n, per_tx)
}

/// Opens a new `Database` over the benchmark's storage, as a restarted
/// program would.
pub type Open<'a> = &'a dyn Fn(Options) -> pbpersist::Result<Database>;

/// The workload on pbpersist over any storage; `open` starts from an empty one.
pub fn pbpersist_on(open: Open<'_>, n: usize, per_tx: usize) -> pbpersist::Result<Rates> {
    let mut out = Rates::default();
    // The cache holds the whole working set, as the ZODB run's does.
    let options = Options::default().cache_objects(n + 1000);
    let db = open(options.clone())?;
    let start = Instant::now();
    let mut refs: Vec<Ref<Tower>> = Vec::with_capacity(n);
    let mut previous = None;
    for chunk in (0..n).collect::<Vec<_>>().chunks(per_tx) {
        db.transact(|tx| {
            let mut prev = previous;
            let mut added = Vec::with_capacity(chunk.len());
            for i in chunk {
                let r = tx.add(tower(*i, prev))?;
                added.push(r);
                prev = Some(r);
            }
            if chunk.last() == Some(&(n - 1)) {
                tx.root_mut()?.insert("last", prev.expect("n > 0"));
            }
            refs.extend(&added);
            previous = prev;
            Ok(())
        })?;
    }
    out.add = rate(n, start);

    let start = Instant::now();
    for chunk in refs.chunks(per_tx) {
        db.transact(|tx| {
            for r in chunk {
                tx.get_mut(*r)?.set_height(11.0);
            }
            Ok(())
        })?;
    }
    out.update = rate(n, start);
    drop(db);

    let db = open(options.clone())?;
    let mut conn = db.connect()?;
    let mut tx = conn.begin()?;
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for r in &refs {
        let t0 = Instant::now();
        let t = tx.get(*r)?;
        std::hint::black_box(&t);
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    out.cold_load = rate(n, start);
    out.cold_p50_us = percentile(&mut latencies, 0.5);
    out.cold_p99_us = percentile(&mut latencies, 0.99);
    out.peak_rss_kib = peak_rss_kib();

    // A pass takes milliseconds, so one pass is at the mercy of the machine:
    // the best of five is reported, for ZODB too. Reads borrow (`get_ref`),
    // as a loop that keeps nothing would.
    for _ in 0..5 {
        let start = Instant::now();
        let mut total = 0.0f32;
        for r in &refs {
            total += tx.get_ref(*r)?.height();
        }
        std::hint::black_box(total);
        out.hot_read = out.hot_read.max(rate(n, start));
    }
    drop(tx);

    let (visited, seconds) = traverse(&open(options.clone())?)?;
    out.traversal = visited as f64 / seconds;
    let (visited, seconds) = traverse_prefetching(&open(options)?)?;
    out.prefetch_traversal = visited as f64 / seconds;
    Ok(out)
}

/// [`traverse`], asking every 1,000 steps for the next 1,000 towers at once
/// (`prefetch_refs`; on PostgreSQL one query walks the chain on the server).
pub fn traverse_prefetching(db: &Database) -> pbpersist::Result<(usize, f64)> {
    db.transact(|tx| {
        let start = Instant::now();
        let mut next = Some(tx.root()?.require::<Tower>("last")?);
        let mut visited = 0;
        while let Some(r) = next {
            if visited % 1000 == 0 {
                tx.prefetch_refs(r, 1000)?;
            }
            next = tx.get(r)?.neighbor();
            visited += 1;
        }
        Ok((visited, start.elapsed().as_secs_f64()))
    })
}

/// Follows the chain of towers from the root's "last" to the first; returns
/// how many it visited and how long that took, in seconds.
pub fn traverse(db: &Database) -> pbpersist::Result<(usize, f64)> {
    db.transact(|tx| {
        let start = Instant::now();
        let mut next = Some(tx.root()?.require::<Tower>("last")?);
        let mut visited = 0;
        while let Some(r) = next {
            next = tx.get(r)?.neighbor();
            visited += 1;
        }
        Ok((visited, start.elapsed().as_secs_f64()))
    })
}

/// Tower `i` of the raw runs as prost's type, pointing at tower `i - 1`
/// (oids start at 1).
pub(crate) fn prost_tower(i: usize) -> ProstTower {
    ProstTower {
        name: format!("tower-{i}"),
        width: i as f32,
        height: 10.0,
        build_year: None,
        neighbor: (i > 0).then_some(ProstRef { oid: i as u64 }),
    }
}

/// The record of a raw tower, as pbpersist would write it.
pub(crate) fn record(t: &ProstTower) -> Vec<u8> {
    pbpersist::record::Record {
        r#type: "demo.Tower".into(),
        state: t.encode_to_vec().into(),
        refs: t.neighbor.iter().map(|r| r.oid).collect(),
    }
    .encode_to_vec()
}

/// The ceiling: rusqlite (WAL, synchronous=FULL) and prost writing and
/// reading the same rows pbpersist writes, with none of its bookkeeping.
pub fn raw(dir: &Path, n: usize, per_tx: usize) -> rusqlite::Result<Rates> {
    let path = dir.join("raw.db");
    let open = || -> rusqlite::Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(&path)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok(c)
    };
    let mut out = Rates::default();
    let mut conn = open()?;
    conn.execute_batch(
        "CREATE TABLE pb_object (oid INTEGER PRIMARY KEY NOT NULL, tid INTEGER NOT NULL, record BLOB NOT NULL)",
    )?;
    let mut towers: Vec<ProstTower> = Vec::with_capacity(n);
    let start = Instant::now();
    for (tid, chunk) in (0..n).collect::<Vec<_>>().chunks(per_tx).enumerate() {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO pb_object (oid, tid, record) VALUES (?1, ?2, ?3)")?;
            for i in chunk {
                let t = prost_tower(*i);
                insert.execute(rusqlite::params![*i as i64 + 1, tid as i64, record(&t)])?;
                towers.push(t);
            }
        }
        tx.commit()?;
    }
    out.add = rate(n, start);

    let start = Instant::now();
    for (chunk_no, chunk) in towers.chunks_mut(per_tx).enumerate() {
        let tx = conn.transaction()?;
        {
            let mut update = tx.prepare_cached("UPDATE pb_object SET tid = ?2, record = ?3 WHERE oid = ?1")?;
            for (j, t) in chunk.iter_mut().enumerate() {
                t.height = 11.0;
                update.execute(rusqlite::params![
                    (chunk_no * per_tx + j) as i64 + 1,
                    1_000_000 + chunk_no as i64,
                    record(t)
                ])?;
            }
        }
        tx.commit()?;
    }
    out.update = rate(n, start);
    drop(conn);

    let conn = open()?;
    // One read transaction for the whole load, as pbpersist's snapshot is.
    conn.execute_batch("BEGIN")?;
    let mut select = conn.prepare_cached("SELECT record FROM pb_object WHERE oid = ?1")?;
    let mut latencies = Vec::with_capacity(n);
    let mut loaded = Vec::with_capacity(n);
    let start = Instant::now();
    for oid in 1..=n as i64 {
        let t0 = Instant::now();
        let blob: Vec<u8> = select.query_row([oid], |r| r.get(0))?;
        let rec = pbpersist::record::Record::from_bytes(blob.into()).expect("valid record");
        let t = ProstTower::decode(rec.state).expect("valid tower");
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
        loaded.push(t);
    }
    out.cold_load = rate(n, start);
    out.cold_p50_us = percentile(&mut latencies, 0.5);
    out.cold_p99_us = percentile(&mut latencies, 0.99);
    // A plain Vec of decoded structs has no "hot read" to compare with.
    std::hint::black_box(loaded.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_keeps_its_hand_written_part_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("page.md");
        write_page(&page, "# Run 1\n").unwrap();
        let first = std::fs::read_to_string(&page).unwrap();
        assert_eq!(first, format!("# Run 1\n\n{HAND_WRITTEN}\n"));
        std::fs::write(&page, format!("{first}\nWhy the numbers are what they are.\n")).unwrap();
        write_page(&page, "# Run 2\n").unwrap();
        let second = std::fs::read_to_string(&page).unwrap();
        assert_eq!(second, format!("# Run 2\n\n{HAND_WRITTEN}\n\nWhy the numbers are what they are.\n"));
    }
}
