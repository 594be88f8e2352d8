//! The index workload (see `docs/benchmarks/indexes.md`): people with an
//! indexed email, an indexed day of birth and a hand-declared (city, born)
//! index, on pbpersist and in one SQLite table with the same indexes. Python
//! ZODB with `zope.index` runs the same steps in `bench/zodb_index_bench.py`.

use crate::{median_by, percentile, rate};
use pbpersist::index::Index;
use pbpersist::{Database, Meta, Options, Persistent};
use std::path::Path;
use std::time::Instant;

/// A person, found by email, by day of birth, and by city and day of birth.
#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(message = "bench.Person")]
pub struct Person {
    /// `user0001234@example.com`: one person each.
    #[pbpersist(tag = 1, string, index)]
    pub email: String,
    /// Day of birth, days from an epoch, in `0..DAYS`.
    #[pbpersist(tag = 2, int64, index)]
    pub born: i64,
    /// `city-123`, one of `CITIES`.
    #[pbpersist(tag = 3, string)]
    pub city: String,
    /// pbpersist's bookkeeping.
    #[pbpersist(meta)]
    pub meta: Meta,
}

/// [`Person`] without any index: the baseline of the insert cost.
#[derive(Clone, PartialEq, Persistent)]
#[pbpersist(message = "bench.PlainPerson")]
pub struct PlainPerson {
    /// As [`Person::email`].
    #[pbpersist(tag = 1, string)]
    pub email: String,
    /// As [`Person::born`].
    #[pbpersist(tag = 2, int64)]
    pub born: i64,
    /// As [`Person::city`].
    #[pbpersist(tag = 3, string)]
    pub city: String,
    /// pbpersist's bookkeeping.
    #[pbpersist(meta)]
    pub meta: Meta,
}

/// People by city, then day of birth: the composite index, declared by hand.
pub static BY_CITY_BORN: Index<Person, (String, i64)> =
    Index::new("bench.Person.city+born", |p: &Person| vec![(p.city.clone(), p.born)]);
pbpersist::register_index!(BY_CITY_BORN);

/// Days of birth are in `0..DAYS` (a century).
pub const DAYS: i64 = 36_500;
/// How many cities there are.
pub const CITIES: u64 = 1_000;
/// Objects returned at most by a range query.
pub const LIMIT: usize = 100;
/// Days of birth a composite query spans (a decade).
pub const COMPOSITE_DAYS: i64 = 3_650;
/// Days of birth a count spans (a year).
pub const COUNT_DAYS: i64 = 365;

/// The fields of person number `k`: `bench/zodb_index_bench.py` computes
/// the same. A multiplicative hash spreads day and city independently of
/// the email's order.
pub fn fields(k: u64) -> (String, i64, String) {
    let h = (k * 2_654_435_761) % (1 << 32);
    let born = (h % DAYS as u64) as i64;
    let city = (h / DAYS as u64) % CITIES;
    (email(k), born, city_name(city))
}

/// The email of person number `k`.
pub fn email(k: u64) -> String {
    format!("user{k:07}@example.com")
}

/// The name of city number `c`.
pub fn city_name(c: u64) -> String {
    format!("city-{c:03}")
}

/// What each step inserts and asks; `bench/zodb_index_bench.py` computes the same.
#[derive(Debug)]
pub struct Plan {
    /// Person numbers in insertion order: a permutation of `0..n`, so that
    /// every index is inserted into at scattered places.
    pub insert: Vec<u64>,
    /// Person numbers whose email is looked up.
    pub emails: Vec<u64>,
    /// First day of each range query of [`LIMIT`] people by day of birth.
    pub born_from: Vec<i64>,
    /// City and first day of each composite query.
    pub city_born: Vec<(u64, i64)>,
    /// First day of each count of a year of births.
    pub count_from: Vec<i64>,
}

