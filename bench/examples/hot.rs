//! Profiling aid: the hot-read loop alone. `hot` reads objects added in this
//! process (memory storage); `hot sqlite` reads objects cold-loaded from a
//! SQLite file first, as the Tower workload does.
use pbpersist::{Database, Options, Ref};
use pbpersist_examples::demo::Tower;

fn main() {
    let n = 100_000;
    let options = Options::default().cache_objects(n + 10);
    let sqlite = std::env::args().nth(1).as_deref() == Some("sqlite");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.db");
    let open = || match sqlite {
        true => Database::open_with(&path, options.clone()),
        false => Database::with_storage_and_options(pbpersist::storage::MemoryStorage::new(), options.clone()),
    };
    let db = open().unwrap();
    let mut refs: Vec<Ref<Tower>> = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        db.transact(|tx| {
            for i in chunk {
                let mut t = Tower::new();
                t.set_name(format!("tower-{i}"));
                t.set_width(1.0);
                t.set_height(1.0);
                refs.push(tx.add(t)?);
            }
            Ok(())
        })
        .unwrap();
    }
    // With SQLite, a fresh database loads every object (a cold load).
    let db = if sqlite { open().unwrap() } else { db };
    let mut conn = db.connect().unwrap();
    let mut tx = conn.begin().unwrap();
    for r in &refs {
        tx.get(*r).unwrap();
    }
    // Alternating passes of `get` (an `Arc` per read) and `get_ref` (a borrow).
    let (mut best, mut best_ref, mut total) = (0.0f64, 0.0f64, 0.0f32);
    let passes: usize = std::env::var("HOT_PASSES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    for _ in 0..passes {
        let start = std::time::Instant::now();
        for r in &refs {
            total += tx.get(*r).unwrap().height();
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64() / 1e6);
        let start = std::time::Instant::now();
        for r in &refs {
            total += tx.get_ref(*r).unwrap().height();
        }
        best_ref = best_ref.max(n as f64 / start.elapsed().as_secs_f64() / 1e6);
    }
    println!("get: {best:.1} M/s, get_ref: {best_ref:.1} M/s (best of {passes} passes each) {total}");
}
