//! Profiling aid: the hot-read loop alone.
use pbpersist::{Database, Options};
use pbpersist_examples::demo::Tower;
fn main() {
    let n = 100_000;
    let db = Database::with_storage_and_options(
        pbpersist::storage::MemoryStorage::new(),
        Options::default().cache_objects(n + 10),
    )
    .unwrap();
    let refs: Vec<_> = db
        .transact(|tx| {
            (0..n)
                .map(|i| {
                    let mut t = Tower::new();
                    t.set_name(format!("t{i}"));
                    t.set_width(1.0);
                    t.set_height(1.0);
                    tx.add(t)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    for r in &refs {
        tx.get(*r).unwrap();
    }
    let start = std::time::Instant::now();
    let mut total = 0.0f32;
    for _ in 0..20 {
        for r in &refs {
            total += tx.get(*r).unwrap().height();
        }
    }
    println!("{:.1} M/s {}", (20 * n) as f64 / start.elapsed().as_secs_f64() / 1e6, total);
}