impl Plan {
    /// The plan for `n` people.
    pub fn new(n: u64) -> Plan {
        let walk = |count: u64, step: u64, modulus: u64| (0..count).map(move |i| (i * step) % modulus);
        Plan {
            insert: walk(n, scatter_step(n), n).collect(),
            emails: walk(n.min(20_000), 7_919, n).collect(),
            born_from: walk(1_000, 7_919, DAYS as u64).map(|d| d as i64).collect(),
            city_born: walk(1_000, 7_919, (DAYS - COMPOSITE_DAYS) as u64)
                .enumerate()
                .map(|(j, d)| ((j as u64 * 37) % CITIES, d as i64))
                .collect(),
            count_from: walk(100, 7_919, (DAYS - COUNT_DAYS) as u64).map(|d| d as i64).collect(),
        }
    }
}

/// A multiplier that permutes `0..n` (coprime with `n`) and sends
/// consecutive numbers far apart: the first such at or past 0.618 n. (A
/// prime just above a round `n`, such as 1,000,003 for a million, would
/// step by 3 and insert nearly in order.)
pub fn scatter_step(n: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 { a } else { gcd(b, a % b) }
    }
    (n * 618 / 1000..).find(|&s| gcd(s, n) == 1).unwrap_or(1)
}

/// One kind of query, asked cold then hot.
#[derive(Debug, Clone, Default)]
pub struct QueryRates {
    /// Queries per second in a freshly opened database.
    pub cold: f64,
    /// Queries per second asking the same again, everything cached.
    pub hot: f64,
    /// p50 of one cold query, microseconds.
    pub p50_us: f64,
    /// p99 of one cold query, microseconds.
    pub p99_us: f64,
    /// Objects (or, for counts, entries) all the queries found together:
    /// the same on every system, or they answered different questions.
    pub found: u64,
}

impl QueryRates {
    fn median(runs: &[QueryRates]) -> QueryRates {
        let m = |f: fn(&QueryRates) -> f64| median_by(runs, f);
        QueryRates {
            cold: m(|r| r.cold),
            hot: m(|r| r.hot),
            p50_us: m(|r| r.p50_us),
            p99_us: m(|r| r.p99_us),
            found: runs.first().map_or(0, |r| r.found),
        }
    }
}

/// Inserts and queries of one system.
#[derive(Debug, Clone, Default)]
pub struct IndexRates {
    /// People inserted per second, with the three indexes.
    pub insert: f64,
    /// People inserted per second without any index.
    pub insert_plain: f64,
    /// One person by email.
    pub email: QueryRates,
    /// [`LIMIT`] people born on or after a day, in order of birth.
    pub born: QueryRates,
    /// Up to [`LIMIT`] people of one city born in a decade, through the composite index.
    pub city_born: QueryRates,
    /// How many people were born in a year, without loading them.
    pub count: QueryRates,
}

impl IndexRates {
    /// Each measure's median over several runs.
    pub fn median(runs: &[IndexRates]) -> IndexRates {
        let q =
            |f: fn(&IndexRates) -> &QueryRates| QueryRates::median(&runs.iter().map(f).cloned().collect::<Vec<_>>());
        IndexRates {
            insert: median_by(runs, |r| r.insert),
            insert_plain: median_by(runs, |r| r.insert_plain),
            email: q(|r| &r.email),
            born: q(|r| &r.born),
            city_born: q(|r| &r.city_born),
            count: q(|r| &r.count),
        }
    }
}

