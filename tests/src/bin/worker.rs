//! A child process for the multi-process and crash tests.
//!
//! `pbpersist-worker count <db> <n> plain|resolving`: adds 1 to the root's
//! "counter" `n` times, one transaction each, and prints the retries.
//! `pbpersist-worker crash <db>`: sets the counters "a", "b" and "c" to the
//! next value after the stored one, one transaction each, printing each value
//! once its commit returned.

use pbpersist::{Database, Options};
use pbpersist_tests::bank::{Counter, ResolvingCounter};
use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("count") => {
            let db = Database::open_with(&args[2], Options::default().max_attempts(10_000))?;
            let n: u32 = args[3].parse()?;
            let resolving = args[4] == "resolving";
            for _ in 0..n {
                db.transact(|tx| {
                    let root = tx.root()?;
                    if resolving {
                        let r = root.require::<ResolvingCounter>("counter")?;
                        let c = tx.get_mut(r)?;
                        c.set_value(c.value() + 1);
                    } else {
                        let r = root.require::<Counter>("counter")?;
                        let c = tx.get_mut(r)?;
                        c.set_value(c.value() + 1);
                    }
                    Ok(())
                })?;
            }
            println!("retries {}", db.stats().retries);
        }
        Some("crash") => {
            let db = Database::open(&args[2])?;
            let mut out = std::io::stdout().lock();
            let start = db.transact(|tx| {
                let root = tx.root()?;
                Ok(tx.get(root.require::<Counter>("a")?)?.value())
            })?;
            for i in start + 1.. {
                db.transact(|tx| {
                    let root = tx.root()?;
                    for name in ["a", "b", "c"] {
                        tx.get_mut(root.require::<Counter>(name)?)?.set_value(i);
                    }
                    Ok(())
                })?;
                writeln!(out, "{i}")?;
                out.flush()?;
            }
        }
        _ => return Err("usage: pbpersist-worker count <db> <n> plain|resolving | crash <db>".into()),
    }
    Ok(())
}