/// Asks `count` queries cold, timing each, then the same again hot; `ask`
/// runs query `j` and returns how many objects or entries it found.
fn measure<E>(count: usize, mut ask: impl FnMut(usize) -> Result<u64, E>) -> Result<QueryRates, E> {
    let mut out = QueryRates::default();
    let mut latencies = Vec::with_capacity(count);
    let start = Instant::now();
    for j in 0..count {
        let t0 = Instant::now();
        out.found += ask(j)?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    out.cold = rate(count, start);
    out.p50_us = percentile(&mut latencies, 0.5);
    out.p99_us = percentile(&mut latencies, 0.99);
    // The best of three hot passes: one pass takes milliseconds.
    for _ in 0..3 {
        let start = Instant::now();
        for j in 0..count {
            ask(j)?;
        }
        out.hot = out.hot.max(rate(count, start));
    }
    Ok(out)
}

/// pbpersist's cache (and the ZODB script's) holds the hot steps' working
/// set; SQLite keeps its default page cache, as in the other benchmarks.
const CACHE_OBJECTS: usize = 200_000;

/// The workload on pbpersist with SQLite storage in `dir`: the indexed
/// people in one database, the plain ones in another.
pub fn pbpersist(dir: &Path, plan: &Plan, per_tx: usize) -> pbpersist::Result<IndexRates> {
    let mut out = IndexRates::default();
    let path = dir.join("people.db");
    let open = || -> pbpersist::Result<Database> {
        let db = Database::open_with(&path, Options::default().cache_objects(CACHE_OBJECTS))?;
        // Once per opening, as a program does at startup (one read when built).
        db.build_indexes()?;
        Ok(db)
    };

    let db = open()?;
    let start = Instant::now();
    for chunk in plan.insert.chunks(per_tx) {
        db.transact(|tx| {
            for &k in chunk {
                let (email, born, city) = fields(k);
                tx.add(Person { email, born, city, meta: Meta::default() })?;
            }
            Ok(())
        })?;
    }
    out.insert = rate(plan.insert.len(), start);
    drop(db);

    // Its own file, which no index has ever touched.
    let plain = Database::open_with(dir.join("plain.db"), Options::default().cache_objects(CACHE_OBJECTS))?;
    let start = Instant::now();
    for chunk in plan.insert.chunks(per_tx) {
        plain.transact(|tx| {
            for &k in chunk {
                let (email, born, city) = fields(k);
                tx.add(PlainPerson { email, born, city, meta: Meta::default() })?;
            }
            Ok(())
        })?;
    }
    out.insert_plain = rate(plan.insert.len(), start);
    drop(plain);

    // Each query kind in a freshly opened database; a found person is read
    // as a loop that keeps nothing would (`get_ref`), as SQLite's rows are.
    out.email = open()?.transact(|tx| {
        measure(plan.emails.len(), |j| {
            let wanted = email(plan.emails[j]);
            let found = Person::BY_EMAIL.get(tx, wanted.as_str())?;
            for r in &found {
                assert_eq!(tx.get_ref(*r)?.email, wanted);
            }
            Ok(found.len() as u64)
        })
    })?;
    out.born = open()?.transact(|tx| {
        measure(plan.born_from.len(), |j| {
            let found = Person::BY_BORN.range(tx, plan.born_from[j].., LIMIT)?;
            for r in &found {
                std::hint::black_box(tx.get_ref(*r)?.born);
            }
            Ok(found.len() as u64)
        })
    })?;
    out.city_born = open()?.transact(|tx| {
        measure(plan.city_born.len(), |j| {
            let (city, from) = plan.city_born[j];
            let range = (city_name(city), from)..(city_name(city), from + COMPOSITE_DAYS);
            let found = BY_CITY_BORN.range(tx, range, LIMIT)?;
            for r in &found {
                std::hint::black_box(tx.get_ref(*r)?.born);
            }
            Ok(found.len() as u64)
        })
    })?;
    out.count = open()?.transact(|tx| {
        measure(plan.count_from.len(), |j| {
            let from = plan.count_from[j];
            Person::BY_BORN.count(tx, from..from + COUNT_DAYS)
        })
    })?;
    Ok(out)
}

/// The peer: the same people as rows of one SQLite table with the same
/// indexes (WAL, synchronous=FULL, as pbpersist), written and read with
/// rusqlite; and a table without indexes for the baseline.
pub fn sqlite(dir: &Path, plan: &Plan, per_tx: usize) -> rusqlite::Result<IndexRates> {
    let connect = |file: &str| -> rusqlite::Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(dir.join(file))?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok(c)
    };
    let open = || connect("people-sqlite.db");
    let mut out = IndexRates::default();
    let columns = "id INTEGER PRIMARY KEY, email TEXT NOT NULL, born INTEGER NOT NULL, city TEXT NOT NULL";
    let plain = connect("plain-sqlite.db")?;
    plain.execute_batch(&format!("CREATE TABLE person ({columns})"))?;
    let indexed = open()?;
    indexed.execute_batch(&format!(
        "CREATE TABLE person ({columns});
         CREATE INDEX person_email ON person (email);
         CREATE INDEX person_born ON person (born);
         CREATE INDEX person_city_born ON person (city, born);"
    ))?;
    for (mut conn, rate_out) in [(indexed, &mut out.insert), (plain, &mut out.insert_plain)] {
        let start = Instant::now();
        for chunk in plan.insert.chunks(per_tx) {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO person (email, born, city) VALUES (?1, ?2, ?3)")?;
                for &k in chunk {
                    let (email, born, city) = fields(k);
                    insert.execute(rusqlite::params![email, born, city])?;
                }
            }
            tx.commit()?;
        }
        *rate_out = rate(plan.insert.len(), start);
    }

    // Reads a result's rows as pbpersist's objects are read, without copies.
    fn read_rows(rows: &mut rusqlite::Rows<'_>) -> rusqlite::Result<u64> {
        let mut n = 0;
        while let Some(row) = rows.next()? {
            std::hint::black_box((row.get_ref(1)?.as_str()?.len(), row.get::<_, i64>(2)?, row.get_ref(3)?.as_str()?));
            n += 1;
        }
        Ok(n)
    }
    // Each query kind over a fresh connection, in one read transaction as
    // pbpersist's snapshot is.
    let query = |sql: &str, count: usize, params: &dyn Fn(usize) -> Vec<rusqlite::types::Value>| {
        let conn = open()?;
        conn.execute_batch("BEGIN")?;
        let rates = {
            let mut statement = conn.prepare(sql)?;
            measure(count, |j| {
                let mut rows = statement.query(rusqlite::params_from_iter(params(j)))?;
                if sql.starts_with("SELECT count") {
                    let row = rows.next()?.expect("a count has a row");
                    return Ok(row.get::<_, i64>(0)? as u64);
                }
                read_rows(&mut rows)
            })?
        };
        conn.execute_batch("COMMIT")?;
        Ok::<_, rusqlite::Error>(rates)
    };
    use rusqlite::types::Value::{Integer, Text};
    let columns = "SELECT id, email, born, city FROM person";
    out.email =
        query(&format!("{columns} WHERE email = ?1"), plan.emails.len(), &|j| vec![Text(email(plan.emails[j]))])?;
    out.born =
        query(&format!("{columns} WHERE born >= ?1 ORDER BY born, id LIMIT {LIMIT}"), plan.born_from.len(), &|j| {
            vec![Integer(plan.born_from[j])]
        })?;
    out.city_born = query(
        &format!("{columns} WHERE city = ?1 AND born >= ?2 AND born < ?3 ORDER BY born, id LIMIT {LIMIT}"),
        plan.city_born.len(),
        &|j| {
            let (city, from) = plan.city_born[j];
            vec![Text(city_name(city)), Integer(from), Integer(from + COMPOSITE_DAYS)]
        },
    )?;
    out.count = query("SELECT count(*) FROM person WHERE born >= ?1 AND born < ?2", plan.count_from.len(), &|j| {
        vec![Integer(plan.count_from[j]), Integer(plan.count_from[j] + COUNT_DAYS)]
    })?;
    Ok(out)
}

/// The workload on Python ZODB with `zope.index` field indexes on
/// FileStorage in `dir`.
pub fn zodb(dir: &Path, n: u64, per_tx: usize) -> Result<IndexRates, Box<dyn std::error::Error>> {
    crate::zodb::install(&["zope.index"])?;
    let args = [dir.display().to_string(), n.to_string(), per_tx.to_string()];
    let v = crate::zodb::script("zodb_index_bench.py", &args)?;
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    let q = |kind: &str| QueryRates {
        cold: f(&format!("{kind}_cold")),
        hot: f(&format!("{kind}_hot")),
        p50_us: f(&format!("{kind}_p50_us")),
        p99_us: f(&format!("{kind}_p99_us")),
        found: v[format!("{kind}_found")].as_u64().unwrap_or(0),
    };
    Ok(IndexRates {
        insert: f("insert"),
        insert_plain: f("insert_plain"),
        email: q("email"),
        born: q("born"),
        city_born: q("city_born"),
        count: q("count"),
    })
}
